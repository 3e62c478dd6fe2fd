"""Small models the tests build: real architecture and tokenizer, fresh weights."""

from pathlib import Path

from retarget.contract import INSTRUCTIONS
from server.model.motiongpt import MotionGPT
from server.model.tokenizer import train_tokenizer
from server.model.vqvae import VQVAEConfig

SMALL_T5 = dict(d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2, num_decoder_layers=2,
                feed_forward_proj="gated-gelu", relative_attention_num_buckets=8, dropout_rate=0.0)
SMALL_VAE = VQVAEConfig(width=32, code_dim=16, codebook_size=24, depth=2)

_WORDS = ["walks", "runs", "jumps", "waves", "kicks", "squats", "turns", "sits down", "claps", "bows"]
_WAYS = ["forward", "backward", "slowly", "quickly", "in place", "to the left", "to the right"]
PROMPT_WORDS = list(INSTRUCTIONS.values())


def caption_corpus():
    texts = [f"a person {w} {a}" for w in _WORDS for a in _WAYS]
    return texts + PROMPT_WORDS * 5


def small_model(folder: Path, seed: int = 0) -> MotionGPT:
    tokenizer = train_tokenizer(caption_corpus(), vocab_size=120, codebook_size=SMALL_VAE.codebook_size,
                                directory=folder / "tokenizer")
    return MotionGPT.untrained(tokenizer, SMALL_VAE, SMALL_T5, name="test-small", seed=seed)
