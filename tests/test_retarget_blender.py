"""Retargeting on real armatures in real Blender.

One Blender process builds the rigs (Mixamo names in T- and A-pose, UE5 names with
twist and IK bones, VRoid/VRM names, a rig with meaningless names that only the
structural fallback can map, Rigify's human metarig, and a rig imported from a BVH
file by Blender's own importer), retargets motions onto them with the extension's own
modules, keys them, and lets Blender evaluate every frame. The tests compare what
Blender shows with the source motion.
"""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from retarget.formats import read_motion, write_motion
from retarget.motion import Motion
from retarget.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS
from retarget.transfer import foot_skating
from harness import extension as addon_build
from harness.blender import run_in_blender
from harness.motions import smooth_random_motion
from harness.rigs import BUILD_CODE, humanoid, to_blender, to_json

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"

# CMU / Mixamo-style BVH names for the SMPL-22 joints (what a BVH from a mocap library uses).
BVH_NAMES = {
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "LowerBack",
    "left_knee": "LeftLeg", "right_knee": "RightLeg", "spine2": "Spine", "left_ankle": "LeftFoot",
    "right_ankle": "RightFoot", "spine3": "Spine1", "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
    "neck": "Neck", "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head",
    "left_shoulder": "LeftArm", "right_shoulder": "RightArm", "left_elbow": "LeftForeArm",
    "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
}
METARIG_MAP = {
    "pelvis": "spine", "left_hip": "thigh.L", "right_hip": "thigh.R", "spine1": "spine.001",
    "left_knee": "shin.L", "right_knee": "shin.R", "spine2": "spine.002", "left_ankle": "foot.L",
    "right_ankle": "foot.R", "spine3": "spine.003", "left_foot": "toe.L", "right_foot": "toe.R",
    "neck": "spine.004", "left_collar": "shoulder.L", "right_collar": "shoulder.R", "head": "spine.006",
    "left_shoulder": "upper_arm.L", "right_shoulder": "upper_arm.R", "left_elbow": "forearm.L",
    "right_elbow": "forearm.R", "left_wrist": "hand.L", "right_wrist": "hand.R",
}
_SIDES = ("left", "right")


def expected_named(convention, spines=3, necks=1):
    """The map a rig built by harness.rigs.humanoid should get."""
    table = {
        "mixamo": lambda role, side: "mixamorig:" + {
            "hip": "{S}UpLeg", "knee": "{S}Leg", "ankle": "{S}Foot", "foot": "{S}ToeBase", "collar": "{S}Shoulder",
            "shoulder": "{S}Arm", "elbow": "{S}ForeArm", "wrist": "{S}Hand"}[role].format(S=side.capitalize()),
        "ue5": lambda role, side: {
            "hip": "thigh_{s}", "knee": "calf_{s}", "ankle": "foot_{s}", "foot": "ball_{s}", "collar": "clavicle_{s}",
            "shoulder": "upperarm_{s}", "elbow": "lowerarm_{s}", "wrist": "hand_{s}"}[role].format(s=side[0]),
        "vrm": lambda role, side: "J_Bip_{S}_".format(S=side[0].upper()) + {
            "hip": "UpperLeg", "knee": "LowerLeg", "ankle": "Foot", "foot": "ToeBase", "collar": "Shoulder",
            "shoulder": "UpperArm", "elbow": "LowerArm", "wrist": "Hand"}[role],
    }[convention]
    out = {f"{side}_{role}": table(role, side) for side in _SIDES
           for role in ("hip", "knee", "ankle", "foot", "collar", "shoulder", "elbow", "wrist")}
    out.update({
        "mixamo": {"pelvis": "mixamorig:Hips", "spine1": "mixamorig:Spine", "spine2": "mixamorig:Spine1",
                   "spine3": "mixamorig:Spine2", "neck": "mixamorig:Neck", "head": "mixamorig:Head"},
        "ue5": {"pelvis": "pelvis", "spine1": "spine_01", "spine2": "spine_03", "spine3": "spine_05",
                "neck": "neck_01", "head": "head"},
        "vrm": {"pelvis": "J_Bip_C_Hips", "spine1": "J_Bip_C_Spine", "spine2": "J_Bip_C_Chest",
                "spine3": "J_Bip_C_UpperChest", "neck": "J_Bip_C_Neck", "head": "J_Bip_C_Head"},
    }[convention])
    return out


