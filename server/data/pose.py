"""Joint-angle building blocks for synthesizing motion on the SMPL-22 rest skeleton.

The rest pose is a T-pose, Y up, facing +Z, +X the body's left. Every function returns
local quaternions (T, 4) for one joint from angle curves (T,) in radians, named by what
the angle does to the body, so the actions read as a choreographer would write them:

    hip_flexion > 0      thigh forward          knee_flexion > 0   shin back
    ankle_pitch > 0      toes down              spine_flexion > 0  lean forward
    hip_abduction > 0    leg out to its side    yaw > 0            turn to the left
    arm_elevation > 0    arm up from the T-pose (negative: down towards the body)
    arm_forward > 0      arm swings forward     elbow_flexion > 0  forearm forward
    elbow_raise > 0      forearm up (a waving forearm)
"""

import numpy as np

from retarget.rotation import quat_about_axis, quat_mul

X, Y, Z = np.eye(3)


def about(axis: np.ndarray, angle) -> np.ndarray:
    return quat_about_axis(axis, np.asarray(angle, dtype=np.float64))


def hip(side: int, flexion, abduction=0.0, twist=0.0) -> np.ndarray:
    """side +1 left, -1 right."""
    return quat_mul(quat_mul(about(Z, side * np.asarray(abduction)), about(X, -np.asarray(flexion))), about(Y, twist))


def knee(flexion) -> np.ndarray:
    return about(X, flexion)


def ankle(pitch) -> np.ndarray:
    return about(X, pitch)


def spine(flexion, bend=0.0, twist=0.0) -> np.ndarray:
    """bend > 0 leans to the body's left."""
    return quat_mul(quat_mul(about(Y, twist), about(X, flexion)), about(Z, -np.asarray(bend)))


def shoulder(side: int, elevation, forward=0.0) -> np.ndarray:
    """The arm from the T-pose: up/down in the body's plane, then swung forward."""
    return quat_mul(about(Y, -side * np.asarray(forward)), about(Z, side * np.asarray(elevation)))


def elbow(side: int, flexion=0.0, raise_=0.0) -> np.ndarray:
    return quat_mul(about(Y, -side * np.asarray(flexion)), about(Z, side * np.asarray(raise_)))


def yaw(angle) -> np.ndarray:
    return about(Y, angle)


def smoothstep(x) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def bump(t, start, end) -> np.ndarray:
    """0 outside [start, end], rising smoothly to 1 in the middle."""
    x = np.clip((np.asarray(t) - start) / max(end - start, 1e-6), 0.0, 1.0)
    return np.sin(np.pi * x) ** 2


def envelope(t, duration, ramp=0.4) -> np.ndarray:
    """1 in the middle of a segment, easing in and out over `ramp` seconds."""
    ramp = min(ramp, duration / 2)
    return smoothstep(np.asarray(t) / ramp) * smoothstep((duration - np.asarray(t)) / ramp)
