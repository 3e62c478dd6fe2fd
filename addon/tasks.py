"""What each button does to the scene, as plain functions (bpy, main thread only).

Every task is two halves around a server job: `prepare_*` reads the scene and returns
a Request (the endpoint, the JSON body, and `apply`); `apply(result)` writes the answer
into the scene. The operators run the job in between, on a worker thread or, in
background mode, right away. The halves never hold bpy objects across the job (the
user may edit the scene meanwhile): they find the armature and action again by name.

A failed apply leaves the scene as it was: new actions are removed, and an existing
action is edited through a copy that replaces it only once every key is written.
"""

import math
from dataclasses import dataclass

import bpy
import numpy as np

from .keys import keyframe_pose, replace_keys
from .retarget.contract import FRAMES_PER_TOKEN, MAX_FRAMES, MIN_FRAMES, MODEL_FPS
from .retarget.formats.wire import motion_from_wire, motion_to_wire
from .retarget.mapping import MappingError
from .retarget.rotation import quat_conj, quat_identity, quat_mul, quat_positive_w, quat_slerp
from .retarget.transfer import Pose, motion_from_pose, pose_from_motion
from .rig import bone_map_of, rig_of, sample_pose

CONTEXT_SECONDS = 3.0  # motion around a gap, or before the end, that the model is shown
CAPTION_PROPERTY = "motiongpt_caption"


@dataclass
class Request:
    label: str  # for the status bar: "Generate", "In-between", ...
    task: str  # the server endpoint: generate, caption, predict, inbetween
    body: dict
    apply: object  # apply(result: dict) -> str, the report


# --- reading the scene -----------------------------------------------------------------

def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def armature_of(context):
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature first (the active object is "
                         + (f"{obj.name!r}, a {obj.type.lower()})" if obj else "none)"))
    return obj


def mapping_of(obj):
    """The armature's rest data and bone map, or a ValueError that says what is missing."""
    try:
        rig = rig_of(obj)
        return rig, bone_map_of(obj)
    except MappingError as error:
        raise ValueError(f"{obj.name!r}: {error}") from None


def active_action(obj):
    anim = obj.animation_data
    if anim is None or anim.action is None:
        raise ValueError(f"{obj.name!r} has no active action: generate or key one first")
    return anim.action


def object_fcurves(action, obj) -> list:
    """The F-curves that animate `obj` in `action` (read only: nothing is created)."""
    if not hasattr(action, "layers"):
        return list(action.fcurves)
    slot = getattr(obj.animation_data, "action_slot", None)
    if slot is None:
        return []
    curves = []
    for layer in action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            if bag is not None:
                curves += list(bag.fcurves)
    return curves


def key_frames(action, obj) -> np.ndarray:
    """The sorted distinct frames that have a key on any of the object's channels."""
    frames = []
    for curve in object_fcurves(action, obj):
        co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
        curve.keyframe_points.foreach_get("co", co)
        frames.append(co[0::2])
    if not frames or not sum(len(f) for f in frames):
        raise ValueError(f"the action {action.name!r} has no keys on {obj.name!r}")
    return np.unique(np.round(np.concatenate(frames)).astype(int))


def server_motion(obj, rig, bone_map, action, first: int, last: int):
    """The action's motion over frames first..last as SMPL-22 at the model's 20 fps,
    covering the range's end, and the Pose it was read from (scene frame rate)."""
    pose = sample_pose(obj, action, first, last, bone_map)
    motion = motion_from_pose(rig, bone_map, pose).resampled(MODEL_FPS, cover_end=True)
    return motion, pose


def pose_at_scene_rate(wire: dict, fps: float, rig, bone_map, foot_lock: bool) -> Pose:
    """A motion from the server as pose channels, one frame per scene frame."""
    motion = motion_from_wire(wire).resampled(fps, cover_end=True)
    return pose_from_motion(motion, rig, bone_map, foot_lock=foot_lock)


def _slice(pose: Pose, start: int, stop: int) -> Pose:
    return Pose(pose.bones, pose.rotations[start:stop], pose.root_bone, pose.root_location[start:stop], pose.fps)


def _step_beyond(pose: Pose, edge: int, inward: int):
    """Where the motion goes one frame past frame `edge` of `pose`, moving on as it
    moves there (`inward`: the neighbouring frame). A one-frame pose stays put."""
    if pose.frames < 2:
        return pose.rotations[edge], pose.root_location[edge]
    delta = quat_mul(pose.rotations[edge], quat_conj(pose.rotations[inward]))
    rotation = quat_mul(delta, pose.rotations[edge])
    location = 2 * pose.root_location[edge] - pose.root_location[inward]
    return rotation, location


