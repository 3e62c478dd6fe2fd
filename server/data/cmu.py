"""Real motion capture in the corpus: clips of CMU's Graphics Lab Motion Capture Database
(free for any use; "The data used in this project was obtained from mocap.cs.cmu.edu.
The database was created with funding from NSF EIA-0196217.").

`convert_asf_amc` brings CMU's own ASF/AMC files onto the SMPL-22 joints with an
explicit table of which point of CMU's skeleton each SMPL joint is, and
`convert_cmu_bvh` does the same for a BVH file of CMU's skeleton; both give 20 fps,
metres, Y up, the lowest joint over the clip on the floor (y = 0, where HumanML3D puts
it). `convert_bvh` reads any BVH through the retargeting code's bone mapping. The
converted trials live in server/data/cmu/ as small float16 .npy files, each with its
source, licence, split and captioned segments in segments.json (SOURCES.md says where
every file came from); `corpus_items` cuts them into clips for `motiongpt data synth`.
"""

import json
from pathlib import Path

import numpy as np

from retarget.formats.asf import forward_kinematics, read_amc, read_asf
from retarget.formats.bvh import bvh_world_positions, parse_bvh
from retarget.humanml3d import FPS, features_from_joints
from retarget.mapping import map_bones
from retarget.rig import rig_from_chain
from retarget.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS

FOLDER = Path(__file__).resolve().parent / "cmu"
CMU_UNIT = 0.056444  # metres per unit of CMU's BVH files ((1 / 0.45) inch)
AMC_FPS = 120  # CMU captured (and wrote its AMC files) at 120 frames per second

# Where each SMPL-22 joint sits on CMU's ASF skeleton: ("end", bone) is the far end of a
# bone (the start of its children), ("mid", bone) the middle of a bone. SMPL's joints
# are joint centres, so a limb joint is the end of the bone above it: the hip is where
# the femur starts (lhipjoint's end), the knee where the tibia starts, and so on. CMU's
# spine is six bones of 10-12 cm each from the root up; measured against HumanML3D's
# reference skeleton (pelvis to spine1 13 cm, to spine2 27, to spine3 33, to the neck
# 55, to the head 65), the ends of lowerback, upperback, thorax, lowerneck and upperneck
# (11, 23, 35, 45, 55 cm on subject 1) are the closest points for spine1, spine2,
# spine3, neck and head. SMPL's collar lies between the spine and the shoulder: the
# middle of CMU's clavicle, which runs from the top of the thorax to the shoulder.
ASF_TO_SMPL = {
    "pelvis": ("end", "root"),
    "left_hip": ("end", "lhipjoint"),
    "right_hip": ("end", "rhipjoint"),
    "spine1": ("end", "lowerback"),
    "left_knee": ("end", "lfemur"),
    "right_knee": ("end", "rfemur"),
    "spine2": ("end", "upperback"),
    "left_ankle": ("end", "ltibia"),
    "right_ankle": ("end", "rtibia"),
    "spine3": ("end", "thorax"),
    "left_foot": ("end", "lfoot"),
    "right_foot": ("end", "rfoot"),
    "neck": ("end", "lowerneck"),
    "left_collar": ("mid", "lclavicle"),
    "right_collar": ("mid", "rclavicle"),
    "head": ("end", "upperneck"),
    "left_shoulder": ("end", "lclavicle"),
    "right_shoulder": ("end", "rclavicle"),
    "left_elbow": ("end", "lhumerus"),
    "right_elbow": ("end", "rhumerus"),
    "left_wrist": ("end", "lradius"),
    "right_wrist": ("end", "rradius"),
}


def on_floor(joints: np.ndarray) -> np.ndarray:
    """The joints moved up or down so that the lowest joint over the whole clip is at
    y = 0: HumanML3D's floor (its processing subtracts the same minimum)."""
    joints = np.array(joints, dtype=np.float64)
    joints[..., 1] -= joints[..., 1].min()
    return joints


def convert_asf_amc(asf_path, amc_path) -> np.ndarray:
    """CMU ASF skeleton + AMC motion -> SMPL-22 joint positions (T, 22, 3) at 20 fps,
    metres, Y up (CMU's ASF axes are already Y up, +X the body's left when it faces
    +Z, like HumanML3D's), the lowest joint of the clip on the floor."""
    skeleton = read_asf(asf_path)
    motion = read_amc(amc_path, skeleton)
    # 120 fps -> 20 fps by keeping every 6th frame, as HumanML3D downsampled AMASS.
    step = AMC_FPS // FPS
    motion.frame_numbers = motion.frame_numbers[::step]
    motion.values = {name: values[::step] for name, values in motion.values.items()}
    positions, _ = forward_kinematics(skeleton, motion)
    positions *= skeleton.metres_per_unit()
    index = {name: k for k, name in enumerate(skeleton.names)}
    joints = np.empty((len(positions), len(JOINT_NAMES), 3))
    for joint, name in enumerate(JOINT_NAMES):
        where, bone = ASF_TO_SMPL[name]
        end = positions[:, index[bone]]
        if where == "mid":
            end = 0.5 * (end + positions[:, index[skeleton.parents[bone]]])
        joints[:, joint] = end
    return on_floor(joints)


