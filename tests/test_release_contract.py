"""The release is asked exactly as the official code asks it (issue 15, "The release's
contract, exactly"), on a tiny model with random weights in the release's layout.

The official side is the official code's own arithmetic, transcribed below from
OpenMotionLab/MotionGPT (mGPT/archs/mgpt_lm.py at 001aaca: generate_direct,
generate_conditional, placeholder_fulfill); motiongpt-compat.md records what it does.
"""

import json

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList, T5Config, T5ForConditionalGeneration

from retarget import contract
from retarget.contract import (MODEL_CONTRACTS, OFFICIAL_CONTRACT, PROJECT_CONTRACT, RELEASE_MAX_TOKENS, RELEASE_MIN_TOKENS,
                               motion_string, official_inbetween_span, official_prediction_prefix)
from server.model.checkpoint import CheckpointError
from server.model.motiongpt import MotionGrammar, Sampling, TextOnly
from server.model.store import load_model_dir, load_official, save_model_dir
from server.model.tokenizer import train_tokenizer
from server.model.vqvae import VQVAE
from harness.models import SMALL_T5, caption_corpus
from harness.motions import smooth_random_joints

CODES = 512  # the release's codebook: <motion_id_512> starts a motion, 513 ends it, 514 masks a code
GREEDY = Sampling(greedy=True)


# --- the official code's arithmetic, as written there ------------------------------------

def official_motion_string(codes) -> str:
    """motion_token_to_string."""
    return f"<motion_id_{CODES}>" + "".join(f"<motion_id_{int(c)}>" for c in codes) + f"<motion_id_{CODES + 1}>"


def official_placeholder(template: str, length: int, motion: str) -> str:
    """placeholder_fulfill for the prediction and in-between placeholders (`length` in
    frames; down_t 4, predict_ratio 0.2, inbetween_ratio 0.25)."""
    motion_splited = motion.split(">")
    token_length = length / 4
    predict_head = int(token_length * 0.2 + 1)
    masked_head = int(token_length * 0.25 + 1)
    masked_tail = int(token_length * (1 - 0.25) + 1)
    motion_predict_head = ">".join(motion_splited[:predict_head]) + f"><motion_id_{CODES + 1}>"
    motion_masked = ">".join(motion_splited[:masked_head]) + ">" + f"<motion_id_{CODES + 2}>" * (
        masked_tail - masked_head) + ">".join(motion_splited[masked_tail:])
    return template.replace("<Motion_Placeholder_s1>", motion_predict_head).replace("<Motion_Placeholder_Masked>", motion_masked)


def official_tokens(tokenizer, texts):
    """generate_direct's tokenizer call: padded to max_length 256, truncated there."""
    return tokenizer(texts, padding="max_length", max_length=256, truncation=True, return_attention_mask=True,
                     add_special_tokens=True, return_tensors="pt")


def official_generate(model, text: str, max_length: int, processors, **options):
    """generate_direct: the padded ids alone (generate infers the mask from the pads)."""
    ids = official_tokens(model.tokenizer, [text]).input_ids
    with torch.inference_mode():
        return model.lm.generate(ids, max_length=max_length, num_beams=1, do_sample=False,
                                 logits_processor=LogitsProcessorList(processors), **options)


def official_motion(model, text: str, max_length: int = 128) -> list[int]:
    """generate_conditional's motion call (max_length 128), with the motion grammar on both
    sides (motiongpt-compat.md: it changes only what would be malformed)."""
    grammar = MotionGrammar(model.first_code_id, CODES, None, max_codes=max_length - 2)
    out = official_generate(model, text, max_length, [grammar], eos_token_id=grammar.end)[0].tolist()
    return [t - model.first_code_id for t in out if model.first_code_id <= t < model.first_code_id + CODES]


def masked_codes(text: str) -> list[int]:
    """Positions of the mask token among a masked motion's codes."""
    tokens = text.split("<motion_id_")[2:-1]  # after the start token, before the end token
    return [i for i, token in enumerate(tokens) if token.startswith(f"{CODES + 2}>")]


# --- a release built here ------------------------------------------------------------------

