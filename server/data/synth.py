"""The motion synthesizer: actions (actions.py) put together into clips with feet on
the ground, turned into HumanML3D features, captioned, and written in HumanML3D's
on-disk layout.

    motiongpt data synth --out out/corpus --clips 10000 --seed 0

Feet: after forward kinematics with the pelvis at the origin, the lowest foot of each
frame is the planted one; the body moves by exactly what keeps that foot still (so
planted feet do not slide and steps carry the body), and stands at the height that puts
the lowest point (toes, heels, knees when kneeling) on the floor, plus the ballistic
height of a jump in the air and the height of the floor under the lowest foot (stairs:
the step it stands on). Lying or sitting on the floor, the trunk rests on it instead
(CLEARANCE).
"""

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retarget.humanml3d import FPS, features_from_joints
from retarget.kinematics import forward_kinematics
from retarget.rotation import quat_mul
from retarget.skeleton import JOINT_INDEX

from . import pose
from .actions import ACTIONS, ANGLE_NAMES, MOTION_VERSION, NEUTRAL, Segment, rotations
from .captions import PHRASES, VERSION, caption, tag

MIN_FRAMES, MAX_FRAMES = 40, 200
_FEET = {"left": (JOINT_INDEX["left_ankle"], JOINT_INDEX["left_foot"]),
         "right": (JOINT_INDEX["right_ankle"], JOINT_INDEX["right_foot"])}