class Unusual:
    """Bone names that say nothing ("n07", "n12", ...), remembering which is which."""

    def __init__(self):
        self.roles = {}
        self.counter = itertools.count()

    def __call__(self, role, side, **extra):
        name = f"n{next(self.counter):02d}"
        key = (role, side, extra.get("i"), extra.get("finger"), extra.get("k"), extra.get("part"))
        self.roles[key] = name
        return name

    def expected(self, spines, necks):
        pick = {3: (0, 1, 2), 6: (0, 2, 5)}[spines]
        out = {"pelvis": self.roles[("pelvis", None, None, None, None, None)],
               "head": self.roles[("head", None, None, None, None, None)],
               "neck": self.roles[("neck", None, 0, None, None, None)]}
        out.update({f"spine{k + 1}": self.roles[("spine", None, i, None, None, None)] for k, i in enumerate(pick)})
        for side in _SIDES:
            for role, smpl in (("hip", "hip"), ("knee", "knee"), ("ankle", "ankle"), ("toe", "foot"),
                               ("collar", "collar"), ("shoulder", "shoulder"), ("elbow", "elbow"), ("wrist", "wrist")):
                out[f"{side}_{smpl}"] = self.roles[(role, side, None, None, None, None)]
        return out


def _save_motion(path, motion):
    np.savez(path, rotations=motion.rotations, root=motion.root_translation, fps=motion.fps, offsets=motion.offsets)
    return str(path)


def clip_motion():
    """HumanML3D clip 012314 (a person walking), as the model's output format."""
    return read_motion(DATA / "hml3d_012314_features.npy", "hml3d")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retarget")
    stage = tmp / "stage"
    stage.mkdir()
    addon_build.stage_extension(stage / "motiongpt")

    rotations, root = smooth_random_motion(frames=40, seed=4, amplitude=0.4, turn_degrees=120, walk_speed=1.2)
    wiggle = Motion.from_rotations(rotations, root)
    clip = clip_motion()
    bvh_path = tmp / "clip_cmu.bvh"
    write_motion(clip, bvh_path, "bvh")
    text = bvh_path.read_text()
    for smpl, cmu in BVH_NAMES.items():
        text = text.replace(f"JOINT {smpl}\n", f"JOINT {cmu}\n").replace(f"ROOT {smpl}\n", f"ROOT {cmu}\n")
    bvh_path.write_text(text)

    unusual, unusual6 = Unusual(), Unusual()
    rigs = [
        dict(name="mixamo_T", bones=humanoid("mixamo", pose="T", seed=1), motion="wiggle", round_trip=True),
        dict(name="mixamo_A", bones=humanoid("mixamo", pose="A", seed=1), motion="wiggle", round_trip=True),
        dict(name="ue5", bones=humanoid("ue5", spines=5, necks=2, twists=True, extras=True, seed=2), motion="wiggle"),
        dict(name="vrm", bones=humanoid("vrm", pose="A", seed=3), motion="wiggle"),
        dict(name="unusual", bones=humanoid(names=unusual, pose="A", twists=True, extras=True, seed=5),
             motion="wiggle", round_trip=True),
        dict(name="unusual6", bones=humanoid(names=unusual6, pose="A", spines=6, necks=3, seed=6), motion="wiggle"),
        dict(name="metarig", metarig=True, motion="clip", foot_lock=[False, True], round_trip=True),
        dict(name="bvh", bvh=str(bvh_path), motion="clip", round_trip=True),
        dict(name="rigify_generated", metarig=True, generate=True, motion="wiggle"),
    ]
    for job in rigs:
        if "bones" in job:
            job["bones"] = json.loads(to_json(job["bones"]))
    jobs = {"motions": {"wiggle": _save_motion(tmp / "wiggle.npz", wiggle), "clip": _save_motion(tmp / "clip.npz", clip)},
            "rigs": rigs}
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    script = BUILD_CODE + (REPO / "tests" / "blender" / "retarget_scene.py").read_text()
    results = run_in_blender(script, str(stage), str(tmp / "jobs.json"), timeout=600)
    results["_motions"] = {"wiggle": wiggle, "clip": clip}
    results["_expected"] = {"unusual": unusual.expected(3, 1), "unusual6": unusual6.expected(6, 3)}
    return results


