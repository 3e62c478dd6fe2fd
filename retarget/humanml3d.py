"""HumanML3D's 263-d motion features, from joint positions and back.

This follows the dataset's published processing step by step, so features made here
are the ones MotionGPT was trained on, and `joints_from_features` reproduces the
`new_joints` files the dataset publishes for its `new_joint_vecs`. Frame layout:

    [0]        root angular velocity about Y (half the angle per frame, radians)
    [1:3]      root linear velocity on XZ, in the root's facing frame
    [3]        root height
    [4:67]     21 joint positions relative to the root, in the facing frame
    [67:193]   21 joint rotations as continuous 6D (per kinematic chain)
    [193:259]  22 joint velocities in the facing frame
    [259:263]  foot contacts: left ankle, left foot, right ankle, right foot

T positions give T-1 feature frames (velocities need the next frame).

Two facts of the published code that matter: the facing direction the features are
measured in is not the one used to turn the clip to face +Z (see _facing_rotation),
and the first frame's facing is forced to identity. Both are reproduced.

One deliberate difference: where the facing direction crosses 180 degrees from the
first frame, the published code reads the angular velocity off a quaternion in the
wrong hemisphere and gets its sign wrong. Here the sign is right; every other frame is
the same.
"""

import numpy as np

from .rotation import normalize, quat_between, quat_conj, quat_mul, quat_rotate, quat_to_cont6d
from .skeleton import (
    BONE_LENGTHS,
    FACE_JOINTS,
    HML3D_CHAINS,
    HML3D_RAW_DIRECTIONS,
    JOINT_COUNT,
    LEFT_FOOT_JOINTS,
    PARENTS,
    RIGHT_FOOT_JOINTS,
)

FEATURE_SIZE = 263
FPS = 20
ROOT_FEATURES = slice(0, 4)  # turn rate, ground velocity (x, z), height
POSITION_FEATURES = slice(4, 67)  # the 21 non-root joints, root-relative
FOOT_CONTACT_THRESHOLD = 0.002  # squared metres per frame, as published
_FACING_SMOOTHING_SIGMA = 20.0  # frames

# The reference skeleton's offsets along HumanML3D's raw directions.
HML3D_OFFSETS = HML3D_RAW_DIRECTIONS * BONE_LENGTHS[:, None]