@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A checkpoint in the release's container (official-size VQ-VAE, a small T5 standing
    in for flan-t5-base, random weights) and a flan-t5-style directory."""
    folder = tmp_path_factory.mktemp("release")
    t5_dir = folder / "flan-t5"
    tokenizer = train_tokenizer(caption_corpus(), vocab_size=120, codebook_size=CODES, directory=t5_dir)
    # flan-t5-base's config.json names its special ids as here.
    (t5_dir / "config.json").write_text(json.dumps({**SMALL_T5, "model_type": "t5", "vocab_size": 32128, "decoder_start_token_id": 0,
                                                    "pad_token_id": 0, "eos_token_id": 1}))
    torch.manual_seed(15)
    config = T5Config(**{**SMALL_T5, "vocab_size": len(tokenizer), "tie_word_embeddings": False})
    state = {f"vae.{k}": torch.randn_like(v) * 0.02 for k, v in VQVAE().state_dict().items()}
    state.update({f"lm.language_model.{k}": v for k, v in T5ForConditionalGeneration(config).state_dict().items()})
    path = folder / "motiongpt_s3_h3d.tar"
    torch.save({"epoch": 1, "state_dict": state}, path)
    return path, t5_dir


@pytest.fixture(scope="module")
def model(release):
    return load_official(*release)


class Asked:
    """Writes down what the model's motion decoding is asked, then decodes as asked."""

    def __init__(self, model):
        self.calls = []
        decode = model.motion_tokens

        def motion_tokens(asked, length, sampling, seed, max_codes=contract.MAX_MOTION_TOKENS, should_stop=None):
            codes = decode(asked, length, sampling, seed, max_codes=max_codes, should_stop=should_stop)
            self.calls.append({"prompt": asked, "length": length, "max_codes": max_codes, "codes": codes})
            return codes

        model.motion_tokens = motion_tokens
        self.restore = lambda: vars(model).pop("motion_tokens")


@pytest.fixture
def asked(model):
    recorder = Asked(model)
    yield recorder
    recorder.restore()


def joints_for_tokens(tokens: int, seed: int = 0):
    """A motion that the VQ-VAE reads as exactly `tokens` codes (features have one frame
    fewer than the joints)."""
    return smooth_random_joints(frames=4 * tokens + 1, seed=seed, walk_speed=1.0)


# --- the arithmetic ------------------------------------------------------------------------

def test_official_arithmetic_is_the_official_codes_for_every_length():
    for tokens in range(1, 201):
        motion = official_motion_string(range(tokens))
        head = official_placeholder("<Motion_Placeholder_s1>", 4 * tokens, motion)
        assert official_prediction_prefix(tokens) == head.count("<motion_id_") - 2, tokens
        if tokens >= 2:
            masked = masked_codes(official_placeholder("<Motion_Placeholder_Masked>", 4 * tokens, motion))
            first, end = official_inbetween_span(tokens)
            assert masked == list(range(first, end)), tokens
    assert official_prediction_prefix(49) == 9 and official_inbetween_span(49) == (12, 36)


def test_the_project_contract_is_what_the_project_did():
    project = MODEL_CONTRACTS[PROJECT_CONTRACT]
    assert contract.model_contract(None) is project
    assert (project.pad_prompts, project.caption_max_tokens, project.model_decides_prediction_length) == (False, 40, False)
    assert project.prediction_window(30, 5) == 30
    for start in range(1, 40):
        for end in range(start + 1, 41):
            # every code that holds a masked frame (the project's rounding before contracts)
            assert list(project.inbetween_codes(start, end, 10)) == [i for i in range(10) if (i + 1) * 4 > start and i * 4 < end]
    with pytest.raises(ValueError, match="unknown model contract 'mine'"):
        contract.model_contract("mine")


def test_inbetween_mask_span_is_the_official_one_for_every_length():
    official = MODEL_CONTRACTS[OFFICIAL_CONTRACT]
    project_differs = []
    for tokens in range(2, 101):
        frames = 4 * tokens
        # The reference demo's frame range: lengths // 4 to lengths // 4 * 3.
        start, end = frames // 4, frames // 4 * 3
        span = official.inbetween_codes(start, end, tokens)
        assert (span.start, span.stop) == official_inbetween_span(tokens), tokens
        codes = list(range(100, 100 + tokens))
        expected = official_placeholder("Complete the masked motion: <Motion_Placeholder_Masked>", frames,
                                        official_motion_string(codes))
        assert contract.prompt("inbetween", motion=motion_string(codes, CODES, span)) == expected, tokens
        if MODEL_CONTRACTS[PROJECT_CONTRACT].inbetween_codes(start, end, tokens) != span:
            project_differs.append(tokens)
    # The project's rounding masks one code more whenever 3T is not a multiple of 4.
    assert project_differs == [t for t in range(2, 101) if (3 * t) % 4]
    assert list(official.inbetween_codes(5, 7, 10)) == [1]  # a gap inside one code masks that code


