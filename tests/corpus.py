"""A small corpus in HumanML3D's layout, written from smooth random motions: what the
training tests read (the synthesizer's own corpus is tested on its own)."""

import json
from pathlib import Path

import numpy as np

from retarget.humanml3d import features_from_joints
from harness.motions import smooth_random_joints

_ACTIONS = ["walks forward", "turns around", "waves", "jumps", "squats", "kicks with the left foot"]
_ACTION_NAMES = ["walk", "turn", "wave", "jump", "squat", "kick"]  # as clips.jsonl names them


def write_corpus(directory: Path, clips: int = 24, frames: int = 60, real: int = 0, actions: bool = False) -> Path:
    """`real` clips (the second onwards, in the train split) are named as the corpus names
    real motion capture; `actions` writes clips.jsonl, as the synthesizer does, naming each
    synthesized clip's one action."""
    directory = Path(directory)
    (directory / "new_joint_vecs").mkdir(parents=True)
    (directory / "new_joints").mkdir()
    (directory / "texts").mkdir()
    names, features = [], []
    for k in range(clips):
        name = f"cmu{k:04d}" if 1 <= k <= real else f"{k:06d}"
        joints = smooth_random_joints(frames=frames + k % 5, seed=k, walk_speed=k % 3, turn_degrees=20 * (k % 4))
        feature = features_from_joints(joints).astype(np.float32)
        np.save(directory / "new_joints" / f"{name}.npy", joints.astype(np.float32))
        np.save(directory / "new_joint_vecs" / f"{name}.npy", feature)
        action = _ACTIONS[k % len(_ACTIONS)]
        lines = [f"a person {action}#a/DET person/NOUN#0.0#0.0", f"someone {action}#someone/PRON#0.0#0.0"]
        if k % 6 == 0:  # HumanML3D-style caption of a part of the clip
            lines.append(f"a person {action} briefly#a/DET person/NOUN#0.5#2.5")
        (directory / "texts" / f"{name}.txt").write_text("\n".join(lines) + "\n")
        names.append(name)
        features.append(feature)
    train, val, test = names[: clips * 3 // 4], names[clips * 3 // 4: clips * 7 // 8], names[clips * 7 // 8:]
    for split, members in (("train", train), ("val", val), ("test", test)):
        (directory / f"{split}.txt").write_text("\n".join(members) + "\n")
    if actions:
        records = [{"id": n, "actions": [{"action": _ACTION_NAMES[k % len(_ACTIONS)], "start": 0,
                                          "end": len(features[k]), "params": {}}]}
                   for k, n in enumerate(names) if not n.startswith("cmu")]
        (directory / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    stacked = np.concatenate([features[names.index(n)] for n in train])
    np.save(directory / "Mean.npy", stacked.mean(0).astype(np.float32))
    np.save(directory / "Std.npy", (stacked.std(0) + 1e-3).astype(np.float32))
    return directory
