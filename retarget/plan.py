"""The arithmetic of the extension's tasks, apart from Blender: which frames of an
action to read, what to ask the model for, and how its answer is cut and bent to join
the keys around it. Scene frames are integers at the scene's frame rate; the model
works at MODEL_FPS. Pure numpy (no bpy), so it runs and is tested outside Blender.

The extension (addon/tasks.py) reads the scene once into plain data, plans here, and
writes the planned poses once.
"""

import math
from dataclasses import dataclass

import numpy as np

from .contract import FRAMES_PER_TOKEN, MAX_FRAMES, MIN_FRAMES, MODEL_FPS
from .motion import Motion
from .rig import Rig
from .rotation import quat_conj, quat_identity, quat_mul, quat_positive_w, quat_slerp
from .transfer import Pose, motion_from_pose, pose_from_motion

CONTEXT_SECONDS = 3.0  # motion around a gap, or before the end, that the model is shown
FADE_SECONDS = 0.5  # how long a continuation takes to come free of the keyed motion


# --- poses ---------------------------------------------------------------------------------

def slice_pose(pose: Pose, start: int, stop: int) -> Pose:
    """Frames start..stop-1 of `pose` (Python slice rules)."""
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


def model_motion(rig: Rig, bone_map: dict, pose: Pose) -> Motion:
    """An armature's pose channels (scene rate) as SMPL-22 at the model's frame rate,
    covering the pose's last frame."""
    return motion_from_pose(rig, bone_map, pose).resampled(MODEL_FPS, cover_end=True)


def scene_pose(motion: Motion, fps: float, rig: Rig, bone_map: dict, foot_lock: bool) -> Pose:
    """A motion from the model as the armature's pose channels, one frame per scene frame."""
    return pose_from_motion(motion.resampled(fps, cover_end=True), rig, bone_map, foot_lock=foot_lock)


# --- lengths -------------------------------------------------------------------------------

def _check_model_frames(frames: int) -> int:
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise ValueError(f"the length must be between {MIN_FRAMES / MODEL_FPS:g} and {MAX_FRAMES / MODEL_FPS:g} seconds")
    return frames


def generation_frames(seconds: float) -> int:
    """The model frames of a generated motion `seconds` long."""
    return _check_model_frames(int(round(seconds * MODEL_FPS)))


