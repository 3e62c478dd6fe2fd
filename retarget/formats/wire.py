"""The wire format between the server and the extension: a motion as JSON.

    {"format": "motion/1", "fps": 20, "joint_names": [22 names],
     "positions": T x 22 x 3 (metres, Y up, +Z forward),
     "rotations": T x 22 x 4 (local quaternions w, x, y, z, relative to the rest pose),
     "root_translation": T x 3}

Readers refuse other versions with a clear message.
"""

import numpy as np

from ..contract import WIRE_FORMAT
from ..motion import Motion
from ..skeleton import JOINT_NAMES


def motion_to_wire(motion: Motion, decimals: int = 6) -> dict:
    return {
        "format": WIRE_FORMAT,
        "fps": motion.fps,
        "joint_names": list(JOINT_NAMES),
        "positions": np.round(motion.positions, decimals).tolist(),
        "rotations": np.round(motion.rotations, decimals + 2).tolist(),
        "root_translation": np.round(motion.root_translation, decimals).tolist(),
    }


def motion_from_wire(data) -> Motion:
    if not isinstance(data, dict):
        raise ValueError("a motion must be a JSON object")
    version = data.get("format")
    if version != WIRE_FORMAT:
        raise ValueError(f"unknown motion format {version!r}: this version reads {WIRE_FORMAT!r}")
    names = data.get("joint_names", list(JOINT_NAMES))
    if list(names) != list(JOINT_NAMES):
        raise ValueError("joint_names must be the SMPL-22 joints in order")
    fps = data.get("fps", 20)
    if not isinstance(fps, (int, float)) or not 0 < fps <= 1000:
        raise ValueError(f"fps must be a number in (0, 1000], got {fps!r}")
    try:
        positions = np.asarray(data["positions"], dtype=np.float64)
    except KeyError:
        raise ValueError("the motion has no 'positions'") from None
    except (TypeError, ValueError):
        raise ValueError("positions must be a T x 22 x 3 array of numbers") from None
    motion = Motion.from_positions(positions, float(fps))
    if data.get("rotations") is not None and data.get("root_translation") is not None:
        try:
            rotations = np.asarray(data["rotations"], dtype=np.float64)
            root = np.asarray(data["root_translation"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("rotations and root_translation must be arrays of numbers") from None
        # Rotations carry twist the positions cannot show; keep them when they agree.
        given = Motion.from_rotations(rotations, root, float(fps), motion.offsets)
        if given.frames == motion.frames and np.abs(given.positions - motion.positions).max() < 1e-3:
            return Motion(motion.positions, given.rotations, given.root_translation, float(fps), motion.offsets)
    return motion
