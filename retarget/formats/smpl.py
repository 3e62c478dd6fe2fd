"""SMPL parameters as npz: `poses` (T, 66) axis-angle, `trans` (T, 3), `betas`,
`mocap_framerate`, the layout AMASS made common.

`poses` holds the pelvis's global orientation, then the local rotations of joints
1..21, relative to the rest pose of the skeleton (see skeleton.REST_OFFSETS). Files
written here are Y up, facing +Z (SMPL's own frame) and say so in `up_axis`; files
without `up_axis` are taken to be AMASS's Z up and turned to Y up on reading. Files
with more joints (SMPL-H, SMPL-X: 156 or 165 values per frame) keep their first 22.
"""

import numpy as np

from ..motion import Motion
from ..rotation import axis_angle_to_quat, quat_mul, quat_rotate, quat_to_axis_angle
from ..skeleton import JOINT_COUNT, REST_OFFSETS

# AMASS (Z up) to Y up as HumanML3D turns it: (x, y, z) -> (-x, z, y), a half turn
# about the axis (0, 1, 1)/sqrt(2).
_Z_UP_TO_Y_UP = np.array([0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)])


def write_smpl(motion: Motion, stream) -> None:
    poses = quat_to_axis_angle(motion.rotations).reshape(motion.frames, JOINT_COUNT * 3)
    np.savez(
        stream,
        poses=poses.astype(np.float64),
        trans=motion.root_translation.astype(np.float64),
        betas=np.zeros(10),
        mocap_framerate=np.float64(motion.fps),
        gender=np.array("neutral"),
        up_axis=np.array("Y"),
        # Not SMPL's: the rest skeleton the rotations were solved on, so reading the
        # file back gives the same joint positions.
        rest_offsets=motion.offsets,
    )


def read_smpl(stream) -> Motion:
    try:
        data = np.load(stream, allow_pickle=False)
    except Exception as error:  # numpy raises several types for non-npz input
        raise ValueError(f"not an npz file ({error})") from None
    for key in ("poses", "trans"):
        if key not in data:
            raise ValueError(f"SMPL npz has no '{key}' array (found: {', '.join(sorted(data.files))})")
    poses = np.asarray(data["poses"], dtype=np.float64)
    trans = np.asarray(data["trans"], dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] < JOINT_COUNT * 3 or poses.shape[1] % 3:
        raise ValueError(f"SMPL poses must have shape (frames, 66 or more), got {poses.shape}")
    if trans.shape != (len(poses), 3):
        raise ValueError(f"SMPL trans must have shape ({len(poses)}, 3), got {trans.shape}")
    if len(poses) == 0:
        raise ValueError("SMPL npz has no frames")
    fps = 20.0
    for key in ("mocap_framerate", "mocap_frame_rate"):
        if key in data:
            fps = float(data[key])
    if not fps > 0:
        raise ValueError(f"SMPL npz frame rate must be positive, got {fps}")
    rotations = axis_angle_to_quat(poses[:, : JOINT_COUNT * 3].reshape(-1, JOINT_COUNT, 3))
    up = str(data["up_axis"]) if "up_axis" in data else "Z"
    if up.upper() == "Z":
        rotations[:, 0] = quat_mul(_Z_UP_TO_Y_UP, rotations[:, 0])
        trans = quat_rotate(_Z_UP_TO_Y_UP, trans)
    offsets = REST_OFFSETS
    if "rest_offsets" in data and data["rest_offsets"].shape == (JOINT_COUNT, 3):
        offsets = np.asarray(data["rest_offsets"], dtype=np.float64)
    return Motion.from_rotations(rotations, trans, fps, offsets)
