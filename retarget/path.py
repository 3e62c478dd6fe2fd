"""Locomotion along a path: a motion's joints bent so its root follows a polyline on the
ground, planted feet held still. Pure numpy (no bpy, no torch).

Motions are joint positions (T, 22, 3) in the SMPL/HumanML3D frame the server returns
(metres, Y up, ground = XZ, the body facing +Z). Paths are polylines (N, 3) in the same
frame; only their ground track (X, Z) counts: heights stay the motion's own.

How a motion follows a path. The root's ground track, smoothed over about a step (so the
pelvis's sway is not counted as travel), is the motion's own trajectory: at each frame a
point on it and a direction of travel. The body relative to that moving frame (sway,
facing, limbs) is kept; the frame itself is laid onto the path: the root's place along
the track goes to the path's point at the same arc length (the motion's own travel so
far), the direction of travel turns to the path's tangent there. So each frame is the original frame turned
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
from .motion import validate_positions
from .skeleton import FACE_JOINTS, JOINT_INDEX
from .transfer import foot_contacts, foot_skating

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

def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 with the ends extended by odd reflection (a
    straight steady line stays exactly itself, to its ends)."""
    x = np.asarray(x, dtype=np.float64)
    if sigma <= 0 or len(x) < 2:
        return x.copy()
    radius = int(4.0 * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    pad = [(radius, radius)] + [(0, 0)] * (x.ndim - 1)
    padded = np.pad(x, pad, mode="reflect", reflect_type="odd")
    out = np.zeros_like(x)
    for k, w in enumerate(kernel):
        out += w * padded[k : k + len(x)]
    return out


def _yaw_of(vectors: np.ndarray) -> np.ndarray:
    """Heading of ground vectors (..., 2) as (X, Z)."""
    return np.arctan2(vectors[..., 0], vectors[..., 1])


def rotate_ground(xz: np.ndarray, yaw) -> np.ndarray:
    """Ground points (..., 2) turned about the vertical by `yaw` (broadcast over ...)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([c * xz[..., 0] + s * xz[..., 1], -s * xz[..., 0] + c * xz[..., 1]], axis=-1)


def facing_yaw(joints) -> np.ndarray:
    """(T,) the body's heading in radians from its hips and shoulders (the direction
    perpendicular to right-to-left across them, on the ground), unwrapped over time."""
    joints = validate_positions(joints)
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS
    across = joints[:, r_hip] - joints[:, l_hip] + joints[:, r_shoulder] - joints[:, l_shoulder]
    # forward = up x across, on the ground: (across_z, -across_x) as (X, Z)
    forward = np.stack([across[:, 2], -across[:, 0]], axis=-1)
    return np.unwrap(_yaw_of(forward))


def ground_track(joints, fps: float = MODEL_FPS) -> np.ndarray:
    """(T, 2) the root's (X, Z) smoothed over TRACK_SMOOTHING_SECONDS: the trajectory
    the motion travels along, without the pelvis's sway. Ends extrapolated linearly, so
    a steady walk's track is straight and steady to its last frame."""
    joints = validate_positions(joints)
    return _smooth(joints[:, 0][:, [0, 2]], TRACK_SMOOTHING_SECONDS * fps)


def travel(joints, fps: float = MODEL_FPS) -> np.ndarray:
    """(T,) metres travelled along ground_track up to each frame (0 at frame 0)."""
    return _arc_lengths(ground_track(joints, fps))


