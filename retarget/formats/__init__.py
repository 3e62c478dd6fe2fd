"""Motion files: read any supported format into a Motion, write a Motion out.

    hml3d   (T, 263) npy of unnormalized HumanML3D features, 20 fps
    joints  (T, 22, 3) npy of joint positions in metres, Y up, 20 fps
    smpl    npz of SMPL parameters (poses, trans, betas, mocap_framerate)
    bvh     BVH on the SMPL-22 skeleton
    wire    JSON in the server's wire format ("motion/1")

Writes are atomic: the file appears complete or not at all.
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..humanml3d import FPS as HML3D_FPS
from ..humanml3d import features_from_joints, joints_from_features, validate_features
from ..motion import Motion
from ..skeleton import REST_OFFSETS
from .bvh import read_bvh, write_bvh
from .smpl import read_smpl, write_smpl
from .wire import motion_from_wire, motion_to_wire

FORMATS = ("hml3d", "joints", "smpl", "bvh", "wire")
SUFFIXES = {".bvh": "bvh", ".npz": "smpl", ".json": "wire"}


def format_from_suffix(path) -> str | None:
    """The format a file name implies; .npy is ambiguous (hml3d or joints) -> None."""
    return SUFFIXES.get(Path(path).suffix.lower())


def _load_npy(stream) -> np.ndarray:
    try:
        return np.load(stream, allow_pickle=False)
    except Exception as error:
        raise ValueError(f"not a readable .npy array ({error})") from None


def read_motion(path, fmt: str) -> Motion:
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    if fmt == "bvh":
        with open(path, encoding="utf-8", errors="replace") as stream:
            return read_bvh(stream)
    if fmt == "wire":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        return motion_from_wire(data)
    with open(path, "rb") as stream:
        if fmt == "smpl":
            return read_smpl(stream)
        array = _load_npy(stream)
    if fmt == "hml3d":
        joints = joints_from_features(validate_features(array))
        return Motion.from_positions(joints, HML3D_FPS, REST_OFFSETS)
    return Motion.from_positions(array, HML3D_FPS)


def write_atomically(path, write, text: bool = False) -> None:
    """Call `write(stream)` on a temporary file beside `path`, then move it into place:
    the file appears complete or not at all, and a failed write leaves nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "w" if text else "wb") as stream:
            write(stream)
        # mkstemp makes the file private; give it the permissions a normal file gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_motion(motion: Motion, path, fmt: str) -> None:
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    # Compute everything before touching the file system.
    if fmt in ("hml3d", "joints"):
        motion = motion.resampled(HML3D_FPS)
    payload = features_from_joints(motion.positions) if fmt == "hml3d" else None

    def write(stream):
        if fmt == "bvh":
            write_bvh(motion, stream)
        elif fmt == "wire":
            json.dump(motion_to_wire(motion), stream)
        elif fmt == "smpl":
            write_smpl(motion, stream)
        elif fmt == "hml3d":
            np.save(stream, payload)
        else:
            np.save(stream, motion.positions.astype(np.float32))

    write_atomically(path, write, text=fmt in ("bvh", "wire"))
