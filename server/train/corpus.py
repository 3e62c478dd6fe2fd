"""Reading a motion-text corpus in HumanML3D's on-disk layout.

    DIR/new_joint_vecs/<id>.npy   (T, 263) features at 20 fps
    DIR/texts/<id>.txt            caption#tagged tokens#start#end, one per line
    DIR/train.txt, val.txt, test.txt   clip ids
    DIR/Mean.npy, DIR/Std.npy     normalization statistics (263,)

The same reader serves the project's synthetic corpus and the real HumanML3D. As in
HumanML3D's own loader, a caption with a start and end (seconds) describes only that
part of its clip and becomes a clip of its own; 0#0 means the whole clip.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retarget.humanml3d import FEATURE_SIZE, FPS

from .config import ConfigError

SPLITS = ("train", "val", "test")
MOCAP_PREFIX = "cmu"  # clip ids of real motion capture in the corpus (server/data/synth.py)


@dataclass
class Clip:
    name: str
    features: np.ndarray  # (T, 263) normalized, float32
    captions: list[str] = field(default_factory=list)


class CorpusError(ValueError):
    pass


def read_captions(path: Path) -> list[tuple[str, float, float]]:
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("#")
        if len(parts) < 4:
            raise CorpusError(f"{path}:{number}: expected caption#tokens#start#end")
        try:
            start, end = float(parts[-2] or 0), float(parts[-1] or 0)
        except ValueError:
            raise CorpusError(f"{path}:{number}: start and end must be numbers") from None
        start, end = (0.0, 0.0) if np.isnan(start) or np.isnan(end) else (start, end)
        entries.append(("#".join(parts[:-3]).strip(), start, end))
    return entries


def read_statistics(directory) -> tuple[np.ndarray, np.ndarray]:
    directory = Path(directory)
    arrays = []
    for name in ("Mean.npy", "Std.npy"):
        path = directory / name
        if not path.is_file():
            raise CorpusError(f"{directory}: {name} is missing (is this a HumanML3D-layout corpus?)")
        array = np.load(path).astype(np.float32)
        if array.shape != (FEATURE_SIZE,):
            raise CorpusError(f"{path}: expected shape ({FEATURE_SIZE},), got {array.shape}")
        arrays.append(array)
    mean, std = arrays
    if np.any(std <= 0) or not np.all(np.isfinite(std)):
        raise CorpusError(f"{directory}/Std.npy: every value must be positive and finite")
    return mean, std


def split_ids(directory, split: str) -> list[str]:
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    path = Path(directory) / f"{split}.txt"
    if not path.is_file():
        raise CorpusError(f"{path}: the {split} split list is missing")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _clip_entries(directory) -> list[dict]:
    """The entries of the corpus's clips.jsonl (written by `motiongpt data synth`) that
    list actions; none for a corpus without one, such as HumanML3D."""
    path = Path(directory) / "clips.jsonl"
    if not path.is_file():
        return []
    entries = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [entry for entry in entries if entry.get("actions")]


def clip_actions(directory) -> dict[str, list[str]]:
    """Clip id -> its actions in order; empty for a corpus without clips.jsonl."""
    return {entry["id"]: [a["action"] for a in entry["actions"]] for entry in _clip_entries(directory)}


def single_actions(directory) -> dict[str, tuple[str, dict]]:
    """Clip id -> (action, its parameters) for the clips that show one action alone;
    empty for a corpus without clips.jsonl."""
    return {entry["id"]: (entry["actions"][0]["action"], entry["actions"][0].get("params") or {})
            for entry in _clip_entries(directory) if len(entry["actions"]) == 1}


def repeated_indices(clips: list[Clip], actions: dict[str, list[str]], repeats: dict) -> list[int]:
    """Each clip's index, as many times as its most repeated action asks (once when no
    action of it is named in `repeats`): rare or hard actions seen more often per epoch.
    A caption segment (NAME#...), retimed (NAME@...) or mirrored (NAME~...) clip is its clip's."""
    if not isinstance(repeats, dict) or not all(isinstance(n, int) and n >= 1 for n in repeats.values()):
        raise ConfigError(f"train.action_repeats must map actions to whole numbers of at least 1, got {repeats!r}")
    if repeats and not actions:
        raise ConfigError("train.action_repeats needs the corpus's clips.jsonl (written by `motiongpt data synth`)")
    unknown = set(repeats) - {a for named in actions.values() for a in named}
    if unknown:
        raise ConfigError(f"train.action_repeats names actions the corpus does not have: {', '.join(sorted(unknown))}")
    order = []
    for index, clip in enumerate(clips):
        named = actions.get(re.split(r"[#@~]", clip.name)[0], [])
        order += [index] * max((repeats.get(a, 1) for a in named), default=1)
    return order


def load_clips(directory, split: str, min_frames: int = 1, limit: int | None = None,
               statistics: tuple[np.ndarray, np.ndarray] | None = None) -> list[Clip]:
    """The split's clips, features normalized with the corpus statistics (or with
    `statistics`, (mean, std), such as a trained tokenizer's own). Clips (and caption
    segments) shorter than `min_frames` feature frames are left out, as HumanML3D's
    loader leaves out short motions."""
    directory = Path(directory)
    mean, std = read_statistics(directory) if statistics is None else statistics
    clips = []
    for name in split_ids(directory, split)[:limit]:
        feature_path = directory / "new_joint_vecs" / f"{name}.npy"
        text_path = directory / "texts" / f"{name}.txt"
        if not feature_path.is_file():
            raise CorpusError(f"{feature_path}: listed in {split}.txt but missing")
        features = np.load(feature_path)
        if features.ndim != 2 or features.shape[1] != FEATURE_SIZE or not np.all(np.isfinite(features)):
            raise CorpusError(f"{feature_path}: expected finite (frames, {FEATURE_SIZE}) features, got {features.shape}")
        normalized = ((features - mean) / std).astype(np.float32)
        whole = Clip(name, normalized)
        for caption, start, end in read_captions(text_path) if text_path.is_file() else []:
            if start == 0.0 and end == 0.0:
                whole.captions.append(caption)
                continue
            part = normalized[int(start * FPS):int(end * FPS)]
            if len(part) >= min_frames:
                clips.append(Clip(f"{name}#{start:g}-{end:g}", part, [caption]))
        if len(normalized) >= min_frames and (whole.captions or not text_path.is_file()):
            clips.append(whole)
    if not clips:
        raise CorpusError(f"{directory}: the {split} split has no clip of at least {min_frames} frames")
    return clips
