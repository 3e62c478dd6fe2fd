"""The text-to-motion metrics of HumanML3D's evaluation (Guo et al. 2022), over
embeddings from a retrieval model: a text i and its motion i are a matching pair.

    R-precision   in batches of 32 pairs, how often text i's own motion is among the
                  k nearest motions (k = 1, 2, 3)
    FID           Frechet distance between the embedding distributions of real and
                  generated motions
    matching      mean distance between a text and its motion
    diversity     mean distance between random pairs of motions
    multimodality mean distance between pairs of motions generated for the same text

and two of the motion tokenizer, on joints (T, 22, 3) before and after codes:

    swing kept    how much of the widest swing of a foot or wrist (relative to the
                  pelvis) survives; a mean MPJPE hides a kick flattened to a shuffle
    travel error  how far the pelvis ends from where it truly ends (metres)
"""

import numpy as np

from retarget.skeleton import LIMB_ENDS


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between every row of a (N, D) and of b (M, D)."""
    squared = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None]
    return np.sqrt(np.maximum(squared, 0.0))


def r_precision(text: np.ndarray, motion: np.ndarray, batch: int = 32, top: int = 3) -> np.ndarray:
    """Top-1..top hit rates (top,), over whole batches of `batch` pairs."""
    usable = (len(text) // batch) * batch
    if usable == 0:
        raise ValueError(f"R-precision needs at least {batch} pairs, got {len(text)}")
    hits = np.zeros(top)
    for start in range(0, usable, batch):
        distances = distance_matrix(text[start:start + batch], motion[start:start + batch])
        rank = (distances < np.diag(distances)[:, None]).sum(1)  # motions nearer than the true one
        hits += [(rank < k).sum() for k in range(1, top + 1)]
    return hits / usable


def matching_distance(text: np.ndarray, motion: np.ndarray) -> float:
    return float(np.linalg.norm(text - motion, axis=1).mean())


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2). The trace of the matrix square root
    comes from the eigenvalues of S1^1/2 S2 S1^1/2, which is symmetric: no complex
    square roots, no scipy."""
    mu1, mu2 = real.mean(0), generated.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    values, vectors = np.linalg.eigh(s1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root)


def diversity(embeddings: np.ndarray, pairs: int = 300, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    pairs = min(pairs, len(embeddings))
    first = rng.choice(len(embeddings), pairs, replace=False)
    second = rng.choice(len(embeddings), pairs, replace=False)
    return float(np.linalg.norm(embeddings[first] - embeddings[second], axis=1).mean())


def multimodality(per_text: np.ndarray, pairs: int = 10, seed: int = 0) -> float:
    """per_text: (texts, samples, D) embeddings of several motions generated per text."""
    rng = np.random.default_rng(seed)
    samples = per_text.shape[1]
    pairs = min(pairs, samples)
    first = rng.choice(samples, pairs, replace=False)
    second = rng.choice(samples, pairs, replace=False)
    return float(np.linalg.norm(per_text[:, first] - per_text[:, second], axis=-1).mean())


def swing_kept(truth: np.ndarray, decoded: np.ndarray, least: float = 0.1) -> float:
    """The decoded motion's widest foot or wrist swing over the true one (1 = all kept);
    NaN when the true swing is under `least` metres (standing still: nothing to keep)."""
    def widest(joints):
        limbs = joints[:, LIMB_ENDS] - joints[:, :1]
        return np.ptp(limbs, axis=0).max()
    swing = widest(truth)
    return float(widest(decoded) / swing) if swing >= least else float("nan")


def travel_error(truth: np.ndarray, decoded: np.ndarray) -> float:
    """Distance on the ground between where the pelvis truly ends and where it ends decoded."""
    return float(np.linalg.norm(((truth[-1, 0] - truth[0, 0]) - (decoded[-1, 0] - decoded[0, 0]))[[0, 2]]))
