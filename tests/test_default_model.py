"""The embedded default model does what its prompts say, by physical checks on the
motion it generates. The prompts use the corpus's held-out phrasings (server/data/
captions.py), so the model never read them verbatim in training.

Motions are joint positions (T, 22, 3) at 20 fps, metres, Y up, starting near the
origin and facing +Z (HumanML3D's convention)."""

from pathlib import Path

import numpy as np
import pytest

from retarget.humanml3d import joints_from_features
from retarget.skeleton import JOINT_NAMES
from server.eval.prompts import evaluate_prompts
from server.model.store import DEFAULT_MODEL, load_any

J = {name: k for k, name in enumerate(JOINT_NAMES)}
SEEDS = (0, 1, 2)
# Stage 2.7 at its recorded temperature 0.7, seed 0: 0.907 (39 of 43) and 0.952 (20 of 21);
# seeds 0-9 range 0.837-0.930 and 0.952-1.0 (see the README's model card).
PROMPT_PASS_RATE = 0.82
SIDE_ACCURACY = 0.9
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def model():
    return load_any()


def assert_most_samples(model, text, check, seconds=4.0):
    """A sampled model may miss now and then, as a user sees: the check must hold for at
    least two of three seeds. Failures name the seeds and the model's own caption."""
    failed = []
    for seed in SEEDS:
        motion = model.generate(text, frames=int(seconds * 20), seed=seed)[0]
        if not check(motion):
            failed.append(f"seed {seed} ({model.caption(motion)!r})")
    assert len(failed) <= 1, f"{text!r} failed for " + ", ".join(failed)


def height(motion, joint):
    return motion[:, J[joint], 1]


def test_the_default_model_is_the_embedded_one(model):
    assert model.name == "motiongpt-default"
    size = sum(f.stat().st_size for f in DEFAULT_MODEL.iterdir())
    assert size <= 60e6
    # Its prompts are read by a pretrained sentence encoder from its package.
    assert model.describe()["text_encoder"] == "all-MiniLM-L6-v2"
    # It samples at the temperature it records (config.json), and says so.
    assert model.describe()["sampling"] == {"top_k": 50, "temperature": 0.7}


def test_prompts_in_peoples_own_words_mostly_do_what_they_say(model):
    """The held-out prompts of server/eval/prompts.py (none in the corpus's phrasing),
    one seed each: the share that passes its physical check, and the share that moves
    the named side or turns the named way. The bounds sit a little under what the
    model measured (see the README's model card); the first-generation model, which
    read text through its own 198-piece vocabulary, scored 0.47 and 0.79 with 3 seeds."""
    results = evaluate_prompts(model, seeds=(0,))
    assert results["pass_rate"] >= PROMPT_PASS_RATE, results["per_check"]
    assert results["side_accuracy"] >= SIDE_ACCURACY, results["per_check"]


def leaves_the_floor(motion):
    pelvis = height(motion, "pelvis")
    rise = pelvis.max() - np.median(pelvis[:10])
    # Both feet off the floor at once for a moment.
    feet = np.minimum(height(motion, "left_foot"), height(motion, "right_foot"))
    return rise > 0.12 and feet.max() - np.percentile(feet, 10) > 0.08


def travels_forward(motion):
    travel = motion[-1, J["pelvis"]] - motion[0, J["pelvis"]]
    return travel[2] > 1.0 and abs(travel[0]) < 0.6 * travel[2]  # forward is +Z


def lowers_the_pelvis(motion):
    pelvis = height(motion, "pelvis")
    return np.median(pelvis[:10]) - pelvis.min() > 0.2


def waves(hand, other):
    def check(motion):
        head = height(motion, "head")
        raised = height(motion, f"{hand}_wrist") > head - 0.1
        if raised.mean() < 0.25 or (height(motion, f"{other}_wrist") > head - 0.1).mean() > 0.05:
            return False
        # A wave moves the raised wrist from side to side.
        sideways = motion[raised, J[f"{hand}_wrist"], 0] - motion[raised, J["head"], 0]
        return sideways.max() - sideways.min() > 0.08
    return check


def test_a_leap_leaves_the_floor(model):
    assert_most_samples(model, "a human leaps in place two times", leaves_the_floor)


def test_a_stroll_travels_forward(model):
    assert_most_samples(model, "this person strolls forward", travels_forward)


def test_knee_bends_lower_the_pelvis(model):
    assert_most_samples(model, "an individual does knee bends 3 times", lowers_the_pelvis)


@pytest.mark.parametrize("hand, other", [("left", "right"), ("right", "left")])
def test_the_named_hand_waves(model, hand, other):
    assert_most_samples(model, f"the man greets by waving the {hand} hand", waves(hand, other))


def test_a_walk_does_not_leave_the_floor_and_a_wave_does_not_travel(model):
    """The checks tell actions apart: they are not passed by any motion at all."""
    assert_most_samples(model, "this person strolls forward", lambda m: not leaves_the_floor(m))
    assert_most_samples(model, "the man greets by waving the left hand", lambda m: not travels_forward(m))


def test_an_inbetween_fill_meets_the_motion_at_both_ends(model):
    """The fill joins the given frames without a jump of the body: at each edge of the gap
    the pelvis moves on the ground no more than the clip's own fastest step."""
    clip = joints_from_features(np.load(DATA / "hml3d_012314_features.npy"))[:121]
    fastest = np.linalg.norm(np.diff(clip[:, 0, [0, 2]], axis=0), axis=-1).max()
    for seed in SEEDS:
        filled = model.inbetween(clip, 40, 80, seed=seed)
        steps = np.linalg.norm(np.diff(filled[:, 0, [0, 2]], axis=0), axis=-1)
        assert steps[39] <= fastest and steps[79] <= fastest, (seed, steps[[39, 79]], fastest)