def _frames_per_model_frame(bvh, path) -> int:
    """How many of the file's frames make one at the corpus's 20 fps (every k-th is kept)."""
    step = bvh.fps / FPS
    if abs(step - round(step)) > 1e-3:
        raise ValueError(f"{path}: {bvh.fps:g} fps is not a whole multiple of {FPS} fps")
    return int(round(step))


# CMU's BVH files (the conversions of its ASF/AMC files that circulate) keep the ASF
# skeleton with other names; a BVH joint sits at the start of its bone, which is the end
# of the ASF bone above it. So each ASF bone's end is this BVH joint.
CMU_BVH_JOINT_AT_END = {
    "root": "Hips", "lhipjoint": "LeftUpLeg", "rhipjoint": "RightUpLeg", "lfemur": "LeftLeg", "rfemur": "RightLeg",
    "ltibia": "LeftFoot", "rtibia": "RightFoot", "lfoot": "LeftToeBase", "rfoot": "RightToeBase",
    "lowerback": "Spine", "upperback": "Spine1", "thorax": "Neck", "lowerneck": "Neck1", "upperneck": "Head",
    "lclavicle": "LeftArm", "rclavicle": "RightArm", "lhumerus": "LeftForeArm", "rhumerus": "RightForeArm",
    "lradius": "LeftHand", "rradius": "RightHand",
}
# ... and the start of a clavicle (the middle of which is SMPL's collar) is this one.
CMU_BVH_CLAVICLE_START = {"lclavicle": "LeftShoulder", "rclavicle": "RightShoulder"}


def convert_cmu_bvh(path, unit: float = CMU_UNIT) -> np.ndarray:
    """A BVH file with CMU's skeleton and joint names (Hips, LHipJoint, LowerBack, Spine,
    Spine1, Neck, Neck1, Head, LeftShoulder, ...) -> SMPL-22 joints placed exactly as
    `convert_asf_amc` places them (ASF_TO_SMPL), 20 fps, metres, Y up, on the floor."""
    bvh = parse_bvh(Path(path).read_text())
    missing = sorted(set(CMU_BVH_JOINT_AT_END.values()) - set(bvh.names))
    if missing:
        raise ValueError(f"{path}: not CMU's BVH skeleton (no {', '.join(missing)})")
    step = _frames_per_model_frame(bvh, path)
    world, _ = bvh_world_positions(bvh)
    world = world[::step] * unit
    joints = np.empty((len(world), len(JOINT_NAMES), 3))
    for joint, name in enumerate(JOINT_NAMES):
        where, bone = ASF_TO_SMPL[name]
        end = world[:, bvh.names.index(CMU_BVH_JOINT_AT_END[bone])]
        if where == "mid":
            end = 0.5 * (end + world[:, bvh.names.index(CMU_BVH_CLAVICLE_START[bone])])
        joints[:, joint] = end
    return on_floor(joints)


# Character Creator's rig (CC_Base_*), on which DragonForgedTheArtist/IClone-CMU-Mocap
# holds CMU's trials (retargeted through HumanIK onto iClone's male motion dummy, 60 fps,
# centimetres). Its rest offsets are in each bone's own axes, so joints are placed from
# the animated world positions only: each SMPL joint is a CC joint, or a point on the
# segment between two CC joints at a fraction measured on the dummy standing (heights
# over the hip joints: CC Waist 9.5 cm, Spine01 13.6, Spine02 27.9, NeckTwist01 54.8;
# HumanML3D's reference skeleton: pelvis 8.4, spine1 21.6, spine2 35.9, spine3 41.6).
# Both ends of each segment move with one bone, so the point stays on that bone.
CC_TO_SMPL = {
    "pelvis": ("Hip", "Waist", 0.8),
    "left_hip": ("L_Thigh",), "right_hip": ("R_Thigh",),
    "spine1": ("Spine01", "Spine02", 0.55),
    "left_knee": ("L_Calf",), "right_knee": ("R_Calf",),
    "spine2": ("Spine02", "NeckTwist01", 0.3),
    "left_ankle": ("L_Foot",), "right_ankle": ("R_Foot",),
    "spine3": ("Spine02", "NeckTwist01", 0.5),
    "left_foot": ("L_ToeBase",), "right_foot": ("R_ToeBase",),
    "neck": ("NeckTwist02",),
    "left_collar": ("L_Clavicle",), "right_collar": ("R_Clavicle",),
    "head": ("Head",),
    "left_shoulder": ("L_Upperarm",), "right_shoulder": ("R_Upperarm",),
    "left_elbow": ("L_Forearm",), "right_elbow": ("R_Forearm",),
    "left_wrist": ("L_Hand",), "right_wrist": ("R_Hand",),
}
# SMPL's bones that end at these joints span two of the rig's bones, so they stretch by
# up to 2 cm as the back bends (the others are one rigid CC bone each).
CC_STRETCHING_BONES = ("spine1", "spine2", "neck")
CC_UNIT = 0.01  # Character Creator writes centimetres


