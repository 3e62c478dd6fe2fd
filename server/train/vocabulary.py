"""Widening a trained model's caption vocabulary to the characters a new corpus uses.

A model's SentencePiece vocabulary is learned from the captions of its first corpus; a
later corpus can use characters it never saw ("zigzag", "135 degrees", "a stop."), which
it can then neither read nor write: they become `<unk>`. Continuing such a model adds
each missing character as a piece of its own, after the existing pieces, so every
existing piece keeps its id and the motion tokens move up by the number of pieces added.
The new rows of the embeddings and of the output layer start as copies of `<unk>`'s,
which is what those characters were until now: before training the model writes the same
tokens as before (`<unk>` wins ties by its lower id).
"""

from pathlib import Path

import torch
from sentencepiece import sentencepiece_model_pb2
from transformers import T5Tokenizer

from server.model.motiongpt import MotionGPT
from server.model.tokenizer import load_tokenizer


def missing_characters(model: MotionGPT, texts) -> list[str]:
    """Characters of `texts` (spaces aside) the model's text pieces cannot spell, in order."""
    known = set()
    for piece in model.tokenizer.convert_ids_to_tokens(range(model.first_code_id)):
        known.update(piece)
    used = set()
    for text in texts:
        used.update(text)
    return sorted(c for c in used - known if not c.isspace())


def cover_characters(model: MotionGPT, spiece_model, characters: list[str], directory) -> MotionGPT:
    """The model with `characters` added to its vocabulary (see the module's docstring).
    `spiece_model` is the SentencePiece file of the model's tokenizer (spiece.model in its
    directory); the widened tokenizer's files are written to `directory` (the tokenizer
    keeps reading its SentencePiece file from there until the model is saved)."""
    if not characters:
        return model
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(spiece_model).read_bytes())
    if len(proto.pieces) != model.first_code_id:
        raise ValueError(f"{spiece_model} has {len(proto.pieces)} pieces, but the model's text vocabulary has {model.first_code_id}")
    # Below every learned piece: a character alone is the last way to spell a word.
    lowest = min(p.score for p in proto.pieces if p.type == sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL)
    for character in characters:
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = character, lowest - 1.0, sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spiece.model").write_bytes(proto.SerializeToString())
    T5Tokenizer(vocab_file=str(directory / "spiece.model"), extra_ids=0, legacy=True).save_pretrained(str(directory))
    tokenizer = load_tokenizer(directory, model.codebook_size)
    _insert_rows(model.lm, at=model.first_code_id, count=len(characters), like=model.tokenizer.unk_token_id)
    embedder = model.prompt_embedder
    if embedder is not None:
        embedder.tokenizer = tokenizer  # its kept sentence states do not depend on T5's pieces
    widened = MotionGPT(model.vae, model.lm, tokenizer, model.mean, model.std, model.name, decoding=model.decoding,
                        prompt_embedder=embedder, contract=model.contract)
    if widened.first_code_id != model.first_code_id + len(characters):
        raise ValueError("the widened tokenizer did not place the motion tokens after the new pieces")
    return widened


@torch.no_grad()
def _insert_rows(lm, at: int, count: int, like: int) -> None:
    """Insert `count` rows copied from row `like` at row `at` of the shared embedding and
    the output layer (T5's encoder and decoder embeddings are tied to the shared one)."""
    def widened(weight):
        return torch.cat([weight[:at], weight[like:like + 1].expand(count, -1), weight[at:]]).clone()

    lm.shared.weight = torch.nn.Parameter(widened(lm.shared.weight))
    lm.shared.num_embeddings += count
    lm.encoder.embed_tokens = lm.decoder.embed_tokens = lm.shared
    lm.lm_head.weight = torch.nn.Parameter(widened(lm.lm_head.weight))
    lm.config.vocab_size += count
