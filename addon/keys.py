"""Writing a Pose into actions, in bulk: one `keyframe_points.add` + `foreach_set` per
channel, never one keyframe_insert per key.

Where the F-curves live (on the action, or in a slot's channelbag) is actions.py's
business. Rotations are written in each bone's own rotation mode (quaternion,
axis-angle or any Euler order), so the user's rig is not switched to another mode
behind their back.
"""

import numpy as np

from . import actions
from .retarget.rotation import matrix_to_euler, quat_make_continuous, quat_to_axis_angle, quat_to_matrix, unwrap_euler
from .retarget.transfer import Pose

def euler_from_quat(q: np.ndarray, mode: str) -> np.ndarray:
    """Blender Euler angles (..., 3) for rotation mode `mode`, stored by axis (x, y, z)
    whatever the order. Mode 'XZY' applies X first: R = Ry Rz Rx, which is
    retarget's matrix_to_euler with the axes listed outermost first ('YZX')."""
    outermost_first = mode[::-1]
    angles = matrix_to_euler(quat_to_matrix(q), outermost_first)
    by_axis = np.empty_like(angles)
    by_axis[..., ["XYZ".index(axis) for axis in outermost_first]] = angles
    return by_axis


def rotation_channels(pose_bone, quaternions: np.ndarray):
    """(property, (T, n) values) that give `pose_bone` these rotations in its mode."""
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        return "rotation_quaternion", quaternions
    if mode == "AXIS_ANGLE":
        aa = quat_to_axis_angle(quaternions)
        angle = np.linalg.norm(aa, axis=-1, keepdims=True)
        axis = np.where(angle > 1e-9, aa / np.maximum(angle, 1e-30), [0.0, 1.0, 0.0])
        return "rotation_axis_angle", np.concatenate([angle, axis], axis=-1)
    return "rotation_euler", unwrap_euler(euler_from_quat(quaternions, mode), axis=0)


def pose_channels(obj, pose: Pose):
    """[(data_path, index, group, (T,) values)] for every channel the pose keys."""
    missing = [name for name in (*pose.bones, pose.root_bone) if name not in obj.pose.bones]
    if missing:
        raise ValueError(f"armature {obj.name!r} has no bones named " + ", ".join(missing[:5]))
    rotations = np.asarray(pose.rotations, dtype=np.float64)
    channels = []
    for k, name in enumerate(pose.bones):
        prop, values = rotation_channels(obj.pose.bones[name], rotations[:, k])
        path = f'pose.bones["{name}"].{prop}'
        channels += [(path, i, name, values[:, i]) for i in range(values.shape[1])]
    location = np.asarray(pose.root_location, dtype=np.float64)
    path = f'pose.bones["{pose.root_bone}"].location'
    channels += [(path, i, pose.root_bone, location[:, i]) for i in range(3)]
    return channels


def _fill(curve, frames: np.ndarray, values: np.ndarray) -> None:
    """Append keys (frames, values) to `curve` in one batch."""
    points = curve.keyframe_points
    start = len(points)
    points.add(len(frames))
    co = np.empty(2 * len(points), dtype=np.float32)
    points.foreach_get("co", co)
    co[2 * start:] = np.column_stack([frames, values]).ravel()
    points.foreach_set("co", co)


def keyframe_pose(obj, pose: Pose, frame_start: int = 1, action_name: str | None = None):
    """Write `pose` as a new action on the armature, one key per frame from
    frame_start, and assign it. Returns the action. Nothing is left behind on failure.

    Keys are one frame apart: resample the motion to the scene's frame rate first."""
    channels = pose_channels(obj, pose)
    frames = np.arange(pose.frames, dtype=np.float64) + frame_start
    store = actions.new_object_action(obj, action_name or f"{obj.name} motion")
    try:
        for path, index, group, values in channels:
            curve = store.new(path, index, group)
            _fill(curve, frames, values)
            curve.update()
    except Exception:
        actions.remove(store.action)
        raise
    actions.assign(obj, store.action, store.slot)
    return store.action


def _frozen(curve, start: float, end: float):
    """Every key of `curve` outside [start, end]: frame -> (left, right handle)."""
    return {round(p.co[0], 4): (tuple(p.handle_left), tuple(p.handle_right))
            for p in curve.keyframe_points if not start <= p.co[0] <= end}


