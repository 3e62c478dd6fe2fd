"""Prompts read through a pretrained sentence encoder (server/model/text_encoder.py):
how a prompt is split, the model file that records the encoder, and the one-line error
when its package is missing."""

import json

import numpy as np
import pytest
import torch

from retarget.contract import INSTRUCTIONS, motion_string, prompt
from server.model import text_encoder
from server.model.checkpoint import CheckpointError
from server.model.motiongpt import MotionGPT, Sampling
from server.model.store import load_model_dir, save_model_dir
from server.model.text_encoder import SentenceEncoder, split_prompt
from server.model.tokenizer import train_tokenizer
from harness.models import SMALL_T5, SMALL_VAE, caption_corpus


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text-encoder")
    tokenizer = train_tokenizer(caption_corpus(), vocab_size=120, codebook_size=SMALL_VAE.codebook_size,
                                directory=folder / "tokenizer")
    return MotionGPT.untrained(tokenizer, SMALL_VAE, SMALL_T5, name="reads-minilm", text_encoder="all-MiniLM-L6-v2")


def test_a_prompt_is_read_as_instruction_motion_and_text():
    motion = motion_string([1, 2], 24, masked=[1])
    asked = prompt("inbetween", motion=motion, text="then waves")
    assert split_prompt(asked, INSTRUCTIONS.values()) == [
        ("text", INSTRUCTIONS["inbetween"]), ("motion", motion), ("text", "then waves")]
    assert split_prompt(prompt("text_to_motion", text="a man leaps"), INSTRUCTIONS.values()) == [
        ("text", "Generate motion:"), ("text", "a man leaps")]


def test_the_encoder_input_is_projected_words_and_learned_motion_tokens(model):
    motion = motion_string([1, 2, 3], model.codebook_size)
    inputs = model.prompt_inputs([prompt("prediction", motion=motion, text="a person waves"),
                                  prompt("text_to_motion", text="someone jumps")])
    embeds, mask = inputs["inputs_embeds"], inputs["attention_mask"]
    assert embeds.shape[-1] == model.lm.config.d_model and mask.shape == embeds.shape[:2]
    assert mask[0].sum() > mask[1].sum() - 10 and mask[1, -1] == 0  # the shorter prompt is padded
    # The motion tokens sit after the instruction's word pieces, as T5's own embeddings.
    instruction = len(model.prompt_embedder.encoder.tokenizer(INSTRUCTIONS["prediction"]).input_ids)
    start = model.tokenizer.convert_tokens_to_ids(f"<motion_id_{model.codebook_size}>")
    assert torch.equal(embeds[0, instruction], model.lm.shared.weight[start])
    # Different words give different inputs; the encoder's own weights are not trained.
    assert not torch.allclose(model.prompt_inputs(["Generate motion: a man runs"])["inputs_embeds"],
                              model.prompt_inputs(["Generate motion: a man sits"])["inputs_embeds"])
    assert not any(p.requires_grad for p in model.prompt_embedder.encoder.model.parameters())