def convert_cc_bvh(path, unit: float = CC_UNIT) -> np.ndarray:
    """A BVH file on Character Creator's rig (CC_Base_Hip, CC_Base_L_Thigh, ...) ->
    SMPL-22 joints (CC_TO_SMPL), 20 fps, metres, Y up (the rig faces +Z with its left
    at +X, as HumanML3D), the lowest joint of the clip on the floor."""
    bvh = parse_bvh(Path(path).read_text())
    needed = sorted({f"CC_Base_{name}" for spec in CC_TO_SMPL.values() for name in spec if isinstance(name, str)})
    missing = [name for name in needed if name not in bvh.names]
    if missing:
        raise ValueError(f"{path}: not a Character Creator rig (no {', '.join(missing)})")
    step = _frames_per_model_frame(bvh, path)
    world, _ = bvh_world_positions(bvh)
    if len(world) > 1 and np.linalg.norm(world[1, 0] - world[0, 0]) * unit > 0.5:
        # The repository's later imports begin with the subject's T-pose at the origin
        # (its fixing script prepends one); no body moves half a metre in 1/60 s.
        world = world[1:]
    world = world[::step] * unit

    def at(name):
        return world[:, bvh.names.index(f"CC_Base_{name}")]

    joints = np.empty((len(world), len(JOINT_NAMES), 3))
    for joint, name in enumerate(JOINT_NAMES):
        spec = CC_TO_SMPL[name]
        joints[:, joint] = at(spec[0]) if len(spec) == 1 else (1 - spec[2]) * at(spec[0]) + spec[2] * at(spec[1])
    return on_floor(joints)


def convert_bvh(path, unit: float = CMU_UNIT) -> np.ndarray:
    """A BVH file -> SMPL-22 joint positions (T, 22, 3) at 20 fps, metres, Y up, where
    the file puts them (not moved onto the floor: pass the result to `on_floor` for the
    corpus). For CMU's own skeleton `convert_cmu_bvh` places the joints as
    `convert_asf_amc` does."""
    bvh = parse_bvh(Path(path).read_text())
    world, _ = bvh_world_positions(bvh)
    rest = np.zeros((len(bvh.names), 3))
    for joint, parent in enumerate(bvh.parents):
        rest[joint] = bvh.offsets[joint] + (rest[parent] if parent >= 0 else 0.0)
    # The mapper reads rigs as Blender stores them (Z up): ours (x, y, z) is (x, -z, y) there.
    rig = rig_from_chain(bvh.names, bvh.parents, np.stack([rest[:, 0], -rest[:, 2], rest[:, 1]], axis=-1))
    bone_map = map_bones(rig)
    step = _frames_per_model_frame(bvh, path)
    world = world[::step] * unit
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
    """Clips cut from the trials' captioned segments. A training trial gives three copies
    of each segment with its ends shifted at random by up to 4 frames (real motion helps
    the model generalize); a test trial (held out for evaluation) gives each segment once,
    unshifted. Each item carries its trial's split. Every clip is put on the floor on its
    own, as HumanML3D processed each of its clips: its lowest joint at y = 0."""
    items = []
    for trial in trials():
        joints = np.load(FOLDER / trial["file"]).astype(np.float64)
        split = trial.get("split", "train")
        if split not in ("train", "test"):
            raise ValueError(f"{FOLDER / 'segments.json'}: trial {trial['trial']} has split {split!r} (train or test)")
        for number, segment in enumerate(trial["segments"]):
            rng = np.random.default_rng([seed, number, len(items)])
            for copy in range(3 if split == "train" else 1):
                shift = rng.integers(-4, 5, size=2) if split == "train" else (0, 0)
                start = max(0, int(round(segment["start"] * FPS)) + int(shift[0]))
                end = min(len(joints), int(round(segment["end"] * FPS)) + int(shift[1]))
                clip = on_floor(joints[start:end])
                items.append({"joints": clip.astype(np.float32), "features": features_from_joints(clip).astype(np.float32),
                              "captions": segment["captions"], "split": split,
                              "actions": [{"action": segment["action"], "start": 0, "end": len(clip), "params": {}}],
                              "source": f"cmu:{trial['trial']}"})
    return items