def _keep_handles(curve, frozen: dict) -> None:
    """Put back the handles of keys outside the written range. Blender recomputes
    automatic handles from the neighbouring keys, so the keys next to new ones would
    change shape (and so would the curve outside the range); their handles are set
    free at their old positions instead."""
    for point in curve.keyframe_points:
        kept = frozen.get(round(point.co[0], 4))
        if kept is None:
            continue
        left, right = kept
        if tuple(point.handle_left) == left and tuple(point.handle_right) == right:
            continue
        point.handle_left_type = "FREE"
        point.handle_right_type = "FREE"
        point.handle_left = left
        point.handle_right = right


def _reference_values(curves, frame: float, default) -> np.ndarray:
    return np.array([c.evaluate(frame) if c is not None else d for c, d in zip(curves, default)])


def _signs_between(q: np.ndarray, before: np.ndarray, after: np.ndarray | None) -> np.ndarray:
    """Quaternions (T, 4) with signs chosen so the channels run on from `before` (the
    key before) and into `after` (the key after). q and -q are the same rotation, but
    Blender interpolates the four channels one by one, so a sign change between keys
    swings the bone through other rotations. When the path between the two keys needs
    one anyway, it goes where the motion turns fastest."""
    q = quat_make_continuous(np.asarray(q, dtype=np.float64), axis=0)
    if np.dot(q[0], before) < 0:
        q = -q
    if after is not None and len(q) > 1 and np.dot(q[-1], after) < 0:
        turn = np.abs(np.sum(q[1:] * q[:-1], axis=-1))  # cos of half the turn between frames
        q[int(np.argmin(turn)) + 1:] *= -1
    return q


def _turns_between(angles: np.ndarray, before: np.ndarray, after: np.ndarray | None) -> np.ndarray:
    """Euler angles (T, 3) shifted by whole turns to run on from `before` and into
    `after`; a turn the path between the keys needs goes where that angle moves most."""
    turn = 2 * np.pi
    angles = angles + turn * np.round((before - angles[0]) / turn)
    if after is not None and len(angles) > 1:
        missing = np.round((after - angles[-1]) / turn)
        for axis in np.flatnonzero(missing):
            k = int(np.argmax(np.abs(np.diff(angles[:, axis]))))
            angles[k + 1:, axis] += turn * missing[axis]
    return angles


def replace_keys(obj, action, pose: Pose, frame_start: int) -> None:
    """Key `pose` into the object's existing `action` on frames frame_start ..
    frame_start + T - 1: keys of those channels inside that range are replaced, every
    key outside it keeps every float (position and handles). Channels the action does
    not have yet get keys on the range only, plus, so the pose outside the range stays
    what it was, the bone's current value one frame before and after it."""
    frames = np.arange(pose.frames, dtype=np.float64) + frame_start
    first, last = float(frames[0]), float(frames[-1])
    store = actions.ObjectChannels(action, obj, new_slot=False)
    channels = pose_channels(obj, pose)
    # Group the channels by property so rotations stay continuous with the keys before.
    by_property = {}
    for path, index, group, values in channels:
        by_property.setdefault(path, []).append((index, group, values))
    for path, parts in by_property.items():
        curves = [store.find(path, index) for index, _, _ in parts]
        values = np.stack([v for _, _, v in parts], axis=-1)
        prop = path.rsplit(".", 1)[1]
        current = np.array(obj.path_resolve(path), dtype=np.float64).reshape(-1)
        before = _reference_values(curves, first - 1, current)
        keyed_after = any(c is not None and len(c.keyframe_points) and c.keyframe_points[-1].co[0] > last
                          for c in curves)
        after = _reference_values(curves, last + 1, current) if keyed_after else None
        if prop == "rotation_quaternion":
            values = _signs_between(values, before, after)
        elif prop == "rotation_euler":
            values = _turns_between(values, before, after)
        for (index, group, _), curve, column in zip(parts, curves, values.T):
            if curve is None:
                curve = store.new(path, index, group)
                _fill(curve, np.array([first - 1, last + 1]), np.array([current[index]] * 2))
            frozen = _frozen(curve, first, last)
            inside = [p for p in curve.keyframe_points if first <= p.co[0] <= last]
            for point in reversed(inside):
                curve.keyframe_points.remove(point, fast=True)
            _fill(curve, frames, column)
            curve.update()
            _keep_handles(curve, frozen)

