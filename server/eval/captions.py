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


def stem(word: str) -> str:
    """A word without its most common English endings (walks, walked, walking -> walk;
    stairs -> stair), so tenses and plurals count as one word."""
    for ending in ("ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def naming_units(text: str) -> set[str]:
    """The stems of a text and its pairs of adjacent stems ("walk backward", "sat down",
    "climb stair"): pairs tell apart actions that share their words."""
    stems = [stem(w) for w in words(text)]
    return set(stems) | {f"{a} {b}" for a, b in zip(stems, stems[1:])}


def action_words(captions_by_action: dict[str, list[str]], share: float = 0.15, leak: float = 0.05) -> dict[str, set[str]]:
    """For each action, the stems and stem pairs that name it: in at least `share` of its
    own captions and at most `leak` of every other action's. Learned from the training
    captions (of clips showing that action alone), so no hand-written synonym list can
    flatter the model. `share` is low because the corpus words every action many ways
    ("goes upstairs", "climbs the steps", "walked up the stairs"); `leak` keeps the
    words specific. A one-word action's own name names it too (name_units)."""
    frequency = {}
    for action, captions in captions_by_action.items():
        counts = Counter(u for c in captions for u in naming_units(c))
        frequency[action] = {u: n / len(captions) for u, n in counts.items()}
    naming = {}
    for action, own in frequency.items():
        naming[action] = {u for u, f in own.items() if f >= share and
                          all(other.get(u, 0.0) <= leak for name, other in frequency.items() if name != action)} | name_units(action)
    return naming


def name_units(action: str) -> set[str]:
    """The stems of a one-word action's own name ("walk", "dance" and "danc" from
    "dances"): a caption that says a walk walks names it, although other actions'
    captions say "walks" too (up the stairs, like a soldier) and the learned words alone
    would refuse it. Names of two or more words ("side_step", "sit_on_floor") add
    nothing: their parts ("step", "sit on") name other actions as well."""
    return set() if "_" in action else {stem(action), stem(action + "s")}


def names_action(caption: str, actions, naming: dict[str, set[str]]) -> bool:
    """Whether the caption names any of `actions` (one action's name, or the clip's
    several: a caption of a sequence may name any part of it)."""
    actions = [actions] if isinstance(actions, str) else actions
    units = naming_units(caption)
    return any(units & naming.get(action, set()) for action in actions)