def _arc_lengths(points: np.ndarray) -> np.ndarray:
    steps = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def foot_sliding(joints, fps: float = MODEL_FPS, contacts=None) -> float:
    """Mean horizontal speed of planted ankles in cm/s, as foot locking measures it
    (transfer.foot_contacts, transfer.foot_skating); `contacts` (T, 2) to measure the
    same frames in two motions (default: the motion's own contacts)."""
    joints = validate_positions(joints)
    if contacts is None:
        contacts = foot_contacts(joints, fps)
    ankles = joints[:, [_LEGS[0][2], _LEGS[1][2]]]
    return 100.0 * foot_skating(ankles, np.asarray(contacts, dtype=bool), fps, (0.0, 1.0, 0.0))


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
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != 3 or len(points) < 2:
            raise ValueError(f"a path must be at least 2 points of shape (N, 3), got {points.shape}")
        if not np.issubdtype(points.dtype, np.number) or not np.all(np.isfinite(points.astype(np.float64))):
            raise ValueError("the path's points must be finite numbers")
        xz = points.astype(np.float64)[:, [0, 2]]
        keep = np.concatenate([[True], np.linalg.norm(np.diff(xz, axis=0), axis=-1) > 1e-6])
        xz = xz[keep]
        lengths = _arc_lengths(xz)
        if lengths[-1] < 0.01:
            raise ValueError(f"the path is {100 * lengths[-1]:.2g} cm long on the ground: at least 1 cm is needed")
        return cls(xz, lengths)

    @property
    def length(self) -> float:
        return float(self.lengths[-1])

    def _inside(self, distance) -> np.ndarray:
        d = np.clip(np.asarray(distance, dtype=np.float64), 0.0, self.length)
        return np.stack([np.interp(d, self.lengths, self.points[:, 0]), np.interp(d, self.lengths, self.points[:, 1])], axis=-1)

    def point_at(self, distance) -> np.ndarray:
        """(..., 2) the point at arc length `distance` (...,): beyond either end, straight
        on along the end's tangent."""
        d = np.asarray(distance, dtype=np.float64)
        point = self._inside(d)
        before, after = np.minimum(d, 0.0), np.maximum(d - self.length, 0.0)
        start_yaw, end_yaw = self.yaw_at(0.0), self.yaw_at(self.length)
        point = point + before[..., None] * np.array([np.sin(start_yaw), np.cos(start_yaw)])
        return point + after[..., None] * np.array([np.sin(end_yaw), np.cos(end_yaw)])

    def yaw_at(self, distance) -> np.ndarray:
        """(...,) the tangent's heading at arc length `distance`, measured across
        TANGENT_SPAN either side (so a sampled curve's corners do not snap)."""
        d = np.clip(np.asarray(distance, dtype=np.float64), 0.0, self.length)
        span = min(TANGENT_SPAN, self.length / 2)
        lo = np.clip(d - span, 0.0, self.length - 2 * span)
        return _yaw_of(self._inside(lo + 2 * span) - self._inside(lo))

    def nearest(self, xz) -> tuple:
        """For points (..., 2): (distance from the path in metres, arc length of the
        nearest point on it)."""
        xz = np.asarray(xz, dtype=np.float64)
        flat = xz.reshape(-1, 2)
        a, b = self.points[:-1], self.points[1:]
        seg = b - a
        seg_len = np.linalg.norm(seg, axis=-1)
        rel = flat[:, None] - a[None]  # (M, S, 2)
        u = np.clip(np.sum(rel * seg[None], axis=-1) / seg_len[None] ** 2, 0.0, 1.0)
        gap = np.linalg.norm(rel - u[..., None] * seg[None], axis=-1)
        best = np.argmin(gap, axis=1)
        rows = np.arange(len(flat))
        arc = self.lengths[best] + u[rows, best] * seg_len[best]
        return gap[rows, best].reshape(xz.shape[:-1]), arc.reshape(xz.shape[:-1])


@dataclass(frozen=True)
class FollowedPath:
    """follow_path's answer: the bent joints (T, 22, 3); the contacts used (T, 2: left,
    right ankle planted); foot sliding in cm/s of the motion before and of the result
    (same contact frames); and how far along the path each frame's root is (T,) (more
    than path.length: the motion ran past the end, straight on)."""

    joints: np.ndarray
    contacts: np.ndarray
    sliding_before: float
    sliding_after: float
    distance: np.ndarray
    path: Path


MOVING_SPEED = 0.05  # m/s of the smoothed track below which a frame's direction of travel is taken from its neighbours


def _travel_yaw(track: np.ndarray, joints: np.ndarray, fps: float) -> np.ndarray:
    """(T,) the direction of travel of the smoothed track, unwrapped. Frames that barely
    move take it from the nearest moving frames; a motion that never moves takes its
    first frame's facing (so it keeps its own turns and starts facing along the path)."""
    velocity = np.gradient(track, axis=0) if len(track) > 1 else np.zeros_like(track)
    speed = np.linalg.norm(velocity, axis=-1) * fps
    moving = np.flatnonzero(speed > MOVING_SPEED)
    if not len(moving):
        return np.full(len(track), facing_yaw(joints[:1])[0])
    yaw = np.unwrap(_yaw_of(velocity[moving]))
    return np.interp(np.arange(len(track)), moving, yaw)


def _runs(flags: np.ndarray):
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.diff(padded)
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def _held(turn: np.ndarray, shift: np.ndarray, contacts: np.ndarray, blend: int) -> tuple:
    """Per-frame transforms (turn (T,), shift (T, 2)) for one foot: the body's, except
    during each contact, which keeps the transform of its first frame, eased in and out
    over `blend` frames (weights as transfer.lock_targets), and the strength (T,)."""
    frames = len(turn)
    t = np.arange(frames)
    weighted_turn, weighted_shift, weights = np.zeros(frames), np.zeros((frames, 2)), np.zeros(frames)
    own_turn, own_shift = turn.copy(), shift.copy()  # during a contact: its own first frame's, never a blend
    for start, end in _runs(contacts):
        own_turn[start : end + 1], own_shift[start : end + 1] = turn[start], shift[start]
        before = np.clip((t - (start - blend - 1)) / (blend + 1), 0.0, 1.0)
        after = np.clip(((end + blend + 1) - t) / (blend + 1), 0.0, 1.0)
        w = np.minimum(before, after)
        w = w * w * (3 - 2 * w)
        weighted_turn += w * turn[start]
        weighted_shift += w[:, None] * shift[start]
        weights += w
    strength = np.where(contacts, 1.0, np.minimum(weights, 1.0))
    safe = np.maximum(weights, 1e-12)
    held_turn = np.where(weights > 0, weighted_turn / safe, turn)
    held_shift = np.where(weights[:, None] > 0, weighted_shift / safe[:, None], shift)
    held_turn = np.where(contacts, own_turn, held_turn)
    held_shift = np.where(contacts[:, None], own_shift, held_shift)
    foot_turn = turn + strength * (held_turn - turn)
    foot_shift = shift + strength[:, None] * (held_shift - shift)
    return foot_turn, foot_shift, strength


