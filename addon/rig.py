"""Blender side of retargeting: read an armature's rest data and animation, keep its
bone map, sample its pose. The mathematics is in retarget/ (pure numpy);
writing keys is keys.py.

The bone map is stored on the armature data as an ID property holding JSON
({"pelvis": "mixamorig:Hips", ...}), so it shows under Armature > Custom Properties,
can be edited there, and travels with the .blend; no registration is needed.
"""

import json

import numpy as np

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


def stored_bone_map(obj):
    """The map stored on the armature, or None."""
    text = _armature(obj).get(BONE_MAP_PROPERTY)
    if not text:
        return None
    try:
        bone_map = json.loads(text)
    except (TypeError, json.JSONDecodeError) as error:
        raise MappingError(f"the stored bone map of {obj.name!r} is not valid JSON ({error})") from None
    return validate_bone_map(rig_of(obj), bone_map)


def bone_map_of(obj) -> dict:
    """The stored map if there is one (checked against the bones), else the detected one."""
    stored = stored_bone_map(obj)
    return stored if stored is not None else map_bones(rig_of(obj))


def store_bone_map(obj, bone_map: dict) -> None:
    """Keep `bone_map` on the armature (checked first: nothing is stored if it is wrong)."""
    clean = validate_bone_map(rig_of(obj), bone_map)
    _armature(obj)[BONE_MAP_PROPERTY] = json.dumps(clean)


def sample_pose(obj, action, frame_start, frame_end, bone_map) -> Pose:
    """The pose an action gives the armature on frames frame_start..frame_end
    (inclusive), read from Blender's evaluated bones, so constraints and bones outside
    the map count. The object's action, slot and the scene frame are restored."""
    data = _armature(obj)
    import bpy

    frame_start, frame_end = int(frame_start), int(frame_end)
    if frame_end < frame_start:
        raise ValueError(f"frame range {frame_start}..{frame_end} is empty")
    clean = validate_bone_map(rig_of(obj), bone_map)
    scene = bpy.context.scene
    anim = obj.animation_data or obj.animation_data_create()
    saved_action = anim.action
    saved_slot = getattr(anim, "action_slot", None)
    saved_frame = scene.frame_current, scene.frame_subframe
    names = list(clean.values())
    count = len(data.bones)
    positions = {b.name: i for i, b in enumerate(obj.pose.bones)}
    picked = [positions[name] for name in names]
    frames = range(frame_start, frame_end + 1)
    matrices = np.empty((len(frames), len(names), 4, 4))
    buffer = np.empty(count * 16, dtype=np.float32)
    try:
        if action is not None and anim.action is not action:
            anim.action = action
            _assign_slot(anim, action, obj)
        for t, frame in enumerate(frames):
            scene.frame_set(frame)
            evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
            evaluated.pose.bones.foreach_get("matrix", buffer)
            # foreach_get gives each matrix column by column.
            matrices[t] = np.swapaxes(buffer.reshape(count, 4, 4)[picked], -1, -2)
    finally:
        if anim.action is not saved_action:
            anim.action = saved_action
        if saved_slot is not None and getattr(anim, "action_slot", None) != saved_slot:
            anim.action_slot = saved_slot
        scene.frame_set(saved_frame[0], subframe=saved_frame[1])
    fps = scene.render.fps / scene.render.fps_base
    return pose_from_matrices(rig_of(obj), clean, matrices, fps)


def _assign_slot(anim, action, obj):
    """Blender 4.4+: an assigned action also needs a slot for this object."""
    if not hasattr(anim, "action_slot") or anim.action_slot is not None:
        return
    for slot in getattr(action, "slots", ()):
        if slot.target_id_type == "OBJECT":
            anim.action_slot = slot
            return