def blended(pose: Pose, before: Pose | None, after: Pose | None, fade: int) -> Pose:
    """`pose` bent to join the keyed frames around it: `before` ends on the frame just
    before it, `after` starts on the frame just after it (one or two frames each, or
    None). The keyed motion is carried one frame on into `pose` and the difference at
    each end is spread over the frames: with both ends it moves smoothly from one to
    the other, with only `before` it fades out over `fade` frames."""
    frames = pose.frames
    rotations, location = pose.rotations.copy(), pose.root_location.copy()
    k = np.arange(frames, dtype=np.float64)
    if before is not None and after is not None:
        s = (k + 1) / (frames + 1)
        weights = [1 - s * s * (3 - 2 * s), s * s * (3 - 2 * s)]
    else:
        s = np.clip((k + 1) / max(1, fade), 0.0, 1.0)
        weights = [1 - s * s * (3 - 2 * s), np.zeros(frames)]
    ends = ((before, -1, -2, 0, weights[0]), (after, 0, 1, frames - 1, weights[1]))
    for keyed, edge, inward, index, weight in ends:
        if keyed is None:
            continue
        rotation, root = _step_beyond(keyed, edge, inward)
        correction = quat_positive_w(quat_mul(rotation, quat_conj(pose.rotations[index])))
        amount = np.broadcast_to(weight[:, None], rotations.shape[:2])
        identity = quat_identity(correction.shape[:-1])
        partial = quat_slerp(np.broadcast_to(identity, rotations.shape), np.broadcast_to(correction, rotations.shape), amount)
        rotations = quat_mul(partial, rotations)
        location = location + weight[:, None] * (root - pose.root_location[index])
    return Pose(pose.bones, rotations, pose.root_bone, location, pose.fps)


# --- writing the scene -------------------------------------------------------------------

def _find(obj_name: str, action_name: str | None = None):
    obj = bpy.data.objects.get(obj_name)
    if obj is None or obj.type != "ARMATURE":
        raise ValueError(f"the armature {obj_name!r} is gone (deleted or renamed while the job ran)")
    if action_name is None:
        return obj, None
    action = bpy.data.actions.get(action_name)
    if action is None:
        raise ValueError(f"the action {action_name!r} is gone (deleted or renamed while the job ran)")
    return obj, action


def edit_through_copy(obj, action, edit) -> None:
    """Run edit(action) so that a failure leaves `action` exactly as it was: the keys go
    into a copy, which takes the original's place (every user, its name) on success."""
    copy = action.copy()
    anim = obj.animation_data
    slot = getattr(anim, "action_slot", None)
    slot_handle = getattr(slot, "handle", None)
    try:
        if hasattr(anim, "action_slot"):
            anim.action = copy
            anim.action_slot = next(s for s in copy.slots if s.handle == slot_handle)
        else:
            anim.action = copy
        edit(copy)
    except Exception:
        anim.action = action
        if slot is not None:
            anim.action_slot = next(s for s in action.slots if s.handle == slot_handle)
        bpy.data.actions.remove(copy)
        raise
    anim.action = action  # so user_remap moves this user too, with its slot
    if slot is not None:
        anim.action_slot = next(s for s in action.slots if s.handle == slot_handle)
    name, fake_user = action.name, action.use_fake_user
    action.user_remap(copy)
    bpy.data.actions.remove(action)
    copy.name = name
    copy.use_fake_user = fake_user


def _extend_scene(scene, last_frame: int) -> None:
    if last_frame > scene.frame_end:
        scene.frame_end = last_frame


# --- the tasks ---------------------------------------------------------------------------

