"""A motion on the SMPL-22 skeleton: positions and rotations that agree with each other.

Every file format reads into a Motion and writes out of one. Whichever of positions or
rotations a format lacks is derived with kinematics, so a Motion always has both.
"""

from dataclasses import dataclass, field

import numpy as np

from .kinematics import forward_kinematics, inverse_kinematics
from .rotation import quat_normalize, quat_slerp
from .skeleton import JOINT_COUNT, JOINT_NAMES, REST_OFFSETS, bone_lengths_of, offsets_from_joints


@dataclass
class Motion:
    """positions (T, 22, 3) metres, Y up, +Z forward; rotations (T, 22, 4) local
    quaternions (w, x, y, z) relative to the rest pose given by `offsets` (22, 3);
    root_translation (T, 3); fps frames per second."""

    positions: np.ndarray
    rotations: np.ndarray
    root_translation: np.ndarray
    fps: float = 20.0
    offsets: np.ndarray = field(default_factory=lambda: REST_OFFSETS.copy())

    @property
    def frames(self) -> int:
        return len(self.positions)

    @classmethod
    def from_positions(cls, positions, fps: float = 20.0, offsets=None) -> "Motion":
        """From joint positions; rotations by inverse kinematics. Without `offsets` the
        rest skeleton takes the motion's own bone lengths, so FK gives the input back."""
        positions = validate_positions(positions)
        lengths = np.median(bone_lengths_of(positions), axis=0)[1:]
        if np.any(lengths < 1e-6):
            names = [JOINT_NAMES[j + 1] for j in np.flatnonzero(lengths < 1e-6)]
            raise ValueError("joint positions collapse: zero-length bones to " + ", ".join(names[:5]))
        offsets = offsets_from_joints(positions) if offsets is None else np.asarray(offsets, dtype=np.float64)
        rotations, root = inverse_kinematics(positions, offsets)
        return cls(positions, rotations, root, float(fps), offsets)

    @classmethod
    def from_rotations(cls, rotations, root_translation, fps: float = 20.0, offsets=None) -> "Motion":
        rotations = np.asarray(rotations, dtype=np.float64)
        root_translation = np.asarray(root_translation, dtype=np.float64)
        if rotations.ndim != 3 or rotations.shape[1:] != (JOINT_COUNT, 4):
            raise ValueError(f"rotations must have shape (frames, 22, 4), got {rotations.shape}")
        if root_translation.shape != (len(rotations), 3):
            raise ValueError(f"root translation must have shape ({len(rotations)}, 3), got {root_translation.shape}")
        if len(rotations) == 0:
            raise ValueError("the motion has no frames")
        if not (np.all(np.isfinite(rotations)) and np.all(np.isfinite(root_translation))):
            raise ValueError("rotations or root translation contain NaN or infinite values")
        norms = np.linalg.norm(rotations, axis=-1)
        if np.any(norms < 1e-6):
            raise ValueError("rotations contain zero quaternions")
        offsets = REST_OFFSETS.copy() if offsets is None else np.asarray(offsets, dtype=np.float64)
        rotations = quat_normalize(rotations)
        positions = forward_kinematics(rotations, root_translation, offsets)
        return cls(positions, rotations, root_translation, float(fps), offsets)

    def resampled(self, fps: float, cover_end: bool = False) -> "Motion":
        """The same motion at another frame rate (positions linear, rotations slerp).

        The new frames fit inside the old duration, so the last one may come before
        the old end; with cover_end one more frame, holding the last pose, reaches it."""
        if abs(fps - self.fps) < 1e-9 or self.frames < 2:
            return Motion(self.positions, self.rotations, self.root_translation, float(fps), self.offsets)
        duration = (self.frames - 1) / self.fps
        steps = duration * fps
        frames = int(np.ceil(steps - 1e-6) if cover_end else np.floor(steps + 1e-6)) + 1
        t = np.minimum(np.arange(frames) * (self.fps / fps), self.frames - 1)
        lo = np.minimum(np.floor(t).astype(int), self.frames - 2)
        w = t - lo
        root = self.root_translation[lo] * (1 - w)[:, None] + self.root_translation[lo + 1] * w[:, None]
        rotations = quat_slerp(self.rotations[lo], self.rotations[lo + 1], np.broadcast_to(w[:, None], (frames, JOINT_COUNT)))
        return Motion.from_rotations(rotations, root, fps, self.offsets)


def validate_positions(positions) -> np.ndarray:
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[1:] != (JOINT_COUNT, 3):
        raise ValueError(f"joint positions must have shape (frames, 22, 3), got {positions.shape}")
    if len(positions) == 0:
        raise ValueError("the motion has no frames")
    if not np.issubdtype(positions.dtype, np.number):
        raise ValueError(f"joint positions must be numbers, got dtype {positions.dtype}")
    positions = positions.astype(np.float64)
    if not np.all(np.isfinite(positions)):
        raise ValueError("joint positions contain NaN or infinite values")
    return positions