def _positions_error_cm(result, motion):
    """Largest distance (cm) between a rig's mapped joints and the source's, per joint."""
    heads = np.array(result["free"]["heads"])
    errors = {}
    for k, joint in enumerate(result["free"]["joints"]):
        source = to_blender(motion.positions[:, JOINT_INDEX[joint]])
        errors[joint] = 100 * float(np.linalg.norm(heads[:, k] - source, axis=-1).max())
    return errors


@pytest.mark.parametrize("rig,convention", [("mixamo_T", "mixamo"), ("mixamo_A", "mixamo"), ("ue5", "ue5"),
                                            ("vrm", "vrm")])
def test_named_rigs_are_mapped_by_their_names(scene, rig, convention):
    expected = expected_named(convention)
    assert scene[rig]["bone_map"] == {j: expected[j] for j in JOINT_NAMES}


def test_metarig_and_bvh_rig_are_mapped(scene):
    assert scene["metarig"]["bone_map"] == METARIG_MAP
    assert scene["bvh"]["bone_map"] == {j: BVH_NAMES[j] for j in JOINT_NAMES}


@pytest.mark.parametrize("rig", ["unusual", "unusual6"])
def test_rig_with_meaningless_names_is_mapped_by_its_shape(scene, rig):
    expected = scene["_expected"][rig]
    assert scene[rig]["bone_map"] == {j: expected[j] for j in JOINT_NAMES}


def test_map_is_stored_on_the_armature_as_json(scene):
    for rig in ("mixamo_T", "metarig", "unusual"):
        assert scene[rig]["stored"] == scene[rig]["bone_map"]


@pytest.mark.parametrize("rig", ["mixamo_T", "mixamo_A", "vrm", "unusual"])
def test_same_proportions_match_the_source_within_a_centimetre(scene, rig):
    errors = _positions_error_cm(scene[rig], scene["_motions"]["wiggle"])
    print(f"{rig}: largest joint error {max(errors.values()):.4f} cm")
    assert len(errors) == 22
    assert max(errors.values()) < 1.0, errors


def test_a_pose_and_t_pose_versions_give_the_same_motion(scene):
    a, t = scene["mixamo_A"]["free"], scene["mixamo_T"]["free"]
    assert a["joints"] == t["joints"]
    heads = np.abs(np.array(a["heads"]) - np.array(t["heads"])).max()
    tails = np.abs(np.array(a["tails"]) - np.array(t["tails"])).max()
    print(f"A-pose vs T-pose: heads differ by {1000 * heads:.4f} mm, tails by {1000 * tails:.4f} mm")
    assert heads < 1e-4 and tails < 1e-4


def _angle_degrees(a, b):
    return np.degrees(2 * np.arccos(np.clip(np.abs(np.sum(a * b, axis=-1)), 0.0, 1.0)))


@pytest.mark.parametrize("rig,motion", [("mixamo_T", "wiggle"), ("mixamo_A", "wiggle"), ("unusual", "wiggle"),
                                        ("metarig", "clip"), ("bvh", "clip")])
def test_round_trip_returns_the_rotations(scene, rig, motion):
    source = scene["_motions"][motion]
    back = np.array(scene[rig]["round_trip"]["rotations"])
    error = _angle_degrees(back, source.rotations).max()
    position_error = np.abs(np.array(scene[rig]["round_trip"]["positions"]) - source.positions).max()
    print(f"{rig}: round trip SMPL -> rig -> SMPL: rotations within {error:.5f} deg, positions {100 * position_error:.5f} cm")
    assert error < 0.05
    assert position_error < 1e-3


