"""The SMPL-22 skeleton that HumanML3D and MotionGPT use.

HumanML3D keeps the first 22 of SMPL's 24 joints and scales every motion to one
reference skeleton. Its rest pose is an idealised T-pose: each bone points along a
coordinate axis (Y up, the body faces +Z, +X is the body's left). The bone lengths
below are that reference skeleton's, measured from the dataset's own published joints
(every HumanML3D clip has exactly these lengths, to float32 precision).
"""

import numpy as np

JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
JOINT_COUNT = len(JOINT_NAMES)
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
# The feet and wrists: the joints whose swing shows a kick, a punch or a wave.
LIMB_ENDS = tuple(JOINT_INDEX[name] for name in ("left_foot", "right_foot", "left_wrist", "right_wrist"))

PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

# Unit direction of each bone (joint minus parent) that HumanML3D's rotation features
# are measured against (its "t2m_raw_offsets"; the arms hang down).
HML3D_RAW_DIRECTIONS = np.array(
    [
        [0, 0, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 0, 1],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
    ],
    dtype=np.float64,
)

# Bone lengths in metres of HumanML3D's reference skeleton (joint 0 has none).
BONE_LENGTHS = np.array(
    [
        0.0,
        0.103074, 0.109883, 0.131568, 0.393623, 0.390188, 0.143190, 0.432433,
        0.425643, 0.057365, 0.143382, 0.149419, 0.219360, 0.137487, 0.143383,
        0.103039, 0.131614, 0.122984, 0.256840, 0.263092, 0.266012, 0.269876,
    ]
)

# The rest pose of the skeleton we animate (rotations, BVH, SMPL parameters,
# retargeting) is a T-pose: limbs along the axes, arms out along +-X.
TPOSE_DIRECTIONS = HML3D_RAW_DIRECTIONS.copy()
TPOSE_DIRECTIONS[[16, 18, 20]] = [1, 0, 0]
TPOSE_DIRECTIONS[[17, 19, 21]] = [-1, 0, 0]

# Two groups of joints move rigidly in SMPL, so in HumanML3D too: the pelvis with both
# hips and spine1, and spine3 with the neck and both collars. Their rest offsets are
# not along axes; these are the reference skeleton's, measured in the frame where the
# hip (collar) line is +X and spine1 (the neck) lies in the XY plane.
PELVIS_GROUP_OFFSETS = {
    1: (0.054267, -0.083989, -0.025005),
    2: (-0.066295, -0.083989, -0.025005),
    3: (0.003281, 0.131527, 0.0),
}
SPINE3_GROUP_OFFSETS = {
    12: (-0.006664, 0.219259, 0.0),
    13: (0.066138, 0.119580, -0.015134),
    14: (-0.077655, 0.119580, -0.015134),
}

# Offset of each joint from its parent in the rest pose, metres.
REST_OFFSETS = TPOSE_DIRECTIONS * BONE_LENGTHS[:, None]
for _joint, _offset in {**PELVIS_GROUP_OFFSETS, **SPINE3_GROUP_OFFSETS}.items():
    REST_OFFSETS[_joint] = _offset

# HumanML3D's kinematic chains; its rotation features are defined per chain.
HML3D_CHAINS = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

# Joints that define which way the body faces: right hip, left hip, right and left shoulder.
FACE_JOINTS = (2, 1, 17, 16)
LEFT_FOOT_JOINTS = (7, 10)
RIGHT_FOOT_JOINTS = (8, 11)


def children_of(joint: int) -> tuple[int, ...]:
    return tuple(j for j, p in enumerate(PARENTS) if p == joint)


def rest_positions(offsets: np.ndarray = REST_OFFSETS) -> np.ndarray:
    """World positions (22, 3) of the rest pose with the pelvis at the origin."""
    positions = np.zeros((JOINT_COUNT, 3))
    for joint in range(1, JOINT_COUNT):
        positions[joint] = positions[PARENTS[joint]] + offsets[joint]
    return positions


def bone_lengths_of(joints: np.ndarray) -> np.ndarray:
    """Per-frame bone lengths (..., 22) of joint positions (..., 22, 3); joint 0 is 0."""
    parents = np.array(PARENTS)
    parents[0] = 0
    return np.linalg.norm(joints - joints[..., parents, :], axis=-1)


def _group_offsets(joints, origin, left, right, up, members):
    """Median offsets of a rigid group, in the frame: left-right line +X, `up` in XY."""
    x = joints[:, left] - joints[:, right]
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    s = joints[:, up] - joints[:, origin]
    y = s - np.sum(s * x, axis=-1, keepdims=True) * x
    y /= np.linalg.norm(y, axis=-1, keepdims=True)
    frame = np.stack([x, y, np.cross(x, y)], axis=-1)
    return {m: np.median(np.einsum("tji,tj->ti", frame, joints[:, m] - joints[:, origin]), axis=0)
            for m in members}


def offsets_from_joints(joints: np.ndarray) -> np.ndarray:
    """Rest offsets (22, 3) that fit a motion's own proportions.

    Bone lengths are the median over frames; the pelvis and spine3 groups keep the
    motion's own (rigid) geometry; every other bone gets the T-pose direction.
    """
    joints = np.asarray(joints, dtype=np.float64).reshape(-1, JOINT_COUNT, 3)
    offsets = TPOSE_DIRECTIONS * np.median(bone_lengths_of(joints), axis=0)[:, None]
    offsets[[1, 2, 3]] = list(_group_offsets(joints, 0, 1, 2, 3, (1, 2, 3)).values())
    offsets[[12, 13, 14]] = list(_group_offsets(joints, 9, 13, 14, 12, (12, 13, 14)).values())
    return offsets
