"""The physical checks that judge prompts in people's own words (server/eval/prompts.py)
tell motions apart: each passes the synthesizer's motion of its action, with the side it
names, and fails other actions and the other side."""

import re

import numpy as np
import pytest

from server.data import actions
from server.data.actions import rotations
from server.data.synth import place_on_ground
from server.eval.prompts import DEV_PROMPTS, PROMPTS, SECONDS, Prompt, judge


def performed(name: str, accept=lambda params: True, **wanted):
    """The synthesizer's motion of action `name` whose drawn parameters include `wanted`
    (and pass `accept`), 4 s at 20 fps, starting at the origin facing +Z as generated
    motions do."""
    for seed in range(300):
        segment = actions.ACTIONS[name](np.random.default_rng(seed), SECONDS)
        if all(segment.params.get(k) == v for k, v in wanted.items()) and accept(segment.params):
            _, _, joints = place_on_ground(rotations(segment.angles), segment, 0.0)
            return joints - joints[0, 0] * np.array([1.0, 0.0, 1.0])
    raise AssertionError(f"no {name} with {wanted} in 300 seeds")


def test_the_prompt_set_is_large_and_uses_no_corpus_template():
    from server.data.captions import PHRASES

    assert len(PROMPTS) >= 40 and len({p.text for p in PROMPTS}) == len(PROMPTS)
    # A caption is a subject and one of these phrases with its fields (a few words each)
    # filled in.
    phrases = [phrase for options in PHRASES.values() for group in options for phrase in group]
    field = r"(\S+( \S+){0,2})?"
    patterns = [re.compile(".* " + field.join(re.escape(part) for part in re.split(r"\{[^}]*\}", phrase)) + r"\s*")
                for phrase in phrases]
    written = [p.text for p in PROMPTS + DEV_PROMPTS if any(pattern.fullmatch(p.text) for pattern in patterns)]
    assert not written, f"prompts in the corpus's own phrasing: {written}"


@pytest.mark.parametrize("side", ["left", "right"])
def test_turn_kick_and_wave_checks_follow_the_named_side(side):
    other = "right" if side == "left" else "left"
    turn = performed("turn", lambda params: params["degrees"] >= 90, side=side)
    assert judge(Prompt("", "turn", side), turn) == (True, True)
    assert judge(Prompt("", "turn", other), turn) == (False, False)
    kick = performed("kick", leg=side)
    assert judge(Prompt("", "kick", side), kick) == (True, True)
    assert judge(Prompt("", "kick", other), kick) == (False, False)
    wave = performed("wave", hand=side)
    assert judge(Prompt("", "wave", side), wave) == (True, True)
    assert judge(Prompt("", "wave", other), wave)[0] is False
    step = performed("side_step", side=side)
    assert judge(Prompt("", "sideways", side), step) == (True, True)
    assert judge(Prompt("", "sideways", other), step) == (False, False)


def test_locomotion_jump_and_lowering_checks_tell_actions_apart():
    walk = performed("walk", gait="walk", direction="forward", speed="normally")
    jump = performed("jump", direction="in place")
    squat = performed("squat")
    stand = performed("stand")
    assert judge(Prompt("", "walk_forward"), walk)[0] and not judge(Prompt("", "walk_backward"), walk)[0]
    assert not judge(Prompt("", "jump_up"), walk)[0] and not judge(Prompt("", "run"), walk)[0]
    assert judge(Prompt("", "jump_up"), jump)[0] and not judge(Prompt("", "walk_forward"), jump)[0]
    assert judge(Prompt("", "lower"), squat)[0] and not judge(Prompt("", "lower"), walk)[0]
    assert judge(Prompt("", "stay"), stand)[0] and not judge(Prompt("", "stay"), walk)[0]
    backward = performed("walk", direction="backward")
    assert judge(Prompt("", "walk_backward"), backward)[0] and not judge(Prompt("", "walk_forward"), backward)[0]
    run = performed("walk", gait="run")
    assert judge(Prompt("", "run"), run)[0]


def test_corpus_clips_are_judged_by_what_their_parameters_say():
    """eval's tokenizer checks judge held-out corpus clips of any length: a jump drawn
    forward by the forward-jump check, a run by its speed over its own length."""
    from server.eval.report import clip_check

    forward = performed("jump", direction="forward")
    in_place = performed("jump", direction="in place")
    check, _ = clip_check("jump", {"direction": "forward"})
    assert check == "jump_forward" and judge(Prompt("", check), forward)[0]
    assert not judge(Prompt("", "jump_up"), forward)[0]  # what a jump in place's check said of it
    check, _ = clip_check("jump", {"direction": "in place"})
    assert check == "jump_up" and judge(Prompt("", check), in_place)[0]
    assert clip_check("walk", {"direction": "backward"}) is None
    run = performed("walk", gait="run")
    assert judge(Prompt("", "run"), run)[0]
    half = run[: len(run) // 2]
    assert judge(Prompt("", "run"), half)[0]  # 2 s of the same run is as fast
    assert not judge(Prompt("", "run"), np.repeat(half, 2, axis=0))[0]  # the same ground in twice the time
