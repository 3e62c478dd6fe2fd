"""Locomotion along a path: a motion's joints bent so its root follows a polyline on the
ground, planted feet held still. Pure numpy (no bpy, no torch).

Motions are joint positions (T, 22, 3) in the SMPL/HumanML3D frame the server returns
(metres, Y up, ground = XZ, the body facing +Z). Paths are polylines (N, 3) in the same
frame; only their ground track (X, Z) counts: heights stay the motion's own.

How a motion follows a path. The root's ground track, smoothed over about a step (so the
pelvis's sway is not counted as travel), is the motion's own trajectory: at each frame a
point on it and a direction of travel. The body relative to that moving frame (sway,
facing, limbs) is kept; the frame itself is laid onto the path: the point goes to the
path's point at the same arc length (the motion's own travel so far), the direction of
travel turns to the path's tangent there. So each frame is the original frame turned
about the vertical and moved: a rigid transform, no limb changes. Where the path bends
while a foot is planted, that turn would drag the foot around; the foot instead keeps the
transform of the frame its contact began (held still exactly as still as it was), and
two-bone IK on joint positions puts the knee back, bone lengths kept. Past the path's end
the motion runs on straight along its last tangent.

Heading angles (yaw) are about +Y, zero facing +Z, positive turning towards +X (the
body's left), as the synthesizer counts them: forward = (sin yaw, 0, cos yaw).
"""

from dataclasses import dataclass

import numpy as np

from .contract import MODEL_FPS
from .skeleton import JOINT_INDEX

TRACK_SMOOTHING_SECONDS = 0.5  # sigma of the smoothing that takes the pelvis's sway out of the travel
TANGENT_SPAN = 0.15  # metres either side of a point over which the path's tangent is measured
LOCK_BLEND_FRAMES = 3  # frames over which a held foot eases in and out (as transfer.lock_targets)

_LEGS = (
    (JOINT_INDEX["left_hip"], JOINT_INDEX["left_knee"], JOINT_INDEX["left_ankle"], JOINT_INDEX["left_foot"]),
    (JOINT_INDEX["right_hip"], JOINT_INDEX["right_knee"], JOINT_INDEX["right_ankle"], JOINT_INDEX["right_foot"]),
)


# --- frames of reference ------------------------------------------------------------------

def blender_to_model(points) -> np.ndarray:
    """Points (..., 3) from Blender's frame (Z up, a character facing -Y) to the model's
    (Y up, facing +Z): (x, y, z) -> (x, z, -y). The inverse of addon/smpl_body.py's
    _to_blender. Apply it to points already in the armature's space (the object's
    matrix_world inverted), so the motion lands where the armature stands."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def model_to_blender(points) -> np.ndarray:
    """The inverse of blender_to_model: (x, y, z) -> (x, -z, y)."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


# --- what a motion does on the ground -------------------------------------------------------

def facing_yaw(joints) -> np.ndarray:
    """(T,) the body's heading in radians from its hips and shoulders (the direction
    perpendicular to right-to-left across them, on the ground), unwrapped over time."""
    raise NotImplementedError


def ground_track(joints, fps: float = MODEL_FPS) -> np.ndarray:
    """(T, 2) the root's (X, Z) smoothed over TRACK_SMOOTHING_SECONDS: the trajectory
    the motion travels along, without the pelvis's sway. Ends extrapolated linearly, so
    a steady walk's track is straight and steady to its last frame."""
    raise NotImplementedError


def travel(joints, fps: float = MODEL_FPS) -> np.ndarray:
    """(T,) metres travelled along ground_track up to each frame (0 at frame 0)."""
    raise NotImplementedError


def foot_sliding(joints, fps: float = MODEL_FPS, contacts=None) -> float:
    """Mean horizontal speed of planted ankles in cm/s, as foot locking measures it
    (transfer.foot_contacts, transfer.foot_skating); `contacts` (T, 2) to measure the
    same frames in two motions (default: the motion's own contacts)."""
    raise NotImplementedError


# --- paths ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Path:
    """A polyline on the ground: points (N, 2) as (X, Z), distinct consecutive points,
    and the arc length at each point (N,), 0 at the first."""

    points: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_points(cls, points) -> "Path":
        """From (N, 3) points in the model's frame (Y ignored). Consecutive duplicates are
        dropped; raises ValueError (one line) on a wrong shape, non-finite values, or a
        path shorter than 1 cm."""
        raise NotImplementedError

    @property
    def length(self) -> float:
        return float(self.lengths[-1])

    def point_at(self, distance) -> np.ndarray:
        """(..., 2) the point at arc length `distance` (...,): beyond either end, straight
        on along the end's tangent."""
        raise NotImplementedError

    def yaw_at(self, distance) -> np.ndarray:
        """(...,) the tangent's heading at arc length `distance`, measured across
        TANGENT_SPAN either side (so a sampled curve's corners do not snap)."""
        raise NotImplementedError

    def nearest(self, xz) -> tuple:
        """For points (..., 2): (distance from the path in metres, arc length of the
        nearest point on it)."""
        raise NotImplementedError


@dataclass(frozen=True)
class FollowedPath:
    """follow_path's answer: the bent joints (T, 22, 3); the contacts used (T, 2: left,
    right ankle planted); foot sliding in cm/s of the motion before and of the result
    (same contact frames); and how far along the path each frame's trajectory point is
    (T,) (more than path.length: the motion ran past the end, straight on)."""

    joints: np.ndarray
    contacts: np.ndarray
    sliding_before: float
    sliding_after: float
    distance: np.ndarray
    path: Path


def follow_path(joints, path_points, fps: float = MODEL_FPS, start: float = 0.0, hold_feet: bool = True) -> FollowedPath:
    """The motion `joints` (T, 22, 3) walked along the polyline `path_points` (N, 3),
    both in the model's frame. Frame 0's trajectory point goes to the path's point at
    arc length `start` (metres), the direction of travel along its tangent; then each
    frame lies as far along the path as the motion has travelled (travel()). With
    hold_feet, planted feet stay where their contact began (see the module's docstring).
    A motion that does not travel stands at that point facing along the tangent (its
    facing relative to the travel direction is taken from its body)."""
    raise NotImplementedError


def path_error(joints, path_points, fps: float = MODEL_FPS) -> tuple:
    """How well `joints` follows the path: (largest distance in metres of the root's
    ground position (the pelvis, sway and all) from the path, largest angle in degrees
    between the body's facing (facing_yaw) and the path's tangent at the nearest
    point), over all frames."""
    raise NotImplementedError
