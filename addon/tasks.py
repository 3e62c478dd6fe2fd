"""What each button does to the scene, as plain functions (bpy, main thread only).

Every task is two halves around a server job: `prepare_*` reads the scene and returns
a Request (the endpoint, the JSON body, and `apply`); `apply(result)` writes the answer
into the scene. The operators run the job in between, on a worker thread or, in
background mode, right away.

A task reads the scene once (`read_scene`: a SceneSnapshot of plain data, the rig read
a single time), plans in pure code (retarget/plan.py: which frames, what to ask, how
the answer joins the keys) and writes once. The halves never hold bpy objects across
the job (the user may edit the scene meanwhile): apply finds the armature and action
again by name. A failed apply leaves the scene as it was: new actions are removed, and
an existing action is edited through a copy that replaces it only once every key is
written (actions.py).
"""

from dataclasses import dataclass, field

import bpy
import numpy as np

from . import actions
from .actions import edit_through_copy, object_fcurves
from .keys import keyframe_pose, replace_keys
from .retarget import plan
from .retarget.formats.wire import motion_from_wire, motion_to_wire
from .retarget.mapping import MappingError
from .retarget.rig import Rig
from .retarget.transfer import Pose, motion_from_pose
from .rig import bone_map_of, rig_of, sample_pose

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
    """The armature's rest data and bone map (the rig read once), or a ValueError that
    says what is missing."""
    try:
        rig = rig_of(obj)
        return rig, bone_map_of(obj, rig)
    except MappingError as error:
        raise ValueError(f"{obj.name!r}: {error}") from None


def active_action(obj):
    anim = obj.animation_data
    if anim is None or anim.action is None:
        raise ValueError(f"{obj.name!r} has no active action: generate or key one first")
    return anim.action


def _keyed_frames(action, obj) -> np.ndarray:
    """The sorted distinct frames that have a key on any of the object's channels
    (empty when there is none)."""
    frames = []
    for curve in object_fcurves(action, obj):
        co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
        curve.keyframe_points.foreach_get("co", co)
        frames.append(co[0::2])
    if not frames:
        return np.empty(0, dtype=int)
    return np.unique(np.round(np.concatenate(frames)).astype(int))


def _no_keys(action_name: str, obj_name: str) -> ValueError:
    return ValueError(f"the action {action_name!r} has no keys on {obj_name!r}")


def key_frames(action, obj) -> np.ndarray:
    """The sorted distinct frames that have a key on any of the object's channels."""
    frames = _keyed_frames(action, obj)
    if not len(frames):
        raise _no_keys(action.name, obj.name)
    return frames


@dataclass
class SceneSnapshot:
    """What a task needs of the scene, read once when the task is asked for: plain data
    only, so it stays valid while the job runs and the user edits the scene."""

    armature: str  # the armature object's name
    rig: Rig | None  # its rest data; None for a task that needs no bone map
    bone_map: dict | None  # SMPL joint -> bone
    fps: float  # the scene's frame rate
    current_frame: int
    preview_range: tuple | None  # (start, end) while the preview range is on
    action: str | None  # the active action's name, for a task that reads one
    key_frames: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))  # may be empty
    planned: object = None  # what the task planned from the above (retarget/plan.py)
    pose: Pose | None = None  # the action's pose on the planned frames first..last

    def keys(self) -> np.ndarray:
        """The action's keyed frames; a ValueError when it has none."""
        if not len(self.key_frames):
            raise _no_keys(self.action, self.armature)
        return self.key_frames


