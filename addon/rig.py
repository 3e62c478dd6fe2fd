"""Blender side of retargeting: read an armature's rest data and animation, keep its
bone map, sample its pose. The mathematics is in retarget/ (pure numpy);
writing keys is keys.py.

The bone map is stored on the armature data as an ID property holding JSON
({"pelvis": "mixamorig:Hips", ...}), so it shows under Armature > Custom Properties,
can be edited there, and travels with the .blend; no registration is needed.
"""

import json

import numpy as np

from . import actions
from .retarget.mapping import MappingError, map_bones, validate_bone_map
from .retarget.rig import Rig
from .retarget.transfer import Pose, pose_from_matrices

BONE_MAP_PROPERTY = "motiongpt_bone_map"


def _armature(obj):
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        raise ValueError(f"{getattr(obj, 'name', obj)!r} is not an armature object")
    return obj.data


def _bone_order(bones) -> list:
    """Bone names with parents before children (Blender's own order usually is, but
    does not promise it)."""
    order, placed = [], set()
    pending = list(bones)
    while pending:
        rest = []
        for bone in pending:
            if bone.parent is None or bone.parent.name in placed:
                order.append(bone)
                placed.add(bone.name)
            else:
                rest.append(bone)
        if len(rest) == len(pending):
            raise ValueError("the armature's bone hierarchy has a cycle")
        pending = rest
    return order


def rig_of(obj) -> Rig:
    """An armature object's rest data (armature space)."""
    data = _armature(obj)
    bones = _bone_order(data.bones)
    if not bones:
        raise ValueError(f"armature {obj.name!r} has no bones")
    index = {b.name: i for i, b in enumerate(bones)}
    return Rig(
        names=tuple(b.name for b in bones),
        parents=np.array([index[b.parent.name] if b.parent else -1 for b in bones]),
        heads=np.array([b.head_local for b in bones]),
        tails=np.array([b.tail_local for b in bones]),
        matrices=np.array([[list(row) for row in b.matrix_local.to_3x3()] for b in bones]),
        deform=np.array([b.use_deform for b in bones]),
        connected=np.array([b.use_connect for b in bones]),
        world=np.array([list(row) for row in obj.matrix_world]),
    )


def stored_bone_map(obj, rig: Rig | None = None):
    """The map stored on the armature, or None (`rig`: the armature's, if already read)."""
    text = _armature(obj).get(BONE_MAP_PROPERTY)
    if not text:
        return None
    try:
        bone_map = json.loads(text)
    except (TypeError, json.JSONDecodeError) as error:
        raise MappingError(f"the stored bone map of {obj.name!r} is not valid JSON ({error})") from None
    return validate_bone_map(rig if rig is not None else rig_of(obj), bone_map)


def bone_map_of(obj, rig: Rig | None = None) -> dict:
    """The stored map if there is one (checked against the bones), else the detected one
    (`rig`: the armature's, if already read: reading it again would only repeat the work)."""
    rig = rig if rig is not None else rig_of(obj)
    stored = stored_bone_map(obj, rig)
    return stored if stored is not None else map_bones(rig)


def store_bone_map(obj, bone_map: dict) -> None:
    """Keep `bone_map` on the armature (checked first: nothing is stored if it is wrong)."""
    clean = validate_bone_map(rig_of(obj), bone_map)
    _armature(obj)[BONE_MAP_PROPERTY] = json.dumps(clean)


def sample_pose(obj, action, frame_start, frame_end, bone_map, rig: Rig | None = None) -> Pose:
    """The pose an action gives the armature on frames frame_start..frame_end
    (inclusive), read from Blender's evaluated bones, so constraints and bones outside
    the map count. The object's action, slot and the scene frame are restored.
    `rig`: the armature's, if already read (the same Rig object lets retargeting reuse
    its binding)."""
    data = _armature(obj)
    import bpy

    frame_start, frame_end = int(frame_start), int(frame_end)
    if frame_end < frame_start:
        raise ValueError(f"frame range {frame_start}..{frame_end} is empty")
    rig = rig if rig is not None else rig_of(obj)
    clean = validate_bone_map(rig, bone_map)
    scene = bpy.context.scene
    if obj.animation_data is None:
        obj.animation_data_create()
    saved = actions.assignment(obj)
    saved_frame = scene.frame_current, scene.frame_subframe
    names = list(clean.values())
    count = len(data.bones)
    positions = {b.name: i for i, b in enumerate(obj.pose.bones)}
    picked = [positions[name] for name in names]
    frames = range(frame_start, frame_end + 1)
    matrices = np.empty((len(frames), len(names), 4, 4))
    buffer = np.empty(count * 16, dtype=np.float32)
    try:
        if action is not None and obj.animation_data.action != action:
            actions.assign(obj, action)
        for t, frame in enumerate(frames):
            scene.frame_set(frame)
            evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
            evaluated.pose.bones.foreach_get("matrix", buffer)
            # foreach_get gives each matrix column by column.
            matrices[t] = np.swapaxes(buffer.reshape(count, 4, 4)[picked], -1, -2)
    finally:
        actions.restore(obj, saved)
        scene.frame_set(saved_frame[0], subframe=saved_frame[1])
    fps = scene.render.fps / scene.render.fps_base
    return pose_from_matrices(rig, clean, matrices, fps)