def _transform(joints: np.ndarray, turn: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """joints (T, J, 3) -> ground part turned by turn (T,) and moved by shift (T, 2)."""
    out = joints.copy()
    out[..., [0, 2]] = rotate_ground(joints[..., [0, 2]], turn[:, None]) + shift[:, None]
    return out


def _knee_for(hip, knee, ankle, target):
    """The knee (T, 3) that puts the ankle on `target` with the leg's bone lengths,
    bending in the leg's own plane, and where the ankle lands (the target, or as near as
    the leg reaches)."""
    upper = np.linalg.norm(knee - hip, axis=-1)
    lower = np.linalg.norm(ankle - knee, axis=-1)
    to_target = target - hip
    reach = np.clip(np.linalg.norm(to_target, axis=-1), np.abs(upper - lower) + 1e-6, upper + lower - 1e-6)
    u = to_target / np.maximum(np.linalg.norm(to_target, axis=-1, keepdims=True), 1e-12)
    side = (knee - hip) - np.sum((knee - hip) * u, axis=-1, keepdims=True) * u
    v = side / np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-12)
    cos_a = np.clip((upper**2 + reach**2 - lower**2) / (2 * upper * reach), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a**2)
    new_knee = hip + upper[:, None] * (cos_a[:, None] * u + sin_a[:, None] * v)
    return new_knee, hip + reach[:, None] * u


def follow_path(joints, path_points, fps: float = MODEL_FPS, start: float = 0.0, hold_feet: bool = True) -> FollowedPath:
    """The motion `joints` (T, 22, 3) walked along the polyline `path_points` (N, 3),
    both in the model's frame. Frame 0's root goes to the path's point at arc length
    `start` (metres), the direction of travel along its tangent; then each frame's root
    lies as far along the path as the motion has carried it (its smoothed track's arc
    length, travel(), plus how far the pelvis is ahead of that smoothed point), the
    body turned by the tangent there (its sway across the track kept). With
    hold_feet, planted feet stay where their contact began (see the module's docstring).
    A motion that does not travel stands at that point facing along the tangent (its
    facing relative to the travel direction is taken from its body)."""
    joints = validate_positions(joints)
    path = Path.from_points(path_points)
    track = ground_track(joints, fps)
    travel_yaw = _travel_yaw(track, joints, fps)
    # The root's own place along the track: the smoothed point plus how far the pelvis is
    # ahead of it (a stride's surge, a smoothing's lag where the pace changes). Turning by
    # the tangent there, not at the smoothed point, keeps the body facing along the curve
    # where it actually is.
    direction = np.stack([np.sin(travel_yaw), np.cos(travel_yaw)], axis=-1)
    ahead = np.sum((joints[:, 0][:, [0, 2]] - track) * direction, axis=-1)
    origin = track + ahead[:, None] * direction
    distance = start + _arc_lengths(track) + ahead - ahead[0]
    turn = np.unwrap(path.yaw_at(distance) - travel_yaw)
    # x' = R(turn) (x - origin) + path point = R(turn) x + shift
    shift = path.point_at(distance) - rotate_ground(origin, turn)
    out = _transform(joints, turn, shift)
    contacts = foot_contacts(joints, fps)
    if hold_feet:
        for side, (hip, knee, ankle, toe) in enumerate(_LEGS):
            if not contacts[:, side].any():
                continue
            foot_turn, foot_shift, strength = _held(turn, shift, contacts[:, side], LOCK_BLEND_FRAMES)
            held = np.flatnonzero(strength > 0)
            feet = _transform(joints[held][:, [ankle, toe]], foot_turn[held], foot_shift[held])
            new_knee, new_ankle = _knee_for(out[held, hip], out[held, knee], out[held, ankle], feet[:, 0])
            out[held, knee] = new_knee
            out[held, toe] = new_ankle + (feet[:, 1] - feet[:, 0])
            out[held, ankle] = new_ankle
    return FollowedPath(out, contacts, foot_sliding(joints, fps, contacts), foot_sliding(out, fps, contacts), distance, path)


def path_error(joints, path_points, fps: float = MODEL_FPS) -> tuple:
    """How well `joints` follows the path: (largest distance in metres of the root's
    ground position (the pelvis, sway and all) from the path, largest angle in degrees
    between the body's facing (facing_yaw) and the path's tangent at the nearest
    point), over all frames."""
    joints = validate_positions(joints)
    path = Path.from_points(path_points)
    gap, arc = path.nearest(joints[:, 0][:, [0, 2]])
    off = np.angle(np.exp(1j * (facing_yaw(joints) - path.yaw_at(arc))))
    return float(gap.max()), float(np.degrees(np.abs(off).max()))