def read_scene(context, needs_action: bool = True, needs_mapping: bool = True, planner=None) -> SceneSnapshot:
    """Everything a task reads of the scene: the active armature, its rig and bone map,
    the scene's frame rate, current frame and preview range, the active action's keyed
    frames, and, when `planner(snapshot)` returns a plan (with `first` and `last`), the
    action's pose on those frames. Which frames to sample depends on the keys and the
    playhead, so the (pure) planner runs between the plain reads and the sampling. The
    checks run in the order a user fixes them: armature, bone map, action, then what the
    plan needs."""
    obj = armature_of(context)
    rig, bone_map = mapping_of(obj) if needs_mapping else (None, None)
    action = active_action(obj) if needs_action else None
    scene = context.scene
    snapshot = SceneSnapshot(
        armature=obj.name, rig=rig, bone_map=bone_map, fps=scene_fps(scene), current_frame=scene.frame_current,
        preview_range=(scene.frame_preview_start, scene.frame_preview_end) if scene.use_preview_range else None,
        action=action.name if action is not None else None,
    )
    if action is not None:
        snapshot.key_frames = _keyed_frames(action, obj)
    if planner is not None:
        snapshot.planned = planner(snapshot)
        first, last = snapshot.planned.first, snapshot.planned.last
        snapshot.pose = sample_pose(obj, action, first, last, bone_map, rig=rig)
    return snapshot


def _answer_pose(wire: dict, scene: SceneSnapshot, foot_lock: bool) -> Pose:
    """A motion from the server as the armature's pose channels at the scene rate."""
    return plan.scene_pose(motion_from_wire(wire), scene.fps, scene.rig, scene.bone_map, foot_lock)


def _with_text(body: dict, prompt: str) -> dict:
    if prompt.strip():
        body["text"] = prompt.strip()
    return body


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


def _extend_scene(scene, last_frame: int) -> None:
    if last_frame > scene.frame_end:
        scene.frame_end = last_frame


def _sample_names(prompt: str, count: int) -> list:
    """Action names for `count` samples of one prompt (shortened to fit the name field)."""
    base = prompt if len(prompt) <= 50 else prompt[:49].rstrip() + "…"
    return [base] if count == 1 else [f"{base} #{k + 1}" for k in range(count)]


# --- the tasks ---------------------------------------------------------------------------

def prepare_generate(context, prompt: str, seconds: float, samples: int, seed: int,
                     foot_lock: bool = True, push_to_nla: bool = False) -> Request:
    scene = read_scene(context, needs_action=False)
    prompt = prompt.strip()
    if not prompt:
        raise ValueError("type a prompt first, e.g. \"a person walks forward and waves\"")
    frames = plan.generation_frames(seconds)
    frame_start = scene.current_frame

    def apply(result: dict) -> str:
        obj, _ = _find(scene.armature)
        poses = [_answer_pose(wire, scene, foot_lock) for wire in result["motions"]]
        previous = actions.assignment(obj)
        created = []
        try:
            for k, (pose, name) in enumerate(zip(poses, _sample_names(prompt, len(poses)))):
                action = keyframe_pose(obj, pose, frame_start, action_name=name)
                created.append(action)
                action["motiongpt_prompt"], action["motiongpt_seed"] = prompt, seed + k
                action.use_fake_user = k > 0  # the other samples stay in the file for the user to pick
            actions.assign(obj, created[0])
            if previous[0] is not None and previous[0].users == 0:
                previous[0].use_fake_user = True  # never lose the user's action to a generation
            if push_to_nla:
                actions.push_to_nla(obj, created[0], frame_start)
        except Exception:
            for action in created:
                actions.remove(action)
            actions.restore(obj, previous)
            raise
        _extend_scene(bpy.context.scene, frame_start + poses[0].frames - 1)
        names = ", ".join(a.name for a in created)
        return f"generated {len(created)} action(s) on {scene.armature}: {names}"

    body = {"text": prompt, "frames": frames, "samples": int(samples), "seed": int(seed)}
    return Request("Generate", "generate", body, apply)


