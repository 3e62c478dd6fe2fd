"""Rotation conversions, vectorized over any leading shape.

Quaternions are (w, x, y, z). Matrices act on column vectors (v' = R @ v). Continuous
6D is HumanML3D's: the first two columns of the matrix, concatenated. Only numpy: this
module also runs inside Blender.
"""

import numpy as np

_EPS = 1e-12


def normalize(v: np.ndarray, axis: int = -1) -> np.ndarray:
    norm = np.linalg.norm(v, axis=axis, keepdims=True)
    return v / np.maximum(norm, _EPS)


# --- quaternions -----------------------------------------------------------------

def quat_identity(shape=()) -> np.ndarray:
    q = np.zeros(tuple(shape) + (4,))
    q[..., 0] = 1.0
    return q


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    # Written into one array (no stacking): this runs on every retargeted frame.
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = aw * bw - ax * bx - ay * by - az * bz
    out[..., 1] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 2] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 3] = aw * bz + ax * by - ay * bx + az * bw
    return out


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def quat_normalize(q: np.ndarray) -> np.ndarray:
    return normalize(np.asarray(q, dtype=np.float64))


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4); shapes broadcast."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    uv = np.cross(u, v)
    return v + 2.0 * (w * uv + np.cross(u, uv))


def quat_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The shortest-arc rotation taking direction u to direction v.

    For opposite directions the shortest arc is not unique; a half turn about an axis
    perpendicular to u is returned instead of the NaN a naive formula gives.
    """
    u = normalize(np.asarray(u, dtype=np.float64))
    v = normalize(np.asarray(v, dtype=np.float64))
    u, v = np.broadcast_arrays(u, v)
    q = np.concatenate([1.0 + np.sum(u * v, axis=-1, keepdims=True), np.cross(u, v)], axis=-1)
    opposite = np.linalg.norm(q, axis=-1) < 1e-9
    if np.any(opposite):
        uo = u[opposite]
        # Cross with the coordinate axis least aligned with u.
        helper = np.eye(3)[np.argmin(np.abs(uo), axis=-1)]
        q[opposite] = np.concatenate([np.zeros((len(uo), 1)), normalize(np.cross(uo, helper))], axis=-1)
    return normalize(q)


def quat_about_axis(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation by `angle` radians about unit `axis` (..., 3)."""
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def quat_make_continuous(q: np.ndarray, axis: int = 0, start_positive: bool = False) -> np.ndarray:
    """Flip signs so consecutive quaternions along `axis` (time) are in the same
    hemisphere, so keys interpolate the short way; with `start_positive` the first one
    also gets w >= 0. The one place the project makes rotations continuous."""
    q = np.moveaxis(np.asarray(q, dtype=np.float64), axis, 0).copy()
    if len(q):
        dots = np.empty(q.shape[:-1])
        dots[0] = q[0, ..., 0] if start_positive else 1.0
        np.einsum("t...i,t...i->t...", q[1:], q[:-1], out=dots[1:])
        q *= np.where(np.cumsum(dots < 0, axis=0) % 2 == 1, -1.0, 1.0)[..., None]
    return np.moveaxis(q, 0, axis)


def quat_positive_w(q: np.ndarray) -> np.ndarray:
    """Each quaternion in the hemisphere w >= 0: the shortest way to the same rotation."""
    return np.where(q[..., :1] < 0, -q, q)


def quat_slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    safe = np.where(near, 1.0, sin_theta)
    wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    wb = np.where(near, t, np.sin(t * theta) / safe)
    return quat_normalize(wa * a + wb * b)


# --- matrices --------------------------------------------------------------------