def test_the_model_file_records_its_text_encoder_and_loads_to_the_same_tokens(model, tmp_path):
    save_model_dir(model, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["text_encoder"]["name"] == "all-MiniLM-L6-v2"
    loaded = load_model_dir(tmp_path / "model")
    for decoding in ("exact", "hf"):
        loaded.decoding = decoding
        tokens = loaded.motion_tokens("Generate motion: a person leaps", 6, Sampling(greedy=True), 0)
        assert tokens == model.motion_tokens("Generate motion: a person leaps", 6, Sampling(greedy=True), 0)
    joints = loaded.generate("a person leaps", frames=16)[0]
    assert joints.shape == (16, 22, 3) and np.all(np.isfinite(joints))


def test_a_missing_text_encoder_package_is_one_line(model, tmp_path, monkeypatch):
    save_model_dir(model, tmp_path / "model")
    config_path = tmp_path / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["text_encoder"]["name"] = "absent-encoder"
    config_path.write_text(json.dumps(config))
    monkeypatch.setitem(text_encoder.TEXT_ENCODERS, "absent-encoder", ("no_such_module_here", "absent-encoder-package"))
    with pytest.raises(CheckpointError) as error:
        load_model_dir(tmp_path / "model")
    message = str(error.value)
    assert "\n" not in message and "pip install absent-encoder-package" in message


def test_an_unknown_text_encoder_is_named():
    with pytest.raises(text_encoder.TextEncoderMissing, match="unknown text encoder 'nope'"):
        SentenceEncoder("nope")


def test_the_sentence_token_is_one_more_input_per_text_span_and_is_saved(model, tmp_path):
    reads = MotionGPT.untrained(model.tokenizer, SMALL_VAE, SMALL_T5, name="sentences", text_encoder="all-MiniLM-L6-v2")
    asked = prompt("text_to_motion", text="a man leaps into the air")
    words = reads.prompt_inputs([asked])["inputs_embeds"]
    reads.prompt_embedder.add_sentence_token()
    both = reads.prompt_inputs([asked])["inputs_embeds"]
    assert both.shape[1] == words.shape[1] + 2  # the instruction's and the caption's
    # Each span opens with its sentence embedding through the new projection, then its words.
    embedder = reads.prompt_embedder
    states = embedder.encoder.token_states(["a man leaps into the air"])[0]
    instruction = len(embedder.encoder.tokenizer(INSTRUCTIONS["text_to_motion"]).input_ids)
    expected = reads.lm.prompt_sentence_projection(embedder.sentence_embedding(states))
    assert torch.allclose(both[0, instruction + 1], expected, atol=1e-5)
    assert torch.allclose(both[0, instruction + 2:], words[0, instruction:], atol=1e-5)
    save_model_dir(reads, tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["text_encoder"]["sentence_token"] is True
    loaded = load_model_dir(tmp_path / "model")
    assert loaded.prompt_embedder.sentence_token
    assert torch.equal(loaded.prompt_inputs([asked])["inputs_embeds"], both)


def test_sentence_only_drops_caption_words_in_training_and_never_in_use(model):
    reads = MotionGPT.untrained(model.tokenizer, SMALL_VAE, SMALL_T5, name="sentences", text_encoder="all-MiniLM-L6-v2")
    reads.prompt_embedder.add_sentence_token()
    reads.prompt_embedder.sentence_only = 0.999
    asked = prompt("text_to_motion", text="a man leaps into the air")
    instruction = len(reads.prompt_embedder.encoder.tokenizer(INSTRUCTIONS["text_to_motion"]).input_ids)
    reads.lm.eval()
    in_use = reads.prompt_inputs([asked])["inputs_embeds"]
    reads.lm.train()
    in_training = reads.prompt_inputs([asked])["inputs_embeds"]
    # Instruction (sentence token + words), the caption's sentence token, the end: its words are gone.
    assert in_training.shape[1] == 1 + instruction + 1 + 1
    assert torch.equal(in_training[0, :instruction + 2], in_use[0, :instruction + 2])
    assert in_use.shape[1] > in_training.shape[1] + 5


def test_paraphrases_have_near_sentence_embeddings():
    """Why the sentence token helps: MiniLM's sentence embedding puts a wording the corpus
    never used beside the corpus's own, and away from another action's."""
    encoder = SentenceEncoder("all-MiniLM-L6-v2")
    texts = ["someone leaps high into the air", "a person jumps up in place", "a person sits down on the floor"]
    embeddings = torch.stack([text_encoder.PromptEmbedder.sentence_embedding(s) for s in encoder.token_states(texts)])
    unit = embeddings / embeddings.norm(dim=1, keepdim=True)
    assert float(unit[0] @ unit[1]) > float(unit[0] @ unit[2]) + 0.1