def prepare_inbetween(context, frame_start: int | None = None, frame_end: int | None = None,
                      prompt: str = "", seed: int = 0, foot_lock: bool = True) -> Request:
    given = (frame_start, frame_end) if frame_start is not None and frame_end is not None else None

    def plan_gap(scene: SceneSnapshot) -> plan.InbetweenPlan:
        # The gap: given, else the preview range, else the keys around the current frame.
        chosen = given or scene.preview_range
        a, b = plan.choose_gap(scene.keys() if chosen is None else None, scene.current_frame, chosen)
        return plan.InbetweenPlan.around(a, b, scene.keys(), scene.fps)

    scene = read_scene(context, planner=plan_gap)
    gap = scene.planned
    motion = plan.model_motion(scene.rig, scene.bone_map, scene.pose)
    mask_start, mask_end = gap.mask(scene.fps, motion.frames)
    keyed_ends = gap.keyed_ends(scene.pose)

    def apply(result: dict) -> str:
        obj, action = _find(scene.armature, scene.action)
        inside = gap.fill(_answer_pose(result["motions"][0], scene, foot_lock), keyed_ends)
        edit_through_copy(obj, action, lambda target: replace_keys(obj, target, inside, gap.a + 1))
        return f"filled frames {gap.a + 1}..{gap.b - 1} of {scene.action!r}"

    body = {"motion": motion_to_wire(motion), "mask_start": mask_start, "mask_end": mask_end, "seed": int(seed)}
    return Request("In-between", "inbetween", _with_text(body, prompt), apply)


def prepare_continue(context, seconds: float, prompt: str = "", seed: int = 0, foot_lock: bool = True) -> Request:
    scene = read_scene(context, planner=lambda s: plan.ContinuePlan.after(s.keys(), seconds, s.fps, s.action))
    continuation = scene.planned
    motion = plan.model_motion(scene.rig, scene.bone_map, scene.pose)
    keyed_end = continuation.keyed_end(scene.pose)
    last = continuation.last

    def apply(result: dict) -> str:
        obj, action = _find(scene.armature, scene.action)
        new = continuation.new_part(_answer_pose(result["motions"][0], scene, foot_lock), keyed_end)
        edit_through_copy(obj, action, lambda target: replace_keys(obj, target, new, last + 1))
        _extend_scene(bpy.context.scene, last + new.frames)
        return f"continued {scene.action!r} by {new.frames} frames ({last + 1}..{last + new.frames})"

    body = {"motion": motion_to_wire(motion), "frames": continuation.model_frames, "seed": int(seed)}
    return Request("Continue", "predict", _with_text(body, prompt), apply)


def prepare_caption(context) -> Request:
    scene = read_scene(context, planner=lambda s: plan.whole_action(s.keys(), s.action, "captioned"))
    motion = plan.model_motion(scene.rig, scene.bone_map, scene.pose)

    def apply(result: dict) -> str:
        caption = result["captions"][0]
        action = bpy.data.actions.get(scene.action)
        if action is None:
            raise ValueError(f"the action {scene.action!r} is gone (deleted or renamed while the job ran)")
        action[CAPTION_PROPERTY] = caption
        bpy.context.scene.motiongpt.last_caption = caption
        return f"{scene.action}: {caption}"

    return Request("Caption", "caption", {"motion": motion_to_wire(motion)}, apply)


# --- export (no server) --------------------------------------------------------------------

def export_action(context, filepath: str, export_format: str) -> str:
    """Write the active action of the selected armature to `filepath` in one of
    preferences.EXPORT_FORMATS."""
    from .retarget.formats import write_motion

    if export_format == "ARMATURE_BVH":  # Blender's exporter reads the bones itself: no bone map needed
        scene = read_scene(context, needs_mapping=False)
        frames = plan.whole_action(scene.keys(), scene.action)
        obj, _ = _find(scene.armature)
        with context.temp_override(active_object=obj, object=obj, selected_objects=[obj],
                                   selected_editable_objects=[obj]):
            bpy.ops.export_anim.bvh(filepath=filepath, frame_start=frames.first, frame_end=frames.last,
                                    check_existing=False)
        return f"wrote {filepath} ({frames.last - frames.first + 1} frames of {obj.name})"
    scene = read_scene(context, planner=lambda s: plan.whole_action(s.keys(), s.action))
    motion = motion_from_pose(scene.rig, scene.bone_map, scene.pose)
    write_motion(motion, filepath, "bvh" if export_format == "SMPL_BVH" else "smpl")
    return f"wrote {filepath} ({motion.frames} frames at {motion.fps:g} fps on the SMPL skeleton)"