def test_rigify_metarig_limbs_follow_the_source_directions(scene):
    """The metarig has other proportions: its limbs point where the source's point."""
    result, clip = scene["metarig"]["free"], scene["_motions"]["clip"]
    heads = np.array(result["heads"])
    slot = {j: k for k, j in enumerate(result["joints"])}
    worst = 0.0
    for joint in ("left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot", "right_foot", "left_elbow",
                  "right_elbow", "left_wrist", "right_wrist", "head", "spine2", "spine3"):
        parent = JOINT_NAMES[PARENTS[JOINT_INDEX[joint]]]
        rig_dir = heads[:, slot[joint]] - heads[:, slot[parent]]
        src_dir = to_blender(clip.positions[:, JOINT_INDEX[joint]] - clip.positions[:, JOINT_INDEX[parent]])
        cos = np.sum(rig_dir * src_dir, -1) / np.linalg.norm(rig_dir, axis=-1) / np.linalg.norm(src_dir, axis=-1)
        worst = max(worst, float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max()))
    print(f"metarig: limb directions within {worst:.4f} deg of the source")
    assert worst < 0.5


def test_metarig_feet_reach_the_floor(scene):
    result, clip = scene["metarig"]["free"], scene["_motions"]["clip"]
    heads = np.array(result["heads"])
    slot = {j: k for k, j in enumerate(result["joints"])}
    toes = heads[:, [slot["left_foot"], slot["right_foot"]], 2].min()
    # The metarig stands on its origin with its toe joints 1.7 cm up; the clip touches 0.
    print(f"metarig: lowest toe joint {100 * toes:.2f} cm above the floor (source {100 * clip.positions[:, [10, 11], 1].min():.2f} cm)")
    assert -0.01 < toes < 0.04


def test_foot_locking_reduces_foot_skating(scene):
    result = scene["metarig"]
    contacts = np.array(result["contacts"])
    slot = {j: k for k, j in enumerate(result["free"]["joints"])}
    ankles = [slot["left_ankle"], slot["right_ankle"]]
    speeds = {}
    for key in ("free", "locked"):
        heads = np.array(result[key]["heads"])[:, ankles]
        speeds[key] = foot_skating(heads, contacts, 20.0, up=[0, 0, 1])
    print(f"metarig, HumanML3D clip 012314: planted-foot speed {100 * speeds['free']:.2f} cm/s without foot locking, "
          f"{100 * speeds['locked']:.2f} cm/s with")
    assert contacts.any(axis=0).all()
    assert speeds["locked"] < 0.5 * speeds["free"]
    # Locking moves only the legs: the rest of the body is where it was.
    free, locked = np.array(result["free"]["heads"]), np.array(result["locked"]["heads"])
    upper = [slot[j] for j in ("pelvis", "head", "left_wrist", "right_wrist", "spine3")]
    assert np.abs(free[:, upper] - locked[:, upper]).max() < 1e-5


def test_bvh_rig_matches_blenders_own_import(scene):
    """Retargeting the clip onto the rig Blender imported from the clip's BVH gives
    what Blender's importer itself shows, and reading the importer's action back gives
    the clip's joints."""
    result, clip = scene["bvh"], scene["_motions"]["clip"]
    heads = np.array(result["free"]["heads"])
    worst = 0.0
    for k, joint in enumerate(result["free"]["joints"]):
        imported = np.array(result["importer_heads"][BVH_NAMES[joint]])
        worst = max(worst, float(np.linalg.norm(heads[:, k] - imported, axis=-1).max()))
    read_back = np.abs(np.array(result["importer_read_back_positions"]) - clip.positions).max()
    print(f"BVH rig: retargeted joints within {100 * worst:.4f} cm of Blender's import; "
          f"importer's action read back within {100 * read_back:.4f} cm")
    assert worst < 0.01
    assert read_back < 0.01


def test_keys_follow_each_bones_rotation_mode(scene):
    """Quaternion bones get 4 channels; the BVH importer's Euler bones keep their Euler
    order and get 3 (their motion matching Blender's import is checked above)."""
    result = scene["mixamo_T"]["free"]
    assert result["rotation_modes"] == ["QUATERNION"]
    assert result["fcurves"] == 4 * 22 + 3
    euler = scene["bvh"]["free"]
    assert euler["rotation_modes"] and "QUATERNION" not in euler["rotation_modes"]
    assert euler["fcurves"] == 3 * 22 + 3


def test_generated_rigify_rig_is_refused_with_a_reason(scene):
    """Rigify's generated rig moves through constraints from its controls; keys on its
    DEF- bones would do nothing, so it is refused with a message saying so."""
    assert "generated Rigify rig" in scene["rigify_generated"]["error"]
    assert "not supported yet" in scene["rigify_generated"]["error"]
