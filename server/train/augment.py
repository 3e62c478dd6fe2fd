"""Training variants of a clip: the same motion played faster or slower.

Real motion capture is a few percent of the corpus, and its people move at their own
pace; the language model learns to caption it from more than one speed of each trial.
A clip is retimed on its joints (positions sampled between frames), then turned back into
features, so velocities and foot contacts match the new pace.
"""

import numpy as np

from retarget.humanml3d import features_from_joints, joints_from_features
from retarget.shot import resample_joints

from .corpus import Clip


def retimed_joints(joints: np.ndarray, speed: float) -> np.ndarray:
    """Joints (T, 22, 3) played at `speed` times their pace (2.0: half the frames)."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    # Frame k of the result is source time k x speed, up to the source's last frame.
    frames = int(np.floor((len(joints) - 1) / speed + 1e-9)) + 1
    return resample_joints(joints, from_fps=speed, to_fps=1.0, frames=frames)


def retimed_clip(clip: Clip, speed: float, mean: np.ndarray, std: np.ndarray) -> Clip:
    """The clip played at `speed` (features normalized with mean and std, as the clip's),
    named `NAME@SPEED`, with the clip's captions."""
    joints = joints_from_features(clip.features * std + mean)
    features = features_from_joints(retimed_joints(joints, speed))
    return Clip(f"{clip.name}@{speed:g}", ((features - mean) / std).astype(np.float32), list(clip.captions))
