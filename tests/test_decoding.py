"""The decoding loop against Hugging Face generate."""

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from server.model.decoding import MotionDecoder
from server.model.motiongpt import Cancelled, MotionGrammar, Sampling, grammar_chooser
from harness.models import small_model

PROMPTS = ["Generate motion: a person walks forward", "Generate motion: a person jumps quickly",
           "Predict motion: a person turns to the left"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"), seed=11)


def tokens(model, mode, prompt, length, sampling=Sampling(greedy=True), seed=0, should_stop=None):
    model.decoding = mode
    try:
        return model.motion_tokens(prompt, length, sampling, seed, should_stop=should_stop)
    finally:
        model.decoding = "exact"


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("length", [None, 12])
def test_exact_mode_matches_generate_greedy(model, prompt, length):
    reference = tokens(model, "hf", prompt, length)
    assert tokens(model, "exact", prompt, length) == reference
    if length:
        assert len(reference) == length


def test_fast_mode_keeps_the_grammar(model):
    for prompt in PROMPTS:
        codes = tokens(model, "fast", prompt, 16)
        assert len(codes) == 16 and all(0 <= c < model.codebook_size for c in codes)


def test_sampling_is_seeded_and_local(model):
    # An untrained model is very sure of itself (logit spread ~6): flatten it to sample.
    sampling = Sampling(top_k=10, temperature=30.0)
    first = tokens(model, "exact", PROMPTS[0], 20, sampling, seed=3)
    torch.manual_seed(999)  # the global generator must not matter
    assert tokens(model, "exact", PROMPTS[0], 20, sampling, seed=3) == first
    others = [tokens(model, "exact", PROMPTS[0], 20, sampling, seed=s) for s in range(4, 8)]
    assert any(o != first for o in others)


def test_cancellation_stops_within_one_token(model):
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 5

    with pytest.raises(Cancelled):
        tokens(model, "exact", PROMPTS[0], 40, should_stop=should_stop)
    assert len(asked) == 6  # asked before every token, stopped at the first "yes"


def test_exact_mode_matches_generate_at_the_official_size():
    """flan-t5-base's shape with random weights and 515 motion tokens: 24 greedy tokens."""
    torch.manual_seed(0)
    config = T5Config(d_model=768, d_ff=2048, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12,
                      feed_forward_proj="gated-gelu", vocab_size=32100 + 515, tie_word_embeddings=False,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0)
    lm = T5ForConditionalGeneration(config).eval()
    grammar = MotionGrammar(32100, 512, length=24, max_codes=24)
    input_ids = torch.randint(3, 32000, (1, 30))
    mask = torch.ones_like(input_ids)
    with torch.inference_mode():
        reference = lm.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=26, do_sample=False,
                                logits_processor=[grammar], eos_token_id=grammar.end, pad_token_id=0)[0, 1:].tolist()

    choose = grammar_chooser(grammar, "exact", Sampling(greedy=True), torch.Generator())
    ours = MotionDecoder(lm, "exact", max_length=32).decode({"input_ids": input_ids, "attention_mask": mask}, choose, 26,
                                                            stop_ids={grammar.end})
    assert ours == reference