def gaussian_smooth(x: np.ndarray, sigma: float, axis: int = 0) -> np.ndarray:
    """Gaussian filter with edge-repeat padding, the same as
    scipy.ndimage.gaussian_filter1d(x, sigma, axis, mode="nearest") (truncate 4)."""
    radius = int(4.0 * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    padded = np.concatenate([np.repeat(x[:1], radius, 0), x, np.repeat(x[-1:], radius, 0)])
    # Sum of shifted copies: radius is 80 for sigma 20, so this is 161 vector adds.
    out = np.zeros_like(x)
    for k, weight in enumerate(kernel):
        out += weight * padded[k : k + len(x)]
    return np.moveaxis(out, 0, axis)


def _facing_rotation(joints: np.ndarray, smooth: bool, as_published_features: bool = False) -> np.ndarray:
    """Per-frame rotation about Y that turns the body's facing direction to +Z.

    The facing direction is perpendicular to the right-to-left line of hips plus
    shoulders. The published feature code unpacks the hip indices the other way round
    (left minus right hip, plus right minus left shoulder), so the facing its features
    are measured in leans on the shoulders and on the hip-shoulder twist;
    `as_published_features` reproduces that, which the features need to match the
    dataset (and MotionGPT's training data).
    """
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS
    hips = joints[:, r_hip] - joints[:, l_hip]
    if as_published_features:
        hips = -hips
    across = hips + (joints[:, r_shoulder] - joints[:, l_shoulder])
    across = normalize(across)
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    if smooth:
        forward = gaussian_smooth(forward, _FACING_SMOOTHING_SIGMA, axis=0)
    return quat_between(normalize(forward), np.array([0.0, 0.0, 1.0]))


def chain_rotations(joints: np.ndarray, smooth_forward: bool) -> np.ndarray:
    """HumanML3D's per-chain inverse kinematics (its rotation features).

    Returns (T, 22, 4): index 0 is the facing rotation (identity at the first frame,
    as published); every other joint's rotation turns its raw direction onto its bone,
    relative to the rotation accumulated along its kinematic chain, where each chain
    starts from the facing rotation (not from the joint it branches off).
    """
    frames = len(joints)
    facing = _facing_rotation(joints, smooth_forward, as_published_features=True)
    facing[0] = [1.0, 0.0, 0.0, 0.0]
    quats = np.zeros((frames, JOINT_COUNT, 4))
    quats[:, 0] = facing
    for chain in HML3D_CHAINS:
        accumulated = facing
        for parent, child in zip(chain[:-1], chain[1:]):
            bone = normalize(joints[:, child] - joints[:, parent])
            world = quat_between(HML3D_RAW_DIRECTIONS[child], bone)
            local = quat_mul(quat_conj(accumulated), world)
            quats[:, child] = local
            accumulated = quat_mul(accumulated, local)
    return quats


def to_reference_skeleton(joints: np.ndarray) -> np.ndarray:
    """Rebuild a motion on the reference skeleton, keeping every bone's direction
    (HumanML3D's "uniform skeleton" step). The root trajectory is scaled by the ratio of
    lower-leg lengths (right knee and ankle bones of the first frame)."""
    joints = np.asarray(joints, dtype=np.float64)
    first = joints[0]
    source_leg = sum(np.linalg.norm(first[j] - first[PARENTS[j]]) for j in (5, 8))
    target_leg = BONE_LENGTHS[5] + BONE_LENGTHS[8]
    rebuilt = np.empty_like(joints)
    rebuilt[:, 0] = joints[:, 0] * (target_leg / source_leg)
    for chain in HML3D_CHAINS:
        for parent, child in zip(chain[:-1], chain[1:]):
            direction = joints[:, child] - joints[:, parent]
            norm = np.linalg.norm(direction, axis=-1, keepdims=True)
            # A zero-length bone has no direction: fall back to the raw rest direction.
            direction = np.where(norm > 1e-12, direction / np.maximum(norm, 1e-12), HML3D_RAW_DIRECTIONS[child])
            rebuilt[:, child] = rebuilt[:, parent] + direction * BONE_LENGTHS[child]
    return rebuilt


def _validate_joints(joints) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (JOINT_COUNT, 3):
        raise ValueError(f"joint positions must have shape (frames, 22, 3), got {joints.shape}")
    if len(joints) < 2:
        raise ValueError(f"HumanML3D features need at least 2 frames of joints (velocities), got {len(joints)}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joint positions contain NaN or infinite values")
    return joints


def canonical_transform(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's placement of a clip: canonical = rotate(facing, joints - offset)
    puts the lowest joint on the floor and the first frame's root over the origin,
    facing +Z."""
    offset = np.array([joints[0, 0, 0], joints[..., 1].min(), joints[0, 0, 2]])
    facing = _facing_rotation(joints[:1], smooth=False)[0]
    return offset, facing


def canonical_joints(joints, uniform_skeleton: bool = True) -> np.ndarray:
    """The dataset's normalisation of a clip: reference skeleton (optional), then the
    placement of canonical_transform."""
    joints = _validate_joints(joints)
    if uniform_skeleton:
        joints = to_reference_skeleton(joints)
    offset, facing = canonical_transform(joints)
    return quat_rotate(facing, joints - offset)


def features_from_joints(joints, uniform_skeleton: bool = True,
                         foot_threshold: float = FOOT_CONTACT_THRESHOLD) -> np.ndarray:
    """HumanML3D features (T-1, 263) float32 from joint positions (T, 22, 3), metres, Y up.

    With `uniform_skeleton` (as the dataset does) the motion is first rebuilt on the
    reference skeleton; turn it off only for joints already on it.
    """
    positions = canonical_joints(joints, uniform_skeleton)
    frames = len(positions)

    # Foot contacts: a foot joint is planted when it moved less than the threshold.
    foot = np.array(LEFT_FOOT_JOINTS + RIGHT_FOOT_JOINTS)
    speed_sq = np.sum((positions[1:, foot] - positions[:-1, foot]) ** 2, axis=-1)
    contacts = (speed_sq < foot_threshold).astype(np.float64)

    quats = chain_rotations(positions, smooth_forward=True)
    facing = quats[:, 0]
    cont6d = quat_to_cont6d(quats[:, 1:]).reshape(frames, -1)

    root_velocity = quat_rotate(facing[1:], positions[1:, 0] - positions[:-1, 0])
    turn = quat_mul(facing[1:], quat_conj(facing[:-1]))
    # turn is a rotation about Y: (cos a/2, 0, sin a/2, 0), possibly negated.
    half_angle = np.arcsin(np.clip(np.where(turn[:, 0] < 0, -turn[:, 2], turn[:, 2]), -1.0, 1.0))

    local = positions.copy()
    local[..., [0, 2]] -= positions[:, :1, [0, 2]]
    local = quat_rotate(facing[:, None], local)
    velocity = quat_rotate(facing[:-1, None], positions[1:] - positions[:-1])

    features = np.concatenate(
        [
            half_angle[:, None],
            root_velocity[:, [0, 2]],
            local[:-1, 0, 1:2],
            local[:-1, 1:].reshape(frames - 1, -1),
            cont6d[:-1],
            velocity.reshape(frames - 1, -1),
            contacts,
        ],
        axis=-1,
    )
    return features.astype(np.float32)


def validate_features(features) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != FEATURE_SIZE:
        raise ValueError(f"HumanML3D features must have shape (frames, 263), got {features.shape}")
    if len(features) < 1:
        raise ValueError("HumanML3D features are empty (0 frames)")
    if not np.all(np.isfinite(features)):
        raise ValueError("HumanML3D features contain NaN or infinite values")
    return features.astype(np.float64)


def root_from_features(features):
    """Facing rotation (T, 4) and root position (T, 3) integrated from the velocities."""
    features = np.asarray(features, dtype=np.float64)
    half_angle = np.concatenate([np.zeros(features.shape[:-2] + (1,)), np.cumsum(features[..., :-1, 0], axis=-1)], axis=-1)
    facing = np.zeros(features.shape[:-1] + (4,))
    facing[..., 0] = np.cos(half_angle)
    facing[..., 2] = np.sin(half_angle)
    step = np.zeros(features.shape[:-1] + (3,))
    step[..., 1:, 0] = features[..., :-1, 1]
    step[..., 1:, 2] = features[..., :-1, 2]
    root = np.cumsum(quat_rotate(quat_conj(facing), step), axis=-2)
    root[..., 1] = features[..., 3]
    return facing, root


def root_relative_positions(features: np.ndarray) -> np.ndarray:
    """The 21 non-root joints' positions (T, 21, 3) relative to the root, in its facing
    frame: skeleton joint k is column k - 1."""
    return features[..., POSITION_FEATURES].reshape(*features.shape[:-1], JOINT_COUNT - 1, 3)


def joints_from_features(features) -> np.ndarray:
    """Joint positions (T, 22, 3) recovered from features (T, 263), as the dataset
    recovers its published `new_joints` (from the root-relative positions)."""
    features = validate_features(features)
    facing, root = root_from_features(features)
    local = root_relative_positions(features)
    world = quat_rotate(quat_conj(facing)[:, None], local)
    world[..., 0] += root[:, None, 0]
    world[..., 2] += root[:, None, 2]
    return np.concatenate([root[:, None], world], axis=1)
