"""The embedded default model does what its prompts say, by physical checks on the
motion it generates. The prompts use the corpus's held-out phrasings (server/data/
captions.py), so the model never read them verbatim in training.

Motions are joint positions (T, 22, 3) at 20 fps, metres, Y up, starting near the
origin and facing +Z (HumanML3D's convention)."""

import numpy as np
import pytest

from retarget.skeleton import JOINT_NAMES
from server.model.store import DEFAULT_MODEL, load_any

J = {name: k for k, name in enumerate(JOINT_NAMES)}
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def model():
    return load_any()


def generated(model, text, seconds=4.0):
    """One motion per seed: the checks must hold for each of them."""
    return [model.generate(text, frames=int(seconds * 20), seed=seed)[0] for seed in SEEDS]


def height(motion, joint):
    return motion[:, J[joint], 1]


def test_the_default_model_is_the_embedded_one(model):
    assert model.name == "motiongpt-default"
    size = sum(f.stat().st_size for f in DEFAULT_MODEL.iterdir())
    assert size <= 60e6


def test_a_leap_leaves_the_floor(model):
    for motion in generated(model, "a human leaps in place two times"):
        pelvis = height(motion, "pelvis")
        standing = np.median(pelvis[:10])
        assert pelvis.max() - standing > 0.12
        # Both feet off the floor at once for a moment.
        feet = np.minimum(height(motion, "left_foot"), height(motion, "right_foot"))
        floor = np.percentile(feet, 10)
        assert feet.max() - floor > 0.08


def test_a_stroll_travels_forward(model):
    for motion in generated(model, "this person strolls forward"):
        travel = motion[-1, J["pelvis"]] - motion[0, J["pelvis"]]
        assert travel[2] > 1.0  # forward is +Z
        assert abs(travel[0]) < 0.6 * travel[2]


def test_knee_bends_lower_the_pelvis(model):
    for motion in generated(model, "an individual does knee bends 3 times"):
        pelvis = height(motion, "pelvis")
        assert np.median(pelvis[:10]) - pelvis.min() > 0.2
        # It stays where it is.
        assert np.linalg.norm(motion[-1, J["pelvis"], [0, 2]] - motion[0, J["pelvis"], [0, 2]]) < 0.5


@pytest.mark.parametrize("hand, other", [("left", "right"), ("right", "left")])
def test_the_named_hand_waves(model, hand, other):
    for motion in generated(model, f"the man greets by waving the {hand} hand"):
        head = height(motion, "head")
        raised = height(motion, f"{hand}_wrist") > head - 0.1
        assert raised.mean() > 0.25
        assert (height(motion, f"{other}_wrist") > head - 0.1).mean() < 0.05
        # A wave moves the raised wrist from side to side.
        sideways = motion[raised, J[f"{hand}_wrist"], 0] - motion[raised, J["head"], 0]
        assert sideways.max() - sideways.min() > 0.08