def prepare_generate(context, prompt: str, seconds: float, samples: int, seed: int,
                     foot_lock: bool = True, push_to_nla: bool = False) -> Request:
    obj = armature_of(context)
    rig, bone_map = mapping_of(obj)
    prompt = prompt.strip()
    if not prompt:
        raise ValueError("type a prompt first, e.g. \"a person walks forward and waves\"")
    frames = int(round(seconds * MODEL_FPS))
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise ValueError(f"the length must be between {MIN_FRAMES / MODEL_FPS:g} and {MAX_FRAMES / MODEL_FPS:g} seconds")
    scene = context.scene
    fps, frame_start, obj_name = scene_fps(scene), scene.frame_current, obj.name

    def apply(result: dict) -> str:
        obj, _ = _find(obj_name)
        poses = [pose_at_scene_rate(wire, fps, rig, bone_map, foot_lock) for wire in result["motions"]]
        anim = obj.animation_data
        previous = (anim.action, getattr(anim, "action_slot", None)) if anim else (None, None)
        created = []
        base = prompt if len(prompt) <= 50 else prompt[:49].rstrip() + "…"
        try:
            for k, pose in enumerate(poses):
                name = base if len(poses) == 1 else f"{base} #{k + 1}"
                action = keyframe_pose(obj, pose, frame_start, action_name=name)
                created.append(action)
                action["motiongpt_prompt"], action["motiongpt_seed"] = prompt, seed + k
                action.use_fake_user = k > 0  # the other samples stay in the file for the user to pick
            anim = obj.animation_data
            anim.action = created[0]
            _assign_first_slot(anim, created[0])
            if previous[0] is not None and previous[0].users == 0:
                previous[0].use_fake_user = True  # never lose the user's action to a generation
            if push_to_nla:
                track = anim.nla_tracks.new()
                track.name = created[0].name
                strip = track.strips.new(created[0].name, frame_start, created[0])
                if hasattr(strip, "action_slot") and anim.action_slot is not None:
                    strip.action_slot = anim.action_slot
                anim.action = None
        except Exception:
            for action in created:
                bpy.data.actions.remove(action)
            if obj.animation_data is not None:
                obj.animation_data.action = previous[0]
                if previous[1] is not None:
                    obj.animation_data.action_slot = previous[1]
            raise
        _extend_scene(bpy.context.scene, frame_start + poses[0].frames - 1)
        names = ", ".join(a.name for a in created)
        return f"generated {len(created)} action(s) on {obj_name}: {names}"

    body = {"text": prompt, "frames": frames, "samples": int(samples), "seed": int(seed)}
    return Request("Generate", "generate", body, apply)


def _assign_first_slot(anim, action) -> None:
    if hasattr(anim, "action_slot") and len(getattr(action, "slots", ())):
        anim.action_slot = action.slots[0]


def gap_of(context, obj, action, frame_start: int | None, frame_end: int | None) -> tuple:
    """The keyed frames (a, b) around the gap to fill: given, else the preview range,
    else the keys on either side of the current frame."""
    scene = context.scene
    if frame_start is not None and frame_end is not None:
        a, b = int(frame_start), int(frame_end)
    elif scene.use_preview_range:
        a, b = scene.frame_preview_start, scene.frame_preview_end
    else:
        keys = key_frames(action, obj)
        current = scene.frame_current
        before, after = keys[keys <= current], keys[keys > current]
        if not len(before) or not len(after):
            raise ValueError("put the playhead between two keyframes, or set a preview range over the gap")
        a, b = int(before[-1]), int(after[0])
    if b - a < 2:
        raise ValueError(f"the gap {a}..{b} has no frame inside it to fill")
    return a, b


def prepare_inbetween(context, frame_start: int | None = None, frame_end: int | None = None,
                      prompt: str = "", seed: int = 0, foot_lock: bool = True) -> Request:
    obj = armature_of(context)
    rig, bone_map = mapping_of(obj)
    action = active_action(obj)
    a, b = gap_of(context, obj, action, frame_start, frame_end)
    keys = key_frames(action, obj)
    fps = scene_fps(context.scene)
    context_frames = int(round(CONTEXT_SECONDS * fps))
    first = min(a, max(int(keys[0]), a - context_frames))
    last = max(b, min(int(keys[-1]), b + context_frames))
    motion, existing = server_motion(obj, rig, bone_map, action, first, last)
    to_server = MODEL_FPS / fps
    # The model fills whole 20 fps frames: mask from the one at or before key a to the
    # one at or after key b, so every scene frame inside the gap lies between filled
    # frames (where the 20 fps grid allows: a gap at the action's very start or end
    # keeps its first or last given frame).
    mask_start = max(1, int(math.floor((a - first) * to_server + 1e-6)))
    mask_end = min(motion.frames - 1, int(math.ceil((b - first) * to_server - 1e-6)) + 1)
    if mask_end <= mask_start:
        raise ValueError(f"the gap {a}..{b} is too short for the model's 20 fps")
    obj_name, action_name = obj.name, action.name
    # The keyed frames on either side of the gap (two where the action has them).
    start_pose = _slice(existing, max(0, a - first - 1), a - first + 1)
    end_pose = _slice(existing, b - first, b - first + 2)

    def apply(result: dict) -> str:
        obj, action = _find(obj_name, action_name)
        filled = pose_at_scene_rate(result["motions"][0], fps, rig, bone_map, foot_lock)
        if filled.frames < b - first:
            raise ValueError("the server's motion is shorter than the gap")
        # Only the frames inside the gap are the model's; they are bent onto the keys.
        inside = blended(_slice(filled, a - first + 1, b - first), start_pose, end_pose, fade=0)
        edit_through_copy(obj, action, lambda target: replace_keys(obj, target, inside, a + 1))
        return f"filled frames {a + 1}..{b - 1} of {action_name!r}"

    body = {"motion": motion_to_wire(motion), "mask_start": mask_start, "mask_end": mask_end, "seed": int(seed)}
    if prompt.strip():
        body["text"] = prompt.strip()
    return Request("In-between", "inbetween", body, apply)


