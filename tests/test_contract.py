"""The contract between training and serving (retarget/contract.py): the prompts the
server builds for each task are, word for word, the ones training teaches, and the
limits the API states are the ones the model and the extension use."""

import re

import numpy as np
import pytest

from retarget import contract
from retarget.contract import INSTRUCTIONS, TASKS, motion_string, prompt
from server.train.examples import make_example
from harness.models import small_model
from harness.motions import smooth_random_joints

MOTION = re.compile(r"(<motion_id_\d+>)+")


def shape(text: str) -> str:
    """A prompt with its motion string replaced by a placeholder."""
    return MOTION.sub("<MOTION>", text)


class Recorder:
    """Stands between the model and its decoder and writes down the prompts it is asked."""

    def __init__(self, model):
        self.prompts = []
        self.model = model
        decode, encode = model.motion_tokens, model._encode_prompt

        def motion_tokens(asked, length, *args, **kwargs):
            self.prompts.append(asked)
            return decode(asked, length, *args, **kwargs)

        def encode_prompt(asked):
            if asked.startswith(INSTRUCTIONS["motion_to_text"]):
                self.prompts.append(asked)
            return encode(asked)

        model.motion_tokens, model._encode_prompt = motion_tokens, encode_prompt


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The prompt serving builds for each task, on a small real model."""
    model = small_model(tmp_path_factory.mktemp("contract"))
    recorder = Recorder(model)
    joints = smooth_random_joints(frames=41, seed=3)
    prompts = {}
    model.generate("a person walks forward", frames=16)
    prompts["text_to_motion"] = recorder.prompts[-1]
    model.caption(joints)
    prompts["motion_to_text"] = recorder.prompts[-1]
    model.predict(joints, frames=8, text="then jumps")
    prompts["prediction"] = recorder.prompts[-1]
    model.inbetween(joints, 12, 24, text="then jumps")
    prompts["inbetween"] = recorder.prompts[-1]
    return model, prompts


def taught(task: str, caption: str, codebook_size: int, steer: bool) -> str:
    """The prompt training writes for `task` with the run-time instruction."""
    weights = {t: float(t == task) for t in TASKS}
    for seed in range(200):
        asked, _ = make_example(list(range(12)), caption, codebook_size, np.random.default_rng(seed), weights,
                                paraphrase=0.0, quote=0.0, steer=0.5)
        if (caption in asked) == steer or task in ("text_to_motion", "motion_to_text"):
            return asked
    raise AssertionError(f"no {'steered' if steer else 'plain'} {task} example in 200 draws")


def test_serving_asks_in_the_words_training_teaches(served):
    model, prompts = served
    size = model.codebook_size
    assert shape(prompts["text_to_motion"]) == shape(taught("text_to_motion", "a person walks forward", size, False))
    assert shape(prompts["motion_to_text"]) == shape(taught("motion_to_text", "x", size, False))
    assert shape(prompts["prediction"]) == shape(taught("prediction", "then jumps", size, True))
    assert shape(prompts["inbetween"]) == shape(taught("inbetween", "then jumps", size, True))
    for task, asked in prompts.items():
        assert asked.startswith(INSTRUCTIONS[task] + " ")


def test_motion_strings_are_one_format(served):
    model, prompts = served
    size = model.codebook_size
    # The masked motion the server sends: start, codes or masks, end, all as added tokens.
    masked = MOTION.search(prompts["inbetween"]).group(0)
    tokens = re.findall(r"<motion_id_(\d+)>", masked)
    assert int(tokens[0]) == size and int(tokens[-1]) == size + 1 and str(size + 2) in tokens
    assert motion_string([3, 1], size, masked=[1]) == f"<motion_id_{size}><motion_id_3><motion_id_{size + 2}><motion_id_{size + 1}>"
    assert model.tokenizer.convert_tokens_to_ids(contract.motion_token_strings(size))[0] == model.first_code_id


def test_limits_are_the_ones_the_schema_states():
    from server.api import GenerateRequest, PredictRequest

    schema = GenerateRequest.model_json_schema()["properties"]["frames"]["anyOf"][0]
    assert (schema["minimum"], schema["maximum"]) == (contract.MIN_FRAMES, contract.MAX_FRAMES)
    schema = PredictRequest.model_json_schema()["properties"]["frames"]
    assert (schema["minimum"], schema["maximum"]) == (contract.MIN_FRAMES, contract.MAX_FRAMES)
    assert contract.MAX_FRAMES == contract.MAX_MOTION_TOKENS * contract.FRAMES_PER_TOKEN


def test_model_refuses_lengths_outside_the_contract(served):
    model, _ = served
    with pytest.raises(ValueError, match=str(contract.MAX_FRAMES)):
        model.generate("a person walks", frames=contract.MAX_FRAMES + contract.FRAMES_PER_TOKEN)
    with pytest.raises(ValueError, match=str(contract.MIN_INBETWEEN_FRAMES)):
        model.inbetween(smooth_random_joints(frames=contract.MIN_INBETWEEN_FRAMES - 1), 4, 6)


def test_prompt_refuses_an_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        prompt("dance")
