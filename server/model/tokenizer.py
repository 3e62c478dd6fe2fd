"""Text tokenizers with MotionGPT's motion tokens.

The official model uses flan-t5-base's tokenizer with `<motion_id_0>` ... `<motion_id_N+2>`
added after its vocabulary (N codes, then motion start, motion end, mask). Models made
here get a SentencePiece tokenizer trained offline on their own captions, with T5's
special ids (pad 0, eos 1, unk 2), and the same motion tokens.
"""

import re
import tempfile
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase, T5Tokenizer

from retarget.contract import MOTION_TOKEN, motion_token_strings

_MOTION_TOKEN_PATTERN = re.compile(re.escape(MOTION_TOKEN).replace(r"\{\}", r"(\d+)"))


def add_motion_tokens(tokenizer: PreTrainedTokenizerBase, codebook_size: int) -> PreTrainedTokenizerBase:
    """Add the motion tokens as the reference code does (plain added tokens, appended
    after the text vocabulary), unless the tokenizer already has them."""
    wanted = motion_token_strings(codebook_size)
    if wanted[0] not in tokenizer.get_vocab():
        tokenizer.add_tokens(wanted)
    return tokenizer


def load_tokenizer(directory, codebook_size: int) -> PreTrainedTokenizerBase:
    """A tokenizer directory (flan-t5-base's, or a model directory's) with motion tokens."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such tokenizer directory")
    if not any((directory / name).is_file() for name in ("tokenizer.json", "spiece.model")):
        raise FileNotFoundError(f"{directory}: has neither tokenizer.json nor spiece.model")
    # flan-t5-base's directory holds the SentencePiece model: load it as the reference
    # code does (legacy=True). A tokenizer.json alone already carries that behaviour.
    options = {"legacy": True} if (directory / "spiece.model").is_file() else {}
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, **options)
    return add_motion_tokens(tokenizer, codebook_size)


def train_tokenizer(texts, vocab_size: int, codebook_size: int, directory) -> PreTrainedTokenizerBase:
    """Train a SentencePiece unigram tokenizer on `texts` (offline), save it in
    `directory` as a T5 tokenizer, and return it with the motion tokens."""
    import sentencepiece

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        prefix = str(Path(folder) / "spiece")
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(list(texts)),
            model_prefix=prefix,
            vocab_size=vocab_size,
            model_type="unigram",
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            character_coverage=1.0,
            hard_vocab_limit=False,
            minloglevel=2,
        )
        T5Tokenizer(vocab_file=prefix + ".model", extra_ids=0, legacy=True).save_pretrained(str(directory))
    return load_tokenizer(directory, codebook_size)


def codes_from_text(text: str) -> list[int]:
    """Motion token numbers written in a text, in order."""
    return [int(k) for k in _MOTION_TOKEN_PATTERN.findall(text)]