def prepare_continue(context, seconds: float, prompt: str = "", seed: int = 0, foot_lock: bool = True) -> Request:
    obj = armature_of(context)
    rig, bone_map = mapping_of(obj)
    action = active_action(obj)
    keys = key_frames(action, obj)
    fps = scene_fps(context.scene)
    last = int(keys[-1])
    first = max(int(keys[0]), last - int(round(CONTEXT_SECONDS * fps)))
    if last - first < 1:
        raise ValueError(f"the action {action.name!r} needs keys on at least two frames to be continued")
    new_frames = int(round(seconds * MODEL_FPS)) // FRAMES_PER_TOKEN * FRAMES_PER_TOKEN
    if not MIN_FRAMES <= new_frames <= MAX_FRAMES:
        raise ValueError(f"the length must be between {MIN_FRAMES / MODEL_FPS:g} and {MAX_FRAMES / MODEL_FPS:g} seconds")
    motion, existing = server_motion(obj, rig, bone_map, action, first, last)
    obj_name, action_name = obj.name, action.name
    end_pose = _slice(existing, max(0, last - first - 1), last - first + 1)
    added = int(math.floor(new_frames / MODEL_FPS * fps + 1e-6))

    def apply(result: dict) -> str:
        obj, action = _find(obj_name, action_name)
        extended = pose_at_scene_rate(result["motions"][0], fps, rig, bone_map, foot_lock)
        # The returned motion starts with the given one; the new part follows frame `last`.
        new = _slice(extended, last - first + 1, last - first + 1 + added)
        if new.frames < 1:
            raise ValueError("the server returned no new frames")
        new = blended(new, end_pose, None, fade=int(round(0.5 * fps)))
        edit_through_copy(obj, action, lambda target: replace_keys(obj, target, new, last + 1))
        _extend_scene(bpy.context.scene, last + new.frames)
        return f"continued {action_name!r} by {new.frames} frames ({last + 1}..{last + new.frames})"

    body = {"motion": motion_to_wire(motion), "frames": new_frames, "seed": int(seed)}
    if prompt.strip():
        body["text"] = prompt.strip()
    return Request("Continue", "predict", body, apply)


def prepare_caption(context) -> Request:
    obj = armature_of(context)
    rig, bone_map = mapping_of(obj)
    action = active_action(obj)
    keys = key_frames(action, obj)
    first, last = int(keys[0]), int(keys[-1])
    if last - first < 1:
        raise ValueError(f"the action {action.name!r} needs keys on at least two frames to be captioned")
    motion, _ = server_motion(obj, rig, bone_map, action, first, last)
    action_name = action.name

    def apply(result: dict) -> str:
        caption = result["captions"][0]
        action = bpy.data.actions.get(action_name)
        if action is None:
            raise ValueError(f"the action {action_name!r} is gone (deleted or renamed while the job ran)")
        action[CAPTION_PROPERTY] = caption
        bpy.context.scene.motiongpt.last_caption = caption
        return f"{action_name}: {caption}"

    return Request("Caption", "caption", {"motion": motion_to_wire(motion)}, apply)


# --- export (no server) --------------------------------------------------------------------

EXPORT_FORMATS = (
    ("SMPL_BVH", "BVH (SMPL skeleton)", "The motion on the SMPL-22 skeleton as BVH, Y up"),
    ("SMPL_NPZ", "SMPL parameters (npz)", "SMPL poses, translation and joints, as the research code reads them"),
    ("ARMATURE_BVH", "BVH (this armature)", "The armature's own bones, through Blender's BVH exporter"),
)


def export_action(context, filepath: str, export_format: str) -> str:
    """Write the active action of the selected armature to `filepath`."""
    from .retarget.formats import write_motion

    obj = armature_of(context)
    action = active_action(obj)
    keys = key_frames(action, obj)
    first, last = int(keys[0]), int(keys[-1])
    if export_format == "ARMATURE_BVH":
        with context.temp_override(active_object=obj, object=obj, selected_objects=[obj],
                                   selected_editable_objects=[obj]):
            bpy.ops.export_anim.bvh(filepath=filepath, frame_start=first, frame_end=last, check_existing=False)
        return f"wrote {filepath} ({last - first + 1} frames of {obj.name})"
    rig, bone_map = mapping_of(obj)
    pose = sample_pose(obj, action, first, last, bone_map)
    motion = motion_from_pose(rig, bone_map, pose)
    write_motion(motion, filepath, "bvh" if export_format == "SMPL_BVH" else "smpl")
    return f"wrote {filepath} ({motion.frames} frames at {motion.fps:g} fps on the SMPL skeleton)"