def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(quat_normalize(q), -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(m.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to unit quaternions with w >= 0.

    Uses whichever of the four formulas has the largest denominator, so it stays
    accurate near half turns.
    """
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = np.stack(
        [
            np.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            np.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22, m[..., 1, 2] + m[..., 2, 1]], -1),
            np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m00 - m11 + m22], -1),
        ],
        axis=-2,
    )
    # Candidate k has 4 * q_k^2 in position k; pick the largest for stability.
    diag = np.stack([candidates[..., k, k] for k in range(4)], axis=-1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    q = normalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def matrix_to_cont6d(m: np.ndarray) -> np.ndarray:
    """HumanML3D's continuous 6D: first column then second column."""
    m = np.asarray(m, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    d6 = np.asarray(d6, dtype=np.float64)
    x = normalize(d6[..., 0:3])
    z = normalize(np.cross(x, d6[..., 3:6]))
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    return matrix_to_cont6d(quat_to_matrix(q))


def cont6d_to_quat(d6: np.ndarray) -> np.ndarray:
    return matrix_to_quat(cont6d_to_matrix(d6))


# --- axis-angle ------------------------------------------------------------------

def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (..., 3), angle = norm in radians, to quaternions."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle, with its limit 0.5 at zero angle.
    scale = np.where(angle < 1e-8, 0.5 - angle**2 / 48.0, np.sin(half) / np.maximum(angle, 1e-30))
    return np.concatenate([np.cos(half), aa * scale], axis=-1)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """Quaternions to axis-angle vectors with angle in [0, pi]."""
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., :1])
    scale = np.where(sin_half < 1e-8, 2.0 + angle**2 / 12.0, angle / np.maximum(sin_half, 1e-30))
    return q[..., 1:] * scale


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    return quat_to_axis_angle(matrix_to_quat(m))


# --- Euler angles (BVH) ----------------------------------------------------------

def axis_rotation_matrix(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about the coordinate axis 'X', 'Y' or 'Z'."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    rows = {
        "X": [[one, zero, zero], [zero, c, -s], [zero, s, c]],
        "Y": [[c, zero, s], [zero, one, zero], [-s, zero, c]],
        "Z": [[c, -s, zero], [s, c, zero], [zero, zero, one]],
    }[axis]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def euler_to_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """Angles (..., 3) in radians, in the order BVH lists its channels.

    BVH's "Zrotation Xrotation Yrotation" means R = Rz @ Rx @ Ry: the listed rotations
    compose left to right (intrinsic), so the last one listed applies to vectors first.
    """
    angles = np.asarray(angles, dtype=np.float64)
    m = axis_rotation_matrix(order[0], angles[..., 0])
    for k in (1, 2):
        m = m @ axis_rotation_matrix(order[k], angles[..., k])
    return m


def matrix_to_euler(m: np.ndarray, order: str) -> np.ndarray:
    """Inverse of euler_to_matrix for any of the six orders of distinct axes."""
    m = np.asarray(m, dtype=np.float64)
    i, j, k = ("XYZ".index(a) for a in order)
    # Sign of the permutation (i, j, k) decides the signs of the formulas.
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    # For R = Ri(a) Rj(b) Rk(c): m[i, k] = sign * sin(b).
    sin_b = np.clip(sign * m[..., i, k], -1.0, 1.0)
    b = np.arcsin(sin_b)
    cos_b = np.sqrt(np.maximum(0.0, 1.0 - sin_b**2))
    regular = cos_b > 1e-6
    a = np.arctan2(-sign * m[..., j, k], m[..., k, k])
    c = np.arctan2(-sign * m[..., i, j], m[..., i, i])
    # Gimbal lock: only a +- c is defined; put it all in a.
    a_locked = np.arctan2(sign * m[..., k, j], m[..., j, j])
    a = np.where(regular, a, a_locked)
    c = np.where(regular, c, 0.0)
    return np.stack([a, b, c], axis=-1)


def unwrap_euler(angles: np.ndarray, axis: int = 0) -> np.ndarray:
    """Make Euler angle curves continuous over time (no 360-degree jumps)."""
    return np.unwrap(np.asarray(angles, dtype=np.float64), axis=axis)
