"""Widening a trained model's caption vocabulary (server/train/vocabulary.py), on the
session's small model directory (conftest), which these tests only read."""

import numpy as np
import pytest

from server.model.motiongpt import Sampling
from server.model.store import load_model_dir, save_model_dir
from server.train.vocabulary import cover_characters, missing_characters

NEW_CAPTIONS = ["a person zigzags 5 times.", "someone walks in a zig-zag"]


def test_missing_characters_are_the_ones_the_pieces_cannot_spell(small_model_dir):
    model = load_model_dir(small_model_dir)
    missing = missing_characters(model, NEW_CAPTIONS)
    assert {"z", "5", "."} <= set(missing)
    assert " " not in missing and "a" not in missing
    assert missing_characters(model, ["a person walks forward"]) == []


def test_widened_model_spells_the_new_characters_and_keeps_every_old_id(small_model_dir, tmp_path):
    model = load_model_dir(small_model_dir)
    unk = model.tokenizer.unk_token_id
    before = model.tokenizer("a person walks forward").input_ids
    assert unk in model.tokenizer("zigzag 5").input_ids
    missing = missing_characters(model, NEW_CAPTIONS)
    first_code_before = model.first_code_id

    widened = cover_characters(model, small_model_dir / "spiece.model", missing, tmp_path / "tokenizer")

    assert widened.first_code_id == first_code_before + len(missing)
    assert widened.lm.config.vocab_size == model.lm.config.vocab_size
    assert widened.lm.shared.weight.shape[0] == widened.lm.lm_head.weight.shape[0] == widened.lm.config.vocab_size
    assert widened.tokenizer("a person walks forward").input_ids == before
    for caption in NEW_CAPTIONS:
        ids = widened.tokenizer(caption).input_ids
        assert unk not in ids
        assert widened.tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == caption.replace(" ", "")


def test_widened_model_generates_and_captions_as_before_training(small_model_dir, tmp_path):
    model = load_model_dir(small_model_dir)
    greedy = Sampling(greedy=True)
    motion = model.generate("a person walks forward", frames=40, seed=0, sampling=greedy)[0]
    caption = model.caption(motion)

    widened = cover_characters(load_model_dir(small_model_dir), small_model_dir / "spiece.model", missing_characters(model, NEW_CAPTIONS),
                               tmp_path / "tokenizer")
    np.testing.assert_array_equal(widened.generate("a person walks forward", frames=40, seed=0, sampling=greedy)[0], motion)
    assert widened.caption(motion) == caption

    reloaded = load_model_dir(save_model_dir(widened, tmp_path / "widened"))
    assert reloaded.first_code_id == widened.first_code_id
    assert reloaded.tokenizer("zigzag 5").input_ids == widened.tokenizer("zigzag 5").input_ids
    np.testing.assert_array_equal(reloaded.generate("a person walks forward", frames=40, seed=0, sampling=greedy)[0], motion)


def test_a_tokenizer_file_of_another_model_is_refused(small_model_dir, tmp_path):
    model = load_model_dir(small_model_dir)
    # The same pieces are accepted; a file whose piece count differs is not.
    cover_characters(model, small_model_dir / "spiece.model", [], tmp_path / "unused")
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((small_model_dir / "spiece.model").read_bytes())
    del proto.pieces[-1]
    (tmp_path / "short.model").write_bytes(proto.SerializeToString())
    with pytest.raises(ValueError, match="pieces"):
        cover_characters(model, tmp_path / "short.model", ["z"], tmp_path / "tokenizer")
