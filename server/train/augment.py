"""Training variants of a clip: the same motion played faster or slower, or mirrored.

Real motion capture is a few percent of the corpus, and its people move at their own
pace; the language model learns to caption it from more than one speed of each trial.
A clip that names a side is also learned mirrored, left and right swapped in motion and
words alike: pairs that differ only in the side teach the model to read the side word.
Both are done on the clip's joints, then turned back into features, so velocities and
foot contacts match.
"""

import re

import numpy as np

from retarget.humanml3d import features_from_joints, joints_from_features
from retarget.shot import resample_joints
from retarget.skeleton import JOINT_INDEX, JOINT_NAMES

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


# Each joint's mirror image: left_* and right_* swap, the spine maps to itself.
MIRROR_JOINTS = np.array([JOINT_INDEX.get(name.replace("left_", "@").replace("right_", "left_").replace("@", "right_"),
                                          index) for index, name in enumerate(JOINT_NAMES)])
_SIDE_WORDS = {"left": "right", "right": "left", "leftward": "rightward", "rightward": "leftward",
               "leftwards": "rightwards", "rightwards": "leftwards", "clockwise": "counterclockwise",
               "counterclockwise": "clockwise", "counter-clockwise": "clockwise", "anticlockwise": "clockwise",
               "anti-clockwise": "clockwise"}
_SIDE_PATTERN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SIDE_WORDS), key=len, reverse=True)) + r")\b",
                           re.IGNORECASE)


def names_a_side(text: str) -> bool:
    return _SIDE_PATTERN.search(text) is not None


def mirrored_caption(text: str) -> str:
    """The caption with its sides swapped ("turns left" -> "turns right"), case kept."""
    def swap(match):
        word = match.group(0)
        other = _SIDE_WORDS[word.lower()]
        return other.capitalize() if word[0].isupper() else other
    return _SIDE_PATTERN.sub(swap, text)


def mirrored_joints(joints: np.ndarray) -> np.ndarray:
    """Joints (T, 22, 3) reflected across the body's sagittal plane at the start: the
    lateral axis (x; HumanML3D faces +z, up is y) negated, left and right joints swapped."""
    mirrored = joints[:, MIRROR_JOINTS].copy()
    mirrored[..., 0] *= -1
    return mirrored


def mirrored_clip(clip: Clip, mean: np.ndarray, std: np.ndarray) -> Clip:
    """The clip mirrored (features normalized with mean and std, as the clip's), named
    `NAME~mirror`, with its captions' sides swapped."""
    joints = joints_from_features(clip.features * std + mean)
    features = features_from_joints(mirrored_joints(joints))
    return Clip(f"{clip.name}~mirror", ((features - mean) / std).astype(np.float32),
                [mirrored_caption(c) for c in clip.captions])
