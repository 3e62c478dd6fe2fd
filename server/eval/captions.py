"""Caption metrics: BLEU-1/4, ROUGE-L and CIDEr with the COCO caption evaluation code
(pycocoevalcap; its Java tokenizer is replaced by lower-casing and splitting on
non-letters, which is what it does to such plain sentences), a sentence-embedding
similarity, and whether a caption names the clip's action."""

import re
from collections import Counter

import numpy as np

_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def coco_scores(generated: list[str], references: list[list[str]]) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    hypotheses = {i: [" ".join(words(g)) or "empty"] for i, g in enumerate(generated)}
    truths = {i: [" ".join(words(r)) for r in refs] for i, refs in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(truths, hypotheses, verbose=0)
    rouge, _ = Rouge().compute_score(truths, hypotheses)
    cider, _ = Cider().compute_score(truths, hypotheses)
    return {"bleu_1": float(bleu[0]), "bleu_4": float(bleu[3]), "rouge_l": float(rouge), "cider": float(cider)}


def embedding_similarity(sentences, generated: list[str], references: list[list[str]]) -> float:
    """Mean cosine similarity (all-MiniLM-L6-v2) between each caption and its closest reference."""
    scores = []
    for caption, refs in zip(generated, references):
        vectors = sentences.encode([caption] + list(refs))
        scores.append(float((vectors[1:] @ vectors[0]).max()))
    return float(np.mean(scores))


def action_words(captions_by_action: dict[str, list[str]], share: float = 0.3, leak: float = 0.05) -> dict[str, set[str]]:
    """For each action, the words that name it: frequent in its own captions (in at least
    `share` of them) and rare in every other action's (at most `leak`). Learned from the
    training captions, so no hand-written synonym list can flatter the model."""
    frequency = {}
    for action, captions in captions_by_action.items():
        counts = Counter(w for c in captions for w in set(words(c)))
        frequency[action] = {w: n / len(captions) for w, n in counts.items()}
    naming = {}
    for action, own in frequency.items():
        naming[action] = {w for w, f in own.items() if f >= share and
                          all(other.get(w, 0.0) <= leak for name, other in frequency.items() if name != action)}
    return naming


def names_action(caption: str, action: str, naming: dict[str, set[str]]) -> bool:
    return bool(set(words(caption)) & naming.get(action, set()))
