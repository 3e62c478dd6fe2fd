"""Real motion capture in the corpus: clips of CMU's Graphics Lab Motion Capture Database
(free for any use; "The data used in this project was obtained from mocap.cs.cmu.edu.
The database was created with funding from NSF EIA-0196217.").

`convert_bvh` brings a CMU BVH file onto the SMPL-22 joints through the retargeting
code's bone mapping (CMU's names are one of the conventions it knows), at 20 fps in
metres. The converted trials live in server/data/cmu/ as small .npy files, each with
its source, licence and captioned segments in segments.json; `corpus_items` cuts
them into clips for `motiongpt data synth`.
"""

import json
from pathlib import Path

import numpy as np

from retarget.formats.bvh import bvh_world_positions, parse_bvh
from retarget.humanml3d import FPS, features_from_joints
from retarget.mapping import map_bones
from retarget.rig import rig_from_chain
from retarget.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS

FOLDER = Path(__file__).resolve().parent / "cmu"
CMU_UNIT = 0.056444  # metres per unit of CMU's BVH files ((1 / 0.45) inch)


def convert_bvh(path, unit: float = CMU_UNIT) -> np.ndarray:
    """A BVH file -> SMPL-22 joint positions (T, 22, 3) at 20 fps, metres, Y up."""
    bvh = parse_bvh(Path(path).read_text())
    world, _ = bvh_world_positions(bvh)
    rest = np.zeros((len(bvh.names), 3))
    for joint, parent in enumerate(bvh.parents):
        rest[joint] = bvh.offsets[joint] + (rest[parent] if parent >= 0 else 0.0)
    # The mapper reads rigs as Blender stores them (Z up): ours (x, y, z) is (x, -z, y) there.
    rig = rig_from_chain(bvh.names, bvh.parents, np.stack([rest[:, 0], -rest[:, 2], rest[:, 1]], axis=-1))
    bone_map = map_bones(rig)
    step = bvh.fps / FPS
    if abs(step - round(step)) > 1e-3:
        raise ValueError(f"{path}: {bvh.fps:g} fps is not a whole multiple of {FPS} fps")
    world = world[::int(round(step))] * unit
    children = {b: [c for c, p in enumerate(bvh.parents) if p == b] for b in range(len(bvh.names))}
    joints = np.empty((len(world), len(JOINT_NAMES), 3))
    for joint, name in enumerate(JOINT_NAMES):
        bone = bvh.names.index(bone_map[name])
        joints[:, joint] = world[:, bone]
        parent = PARENTS[joint]
        if parent >= 0 and np.linalg.norm(rest[bone] - rest[bvh.names.index(bone_map[JOINT_NAMES[parent]])]) < 1e-6:
            # CMU's skeleton stacks joints at one point (LowerBack on Hips, Neck and the
            # shoulders on Spine1): such a joint takes the far end of its bone instead.
            if name.endswith("collar"):
                shoulder = bvh.names.index(bone_map[name.replace("collar", "shoulder")])
                joints[:, joint] = 0.5 * (world[:, bone] + world[:, shoulder])
            else:
                joints[:, joint] = world[:, children[bone][0]]
    spine1, spine2, spine3 = (JOINT_INDEX[n] for n in ("spine1", "spine2", "spine3"))
    if np.linalg.norm(joints[0, spine2] - joints[0, spine1]) < 1e-6:
        # spine1 moved up onto spine2's place: spine2 goes halfway up to spine3.
        joints[:, spine2] = 0.5 * (joints[:, spine1] + joints[:, spine3])
    return joints


def trials() -> list[dict]:
    """The converted trials with their segments (segments.json)."""
    return json.loads((FOLDER / "segments.json").read_text())["trials"]


def corpus_items(seed: int) -> list[dict]:
    """Clips cut from the trials' captioned segments, a few random shifts of each, for
    the training split (real motion helps the model generalize; the test split stays
    synthetic, with its held-out phrasings)."""
    items = []
    for trial in trials():
        joints = np.load(FOLDER / trial["file"]).astype(np.float64)
        for number, segment in enumerate(trial["segments"]):
            rng = np.random.default_rng([seed, number, len(items)])
            for copy in range(3):
                start = max(0, int(round(segment["start"] * FPS)) + int(rng.integers(-4, 5)))
                end = min(len(joints), int(round(segment["end"] * FPS)) + int(rng.integers(-4, 5)))
                clip = joints[start:end]
                items.append({"joints": clip.astype(np.float32), "features": features_from_joints(clip).astype(np.float32),
                              "captions": segment["captions"],
                              "actions": [{"action": segment["action"], "start": 0, "end": len(clip), "params": {}}],
                              "source": f"cmu:{trial['trial']}"})
    return items