def test_prediction_window_is_one_the_release_was_trained_on():
    official = MODEL_CONTRACTS[OFFICIAL_CONTRACT]
    trained = {}
    for tokens in range(RELEASE_MIN_TOKENS, RELEASE_MAX_TOKENS + 1):
        trained.setdefault(official_prediction_prefix(tokens), []).append(tokens)
    assert sorted(trained) == list(range(2, 10))
    for wanted in range(1, 101):
        window = official.prediction_window(100, wanted)
        assert window in trained
        # Every motion the release saw with this window went on for at least `wanted`
        # codes, and no smaller window has that (or it is the largest window).
        assert all(t - window >= wanted for t in trained[window]) or window == max(trained), wanted
        assert not any(all(t - k >= wanted for t in trained[k]) for k in trained if k < window), wanted
        codes = list(range(200, 200 + window))
        tokens = min(trained[window])
        expected = official_placeholder("Predict motion: <Motion_Placeholder_s1>", 4 * tokens,
                                        official_motion_string(codes + [0] * (tokens - window)))
        assert contract.prompt("prediction", motion=motion_string(codes, CODES)) == expected
    assert official.prediction_window(3, 40) == 3  # never more codes than were given


# --- the release model -------------------------------------------------------------------

def test_prompts_are_padded_to_256_as_the_official_call(model):
    text = "Generate motion: a person walks forward"
    ours = model.prompt_inputs([text])
    official = official_tokens(model.tokenizer, [text])
    assert ours["input_ids"].shape == (1, 256)
    assert torch.equal(ours["input_ids"], official.input_ids)
    assert torch.equal(ours["attention_mask"], (official.input_ids != model.tokenizer.pad_token_id).long())
    long_text = "Generate motion: " + " ".join(["a person walks forward"] * 80)
    assert torch.equal(model.prompt_inputs([long_text])["input_ids"], official_tokens(model.tokenizer, [long_text]).input_ids)

    # The same logits as the official call, step for step; and the same greedy codes
    # from every decoding mode that claims them (the loop gets the pads' mask).
    grammar = MotionGrammar(model.first_code_id, CODES, 12, max_codes=12)
    reference = official_generate(model, text, 16, [grammar], eos_token_id=grammar.end, output_logits=True,
                                  return_dict_in_generate=True)
    with torch.inference_mode():
        mine = model.lm.generate(**ours, max_new_tokens=15, do_sample=False, num_beams=1, output_logits=True,
                                 return_dict_in_generate=True, logits_processor=LogitsProcessorList([grammar]),
                                 eos_token_id=grammar.end)
        unpadded = model.lm.generate(**model.tokenizer([text], return_tensors="pt"), max_new_tokens=15, do_sample=False,
                                     num_beams=1, output_logits=True, return_dict_in_generate=True,
                                     logits_processor=LogitsProcessorList([grammar]), eos_token_id=grammar.end)
    assert all(torch.equal(a, b) for a, b in zip(mine.logits, reference.logits))
    # Without the pads the logits are not the official ones (the reason for padding).
    assert not all(torch.equal(a, b) for a, b in zip(unpadded.logits, reference.logits))
    official_codes = [t - model.first_code_id for t in reference.sequences[0].tolist()[2:-1]]
    for mode in ("hf", "exact", "fast"):
        model.decoding = mode
        try:
            codes = model.motion_tokens(text, 12, GREEDY, 0)
        finally:
            model.decoding = "exact"
        if mode == "fast":  # lower precision: the grammar holds, the tokens may differ
            assert len(codes) == 12 and all(0 <= c < CODES for c in codes)
        else:
            assert codes == official_codes, mode


def test_captions_stop_at_39_new_tokens(release):
    model = load_official(*release)
    # A caption that never ends by itself: the end of text scores 0 and the winning text
    # token more, so only the length limit stops it.
    with torch.no_grad():
        model.lm.lm_head.weight[model.tokenizer.eos_token_id] = 0.0
    joints = joints_for_tokens(12)
    steps = []
    caption = model.caption(joints, should_stop=lambda: steps.append(1) and False)
    assert len(steps) == 39
    codes = model.codes_from_features(model._features_of(joints)[0][:48])
    asked = contract.prompt("motion_to_text", motion=official_motion_string(codes))
    reference = official_generate(model, asked, 40, [TextOnly(model.first_code_id, CODES + 3)])[0]
    assert len(reference) == 40  # the decoder start token and 39 new ones
    assert caption == model.tokenizer.decode(reference, skip_special_tokens=True).strip()
    model.contract = MODEL_CONTRACTS[PROJECT_CONTRACT]  # the project's captions take one more
    steps.clear()
    model.caption(joints, should_stop=lambda: steps.append(1) and False)
    assert len(steps) == 40