def continuation_frames(seconds: float) -> int:
    """The model frames a continuation of `seconds` adds: whole motion tokens."""
    return _check_model_frames(int(round(seconds * MODEL_FPS)) // FRAMES_PER_TOKEN * FRAMES_PER_TOKEN)


@dataclass(frozen=True)
class FrameRange:
    """Scene frames first..last (inclusive) to read."""

    first: int
    last: int


def whole_action(keys: np.ndarray, action_name: str, purpose: str | None = None) -> FrameRange:
    """The frames from the action's first key to its last; with a `purpose` ("captioned"),
    at least two of them."""
    first, last = int(keys[0]), int(keys[-1])
    if purpose is not None and last - first < 1:
        raise ValueError(f"the action {action_name!r} needs keys on at least two frames to be {purpose}")
    return FrameRange(first, last)


# --- in-between ----------------------------------------------------------------------------

def choose_gap(keys: np.ndarray | None, current: int, chosen: tuple | None = None) -> tuple:
    """The keyed frames (a, b) around the gap to fill: `chosen` (a range the user gave,
    or the preview range), else the keys on either side of frame `current`."""
    if chosen is not None:
        a, b = int(chosen[0]), int(chosen[1])
    else:
        keys = np.asarray(keys)
        before, after = keys[keys <= current], keys[keys > current]
        if not len(before) or not len(after):
            raise ValueError("put the playhead between two keyframes, or set a preview range over the gap")
        a, b = int(before[-1]), int(after[0])
    if b - a < 2:
        raise ValueError(f"the gap {a}..{b} has no frame inside it to fill")
    return a, b


@dataclass(frozen=True)
class InbetweenPlan:
    """Fill the frames strictly between keyed frames a and b. The model is shown scene
    frames first..last: the gap and up to CONTEXT_SECONDS of keyed motion either side."""

    a: int
    b: int
    first: int
    last: int

    @classmethod
    def around(cls, a: int, b: int, keys: np.ndarray, fps: float) -> "InbetweenPlan":
        context_frames = int(round(CONTEXT_SECONDS * fps))
        first = min(a, max(int(keys[0]), a - context_frames))
        last = max(b, min(int(keys[-1]), b + context_frames))
        return cls(a, b, first, last)

    def mask(self, fps: float, model_frames: int) -> tuple:
        """The model frames [start, end) the model writes, of the `model_frames` it is
        shown (frames first..last at MODEL_FPS, covering `last`).

        The model fills whole 20 fps frames: the mask runs from the one at or before key
        a to the one at or after key b, so every scene frame inside the gap lies between
        filled frames (where the 20 fps grid allows: a gap at the action's very start or
        end keeps its first or last given frame)."""
        to_model = MODEL_FPS / fps
        start = max(1, int(math.floor((self.a - self.first) * to_model + 1e-6)))
        end = min(model_frames - 1, int(math.ceil((self.b - self.first) * to_model - 1e-6)) + 1)
        if end <= start:
            raise ValueError(f"the gap {self.a}..{self.b} is too short for the model's 20 fps")
        return start, end

    def keyed_ends(self, existing: Pose) -> tuple:
        """The keyed frames on either side of the gap (two where the action has them), of
        `existing`, the pose of frames first..last."""
        a, b = self.a - self.first, self.b - self.first
        return slice_pose(existing, max(0, a - 1), a + 1), slice_pose(existing, b, b + 2)

    def fill(self, filled: Pose, keyed_ends: tuple) -> Pose:
        """The frames a+1..b-1 of `filled` (the model's answer at the scene rate, from
        frame first), bent onto the keys around the gap: only those frames are the model's."""
        if filled.frames < self.b - self.first:
            raise ValueError("the server's motion is shorter than the gap")
        inside = slice_pose(filled, self.a - self.first + 1, self.b - self.first)
        return blended(inside, *keyed_ends, fade=0)


# --- continue -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ContinuePlan:
    """Extend an action past its last key `last`. The model is shown scene frames
    first..last (up to CONTEXT_SECONDS) and asked for `model_frames` more, which cover
    `added` scene frames after `last`; the new motion comes free of the keyed one over
    `fade` frames."""

    first: int
    last: int
    model_frames: int
    added: int
    fade: int

    @classmethod
    def after(cls, keys: np.ndarray, seconds: float, fps: float, action_name: str) -> "ContinuePlan":
        last = int(keys[-1])
        first = max(int(keys[0]), last - int(round(CONTEXT_SECONDS * fps)))
        if last - first < 1:
            raise ValueError(f"the action {action_name!r} needs keys on at least two frames to be continued")
        model_frames = continuation_frames(seconds)
        added = int(math.floor(model_frames / MODEL_FPS * fps + 1e-6))
        return cls(first, last, model_frames, added, int(round(FADE_SECONDS * fps)))

    def keyed_end(self, existing: Pose) -> Pose:
        """The last keyed frames (two where the action has them) of `existing`, the pose
        of frames first..last."""
        end = self.last - self.first
        return slice_pose(existing, max(0, end - 1), end + 1)

    def new_part(self, extended: Pose, keyed_end: Pose) -> Pose:
        """The frames after `last` of `extended` (the model's answer at the scene rate:
        the given motion from frame first, then the new one), run on from the keys."""
        start = self.last - self.first + 1
        new = slice_pose(extended, start, start + self.added)
        if new.frames < 1:
            raise ValueError("the server returned no new frames")
        return blended(new, keyed_end, None, fade=self.fade)