_GROUND_POINTS = [*_FEET["left"], *_FEET["right"], JOINT_INDEX["left_knee"], JOINT_INDEX["right_knee"]]
# How far above the floor each joint stays when that part of the body rests on it: feet
# and knees touch with the joint itself; the trunk, head and arms have flesh around
# the joint (lying on the back puts the pelvis and spine joints about 10 cm up).
CLEARANCE = np.zeros(22)
CLEARANCE[[JOINT_INDEX[n] for n in ("pelvis", "spine1", "spine2", "spine3", "head")]] = 0.10
CLEARANCE[[JOINT_INDEX[n] for n in ("neck", "left_collar", "right_collar", "left_shoulder", "right_shoulder")]] = 0.07
CLEARANCE[[JOINT_INDEX[n] for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip")]] = 0.04
CLEARANCE[_GROUND_POINTS] = 0.0
# How often clips hold two or three actions in a row.
SEQUENCE_SHARES = (0.7, 0.22, 0.08)


@dataclass
class Clip:
    joints: np.ndarray  # (T, 22, 3)
    rotations: np.ndarray  # (T, 22, 4) local
    root: np.ndarray  # (T, 3)
    actions: list  # [(action, params, start frame, end frame)]


def _natural_noise(angles: dict, rng, frames: int, support=None) -> None:
    """Slow random wobble on the torso, head and arms, a few degrees: no two clips of one
    action are the same person. Not on all fours (support +-2), where the trunk and arms
    hold planted hands."""
    t = np.arange(frames) / FPS
    steady = np.ones(frames)
    if support is not None:
        on_hands = np.isin(support, (2, -2)).astype(float)
        # (eased over half a second, so the wobble fades rather than stops)
        kernel = np.ones(int(FPS // 2)) / int(FPS // 2)
        steady = 1 - np.clip(np.convolve(on_hands, kernel, mode="same") * 2, 0, 1)
    for name, degrees in (("spine", 2.0), ("spine_bend", 1.5), ("neck", 3.0), ("neck_yaw", 4.0),
                          ("elev_l", 3.0), ("elev_r", 3.0), ("elbow_l", 4.0), ("elbow_r", 4.0)):
        frequency = rng.uniform(0.1, 0.5)
        angles[name] += np.radians(degrees) * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi)) * steady


# Actions that end in a pose (seated, lying) and the action that leaves it: in a clip the
# one follows the other directly, without standing up in between.
HELD_POSES = {"sit_down": "stand_up", "lie_down": "get_up", "fall_down": "get_up"}
LEAVING = {"stand_up": "sit_down", "get_up": "lie_down"}  # what comes before, when something does


def _held_out_pairs() -> frozenset:
    """Action combinations kept for evaluation: one in ten ordered pairs (this action, then
    that one), by a fixed hash of their names, so the set does not depend on a seed. Pairs
    the synthesizer forces (sitting down, then standing up) are never held out. Training
    and validation clips never hold one in a row; test clips may."""
    free = [name for name in ACTIONS if name not in HELD_POSES and name not in LEAVING]
    return frozenset((a, b) for a in free for b in free
                     if a != b and zlib.crc32(f"{a} then {b}".encode()) % 10 == 0)


HELD_OUT_PAIRS = _held_out_pairs()


def holds_held_out_pair(names) -> bool:
    return any(pair in HELD_OUT_PAIRS for pair in zip(names, names[1:]))


def join(segments: list[Segment]) -> Segment:
    """One segment after another. Inside the clip every segment eases out of and into
    the neutral standing pose over 0.4 s, so transitions are smooth; the clip's own ends
    keep their motion (a walk may start mid-stride). A held pose (HELD_POSES) passes
    straight to the action that leaves it."""
    if len(segments) == 1:
        return segments[0]
    parts = []
    floor = 0.0  # where the last segment left the feet (after stairs), so the next starts there
    for k, segment in enumerate(segments):
        t = np.arange(segment.frames) / FPS
        duration = segment.frames / FPS
        held_before = k > 0 and HELD_POSES.get(segments[k - 1].action) == segment.action
        held_after = k < len(segments) - 1 and HELD_POSES.get(segment.action) == segments[k + 1].action
        ease_in = pose.smoothstep(t / 0.4) if k > 0 and not held_before else np.ones_like(t)
        ease_out = pose.smoothstep((duration - t) / 0.4) if k < len(segments) - 1 and not held_after else np.ones_like(t)
        weight = ease_in * ease_out
        angles = {name: NEUTRAL[name] + (segment.angles[name] - NEUTRAL[name]) * weight for name in ANGLE_NAMES}
        support = np.where(weight > 0.5, segment.support, 0).astype(np.int8)
        parts.append(Segment(segment.action, segment.params, angles, segment.turn * weight, segment.lift,
                             segment.drift, segment.drift_side, support, floor + segment.rise))
        floor += segment.rise[-1]
    return Segment("+".join(s.action for s in parts), {},
                   {name: np.concatenate([p.angles[name] for p in parts]) for name in ANGLE_NAMES},
                   np.concatenate([p.turn for p in parts]), np.concatenate([p.lift for p in parts]),
                   np.concatenate([p.drift for p in parts]), np.concatenate([p.drift_side for p in parts]),
                   np.concatenate([p.support for p in parts]), np.concatenate([p.rise for p in parts]))


def place_on_ground(local: np.ndarray, segment: Segment, heading0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local rotations (T, 22, 4) -> (rotations with the heading, root (T, 3), joints)."""
    heading = heading0 + np.cumsum(segment.turn)
    local = local.copy()
    local[:, 0] = quat_mul(pose.yaw(heading), local[:, 0])
    relative = forward_kinematics(local, np.zeros((len(local), 3)))
    lowest = {side: relative[:, points, 1].min(axis=1) for side, points in _FEET.items()}
    left_planted = np.where(segment.support == 0, lowest["left"] <= lowest["right"], segment.support > 0)
    planted = np.where(left_planted, _FEET["left"][1], _FEET["right"][1])
    # On all fours a knee carries the body (support +-2: left / right knee).
    planted = np.where(segment.support == 2, JOINT_INDEX["left_knee"], planted)
    planted = np.where(segment.support == -2, JOINT_INDEX["right_knee"], planted)
    frames = np.arange(1, len(local))
    # The planted toe's move relative to the pelvis, undone by moving the pelvis.
    step = relative[frames, planted[1:]] - relative[frames - 1, planted[1:]]
    airborne = segment.lift[1:] > 0
    forward = np.stack([np.sin(heading[1:]), np.zeros(len(frames)), np.cos(heading[1:])], axis=-1)
    left = np.stack([np.cos(heading[1:]), np.zeros(len(frames)), -np.sin(heading[1:])], axis=-1)
    flight = forward * segment.drift[1:, None] + left * segment.drift_side[1:, None]
    moves = np.where(airborne[:, None], flight, -step)
    moves[:, 1] = 0.0
    root = np.zeros((len(local), 3))
    root[1:] = np.cumsum(moves, axis=0)
    root[:, 1] = (CLEARANCE - relative[..., 1]).max(axis=1) + segment.lift + segment.rise
    joints = relative + root[:, None]
    return local, root, joints


# Locomotion is what people ask for most: it gets more clips than single gestures.
ACTION_WEIGHTS = {name: 1.0 for name in ACTIONS} | {"walk": 5.0, "jump": 2.0, "turn": 1.5, "side_step": 1.5,
                                                     "circle": 1.5, "wave": 1.5, "kick": 1.5, "squat": 1.5}


def synthesize(rng: np.random.Generator, held_out_pairs: bool = False) -> Clip:
    """One clip of one to three actions; `held_out_pairs`: whether it may hold an action
    combination kept for evaluation (HELD_OUT_PAIRS; test clips only)."""
    count = int(rng.choice(len(SEQUENCE_SHARES), p=SEQUENCE_SHARES)) + 1
    names = list(ACTIONS)
    weights = np.array([ACTION_WEIGHTS[n] for n in names])
    for _ in range(20):
        budget = rng.uniform(2.0, 10.0)
        picks = [names[k] for k in rng.choice(len(names), size=count, p=weights / weights.sum())]
        # Sitting or lying down mid-clip is followed by getting up; getting up mid-clip
        # comes after sitting or lying down.
        for k in range(count):
            if picks[k] in HELD_POSES and k + 1 < count:
                picks[k + 1] = HELD_POSES[picks[k]]
            if picks[k] in LEAVING and k > 0 and HELD_POSES.get(picks[k - 1]) != picks[k]:
                picks[k - 1] = LEAVING[picks[k]]
        if not held_out_pairs and holds_held_out_pair(picks):
            continue
        segments = [ACTIONS[name](rng, budget / count) for name in picks]
        frames = sum(s.frames for s in segments)
        if MIN_FRAMES <= frames <= MAX_FRAMES:
            break
    else:
        segments = [ACTIONS["stand"](rng, 3.0)]
    segment = join(segments)
    _natural_noise(segment.angles, rng, segment.frames, segment.support)
    local, root, joints = place_on_ground(rotations(segment.angles), segment, rng.uniform(-np.pi, np.pi))
    spans, start = [], 0
    for part in segments:
        spans.append((part.action, part.params, start, start + part.frames))
        start += part.frames
    return Clip(joints, local, root, spans)


# --- the corpus on disk ----------------------------------------------------------------------

def _std_per_block(std: np.ndarray) -> np.ndarray:
    """HumanML3D's Std.npy: each feature block (root rotation velocity, root linear
    velocity, root height, joint positions, 6D rotations, joint velocities, foot contacts)
    takes its block's mean standard deviation, so blocks weigh by their size."""
    out = std.copy()
    for block in (slice(0, 1), slice(1, 3), slice(3, 4), slice(4, 67), slice(67, 193), slice(193, 259), slice(259, 263)):
        out[block] = std[block].mean()
    return out


TRAINING_CAPTIONS = 6  # caption draws per training clip (duplicates drop out)
TEST_CAPTIONS = 3  # per test clip: as many as before version 3, so test captions stay the same


def split_of(index: int, seed: int) -> str:
    draw = np.random.default_rng([seed, index, 7]).random()
    return "train" if draw < 0.8 else "val" if draw < 0.85 else "test"


def make_clip(index: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, index])
    split = split_of(index, seed)
    held_out = split == "test"
    clip = synthesize(rng, held_out_pairs=held_out)
    described = [(a, p) for a, p, _, _ in clip.actions]
    # Training clips get more draws than test clips: more of the training phrasings are read
    # per clip, while the test captions (held-out draws) stay what they were.
    draws = TEST_CAPTIONS if held_out else TRAINING_CAPTIONS
    captions = sorted({caption(described, rng, held_out) for _ in range(draws)})
    return {"id": f"{index:06d}", "split": split, "joints": clip.joints.astype(np.float32),
            "features": features_from_joints(clip.joints).astype(np.float32), "captions": captions,
            "actions": [{"action": a, "start": s, "end": e, "params": p} for a, p, s, e in clip.actions], "source": "synth"}


def _write_clip(directory: Path, item: dict) -> None:
    name = item["id"]
    np.save(directory / "new_joints" / f"{name}.npy", item["joints"])
    np.save(directory / "new_joint_vecs" / f"{name}.npy", item["features"])
    lines = [f"{c}#{tag(c)}#0.0#0.0" for c in item["captions"]]
    (directory / "texts" / f"{name}.txt").write_text("\n".join(lines) + "\n")


def _make_range(arguments):
    start, stop, seed = arguments
    return [make_clip(i, seed) for i in range(start, stop)]


def write_corpus(out, clips: int, seed: int = 0, workers: int = 0, force: bool = False, mocap: bool = True,
                 log=print) -> Path:
    """Make `clips` synthetic clips into `out` in HumanML3D's layout (see the module
    docstring), plus, with `mocap`, the CMU motion-capture clips (cmu.py) in their trials'
    splits (train, or test for held-out trials). The same seed gives the same files."""
    if clips < 20:
        raise ValueError(f"--clips must be at least 20 (train, val and test all need clips), got {clips}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise ValueError(f"{out} is not empty; give another --out or --force to replace it")
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        import shutil

        shutil.rmtree(partial)
    for folder in ("new_joints", "new_joint_vecs", "texts"):
        (partial / folder).mkdir(parents=True)
    workers = workers or len(os.sched_getaffinity(0))
    chunks = [(start, min(start + 50, clips), seed) for start in range(0, clips, 50)]
    records, sums, squares, count = [], np.zeros(263), np.zeros(263), 0
    if workers > 1:
        from multiprocessing import get_context

        pool = get_context("spawn").Pool(workers)
        batches = pool.imap(_make_range, chunks)
    else:
        pool, batches = None, map(_make_range, chunks)
    try:
        for done, batch in enumerate(batches, 1):
            for item in batch:
                _write_clip(partial, item)
                if item["split"] == "train":
                    features = item["features"].astype(np.float64)
                    sums += features.sum(0)
                    squares += (features ** 2).sum(0)
                    count += len(features)
                records.append({k: item[k] for k in ("id", "split", "actions", "source")} | {"frames": len(item["joints"])})
            if done % 20 == 0:
                log(f"data synth: {len(records)}/{clips} clips")
    finally:
        if pool is not None:
            pool.close()
    if mocap:
        from .cmu import corpus_items

        for number, item in enumerate(corpus_items(seed)):
            item.update(id=f"cmu{number:04d}")  # the split is the trial's (segments.json)
            _write_clip(partial, item)
            if item["split"] == "train":  # held-out trials stay out of the statistics too
                features = item["features"].astype(np.float64)
                sums += features.sum(0)
                squares += (features ** 2).sum(0)
                count += len(features)
            records.append({k: item[k] for k in ("id", "split", "actions", "source")} | {"frames": len(item["joints"])})
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    np.save(partial / "Mean.npy", mean.astype(np.float32))
    np.save(partial / "Std.npy", np.maximum(_std_per_block(std), 1e-4).astype(np.float32))
    for split in ("train", "val", "test"):
        (partial / f"{split}.txt").write_text("".join(f"{r['id']}\n" for r in records if r["split"] == split))
    (partial / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (partial / "corpus.json").write_text(json.dumps({
        "seed": seed, "clips": len(records), "synthetic": clips, "motion_capture": len(records) - clips, "fps": FPS,
        "template_version": VERSION, "motion_version": MOTION_VERSION,
        "held_out_combinations": sorted(f"{a} then {b}" for a, b in HELD_OUT_PAIRS),
        "splits": {s: sum(r["split"] == s for r in records) for s in ("train", "val", "test")},
        "actions": sorted(PHRASES), "held_out_phrasings": {a: p[1] for a, p in PHRASES.items()},
    }, indent=2))
    if out.exists():
        import shutil

        shutil.rmtree(out)
    os.replace(partial, out)
    return out