def test_prediction_continues_from_the_official_window(model, asked):
    joints = joints_for_tokens(30, seed=2)
    frames = 40  # 10 codes: the smallest window whose motions all went on that long is 3 codes
    result = model.predict(joints, frames=frames, sampling=GREEDY)
    given = model.codes_from_features(model._features_of(joints)[0][-120:])
    first = asked.calls[0]
    window = given[-3:]
    # Exactly the official prompt for a motion whose first 20% is the window (15 codes, 3 kept).
    assert first["prompt"] == official_placeholder("Predict motion: <Motion_Placeholder_s1>", 60,
                                                   official_motion_string(window + given[:12]))
    # The model decides the length, up to the frames asked for.
    assert first["length"] is None and first["max_codes"] == 10
    official = official_motion(model, first["prompt"])
    assert first["codes"] == official[:len(first["codes"])]
    assert len(first["codes"]) == min(10, len(official))
    written = [c for call in asked.calls for c in call["codes"]]
    assert len(written) == 10 and len(result) == len(joints) + frames
    np.testing.assert_array_equal(result[:len(joints)], joints)


def test_prediction_asks_again_when_the_model_ends_early(release):
    """A model that often ends a motion after few codes: the continuation is asked for
    again from the window over the newest codes, until the frames asked for are there."""
    model = load_official(*release)
    recorder = Asked(model)
    lm = model.lm
    with torch.no_grad():
        # Logits: 0 for every code, and the sign of one hidden unit for the end token.
        lm.decoder.final_layer_norm.weight.zero_()
        lm.decoder.final_layer_norm.weight[0] = 1.0
        lm.lm_head.weight.zero_()
        lm.lm_head.weight[model.first_code_id + CODES + 1, 0] = 10.0
    joints = joints_for_tokens(20, seed=4)
    model.predict(joints, frames=64, sampling=GREEDY)
    given = model.codes_from_features(model._features_of(joints)[0][-80:])
    calls = recorder.calls
    assert len(calls) > 1
    written = []
    for call in calls:
        known = given + written
        window = known[len(known) - model.contract.prediction_window(len(known), 16 - len(written)):]
        assert call["prompt"] == contract.prompt("prediction", motion=motion_string(window, CODES))
        assert call["length"] is None and call["max_codes"] == 16 - len(written)
        written += call["codes"]
    assert len(written) == 16


def test_inbetween_asks_the_official_masked_motion(model, asked):
    for tokens in (13, 49):
        joints = joints_for_tokens(tokens, seed=tokens)
        start, end = tokens, 3 * tokens  # the reference demo's frames: lengths // 4 to lengths // 4 * 3
        result = model.inbetween(joints, start, end, sampling=GREEDY)
        codes = model.codes_from_features(model._features_of(joints)[0])
        expected = official_placeholder("Complete the masked motion: <Motion_Placeholder_Masked>", 4 * tokens,
                                        official_motion_string(codes))
        assert asked.calls[-1]["prompt"] == expected
        np.testing.assert_array_equal(result[:start], joints[:start])
        np.testing.assert_array_equal(result[end:], joints[end:])


def test_the_contract_survives_conversion_to_a_model_directory(model, tmp_path):
    """What H1's download does (load_official, then save_model_dir), then a later load."""
    assert model.contract.name == OFFICIAL_CONTRACT and model.describe()["contract"] == OFFICIAL_CONTRACT
    directory = save_model_dir(model, tmp_path / "release")
    assert json.loads((directory / "config.json").read_text())["contract"] == OFFICIAL_CONTRACT
    converted = load_model_dir(directory)
    assert converted.contract is MODEL_CONTRACTS[OFFICIAL_CONTRACT]
    text = "Generate motion: a person jumps quickly"
    assert converted.prompt_inputs([text])["input_ids"].shape == (1, 256)
    assert converted.motion_tokens(text, None, GREEDY, 0, max_codes=20) == model.motion_tokens(text, None, GREEDY, 0, max_codes=20)

    # A directory saved before contracts were recorded is the project's.
    config = json.loads((directory / "config.json").read_text())
    del config["contract"]
    (directory / "config.json").write_text(json.dumps(config))
    assert load_model_dir(directory).contract.name == PROJECT_CONTRACT
    config["contract"] = "someone-elses"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unknown model contract 'someone-elses'") as error:
        load_model_dir(directory)
    assert "\n" not in str(error.value)
