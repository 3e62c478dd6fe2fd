"""Bone mapping and retargeting in numpy (the Blender-side checks are in
test_retarget_blender.py)."""

import itertools

import numpy as np
import pytest

from retarget.mapping import MappingError, map_bones, name_words, split_side, validate_bone_map
from retarget.motion import Motion
from retarget.rig import Rig
from retarget.skeleton import JOINT_INDEX, JOINT_NAMES
from retarget.transfer import (
    Pose,
    bind,
    foot_contacts,
    foot_skating,
    joint_heads,
    motion_from_pose,
    pose_from_matrices,
    pose_from_motion,
    retarget,
)
from retarget.rotation import quat_to_matrix
from harness.motions import smooth_random_motion
from harness.rigs import as_rig, humanoid, to_blender


@pytest.fixture(scope="module")
def wiggle():
    rotations, root = smooth_random_motion(frames=50, seed=11, amplitude=0.45, turn_degrees=200, walk_speed=1.3)
    return Motion.from_rotations(rotations, root)


def _rename(rig, names):
    return Rig(names, rig.parents, rig.heads, rig.tails, rig.matrices, rig.deform)


def _max_error(rig, bone_map, pose, positions, transform=to_blender):
    heads = joint_heads(rig, bone_map, pose)
    return max(np.linalg.norm(heads[j] - transform(positions[:, JOINT_INDEX[j]]), axis=-1).max() for j in heads)


@pytest.mark.parametrize("name,side,words", [
    ("mixamorig:LeftUpLeg", "left", ["up", "leg"]),
    ("mixamorig1:RightForeArm", "right", ["fore", "arm"]),
    ("thigh.L", "left", ["thigh"]),
    ("DEF-upper_arm.R.001", "right", ["def", "upper", "arm", "1"]),
    ("upperarm_twist_01_l", "left", ["upperarm", "twist", "1"]),
    ("lThighBend", "left", ["thigh", "bend"]),
    ("CC_Base_L_Thigh", "left", ["cc", "base", "thigh"]),
    ("J_Bip_R_UpperLeg", "right", ["j", "bip", "upper", "leg"]),
    ("m_avg_L_Hip", "left", ["m", "avg", "hip"]),
    ("Bip01 R Calf", "right", ["bip", "1", "calf"]),
    ("LHipJoint", "left", ["hip", "joint"]),
    ("leftUpperArm", "left", ["upper", "arm"]),
    ("Spine2", None, ["spine", "2"]),
])
def test_names_split_into_side_and_words(name, side, words):
    assert split_side(name_words(name)) == (side, words)


# Rigs that differ only in their bone names: each convention's names for the same body.
CONVENTION_NAMES = {
    "smpl": dict(pelvis="Pelvis", spine=("Spine1", "Spine2", "Spine3"), neck="Neck", head="Head",
                 side=lambda s, r: f"{s[0].upper()}_" + {"collar": "Collar", "shoulder": "Shoulder", "elbow": "Elbow",
                                                        "wrist": "Wrist", "hip": "Hip", "knee": "Knee", "ankle": "Ankle",
                                                        "toe": "Foot"}[r]),
    "smpl-x": dict(pelvis="pelvis", spine=("spine1", "spine2", "spine3"), neck="neck", head="head",
                   side=lambda s, r: f"{s}_" + {"collar": "collar", "shoulder": "shoulder", "elbow": "elbow",
                                                "wrist": "wrist", "hip": "hip", "knee": "knee", "ankle": "ankle",
                                                "toe": "foot"}[r]),
    "character creator": dict(
        pelvis="CC_Base_Hip", spine=("CC_Base_Waist", "CC_Base_Spine01", "CC_Base_Spine02"),
        neck="CC_Base_NeckTwist01", head="CC_Base_Head",
        side=lambda s, r: f"CC_Base_{s[0].upper()}_" + {"collar": "Clavicle", "shoulder": "Upperarm",
                                                       "elbow": "Forearm", "wrist": "Hand", "hip": "Thigh",
                                                       "knee": "Calf", "ankle": "Foot", "toe": "ToeBase"}[r]),
    "daz": dict(pelvis="hip", spine=("abdomenLower", "abdomenUpper", "chestUpper"), neck="neckLower", head="head",
                side=lambda s, r: s[0] + {"collar": "Collar", "shoulder": "ShldrBend", "elbow": "ForearmBend",
                                          "wrist": "Hand", "hip": "ThighBend", "knee": "Shin", "ankle": "Foot",
                                          "toe": "Toe"}[r]),
    "vrm humanoid": dict(pelvis="hips", spine=("spine", "chest", "upperChest"), neck="neck", head="head",
                         side=lambda s, r: s + {"collar": "Shoulder", "shoulder": "UpperArm", "elbow": "LowerArm",
                                                "wrist": "Hand", "hip": "UpperLeg", "knee": "LowerLeg",
                                                "ankle": "Foot", "toe": "Toes"}[r]),
    "3ds max biped": dict(pelvis="Bip01 Pelvis", spine=("Bip01 Spine", "Bip01 Spine1", "Bip01 Spine2"),
                          neck="Bip01 Neck", head="Bip01 Head",
                          side=lambda s, r: f"Bip01 {s[0].upper()} " + {"collar": "Clavicle", "shoulder": "UpperArm",
                                                                       "elbow": "Forearm", "wrist": "Hand",
                                                                       "hip": "Thigh", "knee": "Calf", "ankle": "Foot",
                                                                       "toe": "Toe0"}[r]),
    "unreal (UE4)": dict(pelvis="pelvis", spine=("spine_01", "spine_02", "spine_03"), neck="neck_01", head="head",
                         side=lambda s, r: {"collar": "clavicle", "shoulder": "upperarm", "elbow": "lowerarm",
                                            "wrist": "hand", "hip": "thigh", "knee": "calf", "ankle": "foot",
                                            "toe": "ball"}[r] + f"_{s[0]}"),
    "mixamo, other separators": dict(pelvis="Armature|mixamorig_Hips", spine=("mixamorig_Spine", "mixamorig_Spine1",
                                                                            "mixamorig_Spine2"),
                                     neck="mixamorig_Neck", head="mixamorig_Head",
                                     side=lambda s, r: "mixamorig_" + s.capitalize() + {
                                         "collar": "Shoulder", "shoulder": "Arm", "elbow": "ForeArm", "wrist": "Hand",
                                         "hip": "UpLeg", "knee": "Leg", "ankle": "Foot", "toe": "ToeBase"}[r]),
}


def _named_rig(convention):
    spec = CONVENTION_NAMES[convention]
    roles = {}
    counter = itertools.count()

    def names(role, side, **extra):
        if role == "pelvis":
            name = spec["pelvis"]
        elif role == "spine":
            name = spec["spine"][extra["i"]]
        elif role in ("neck", "head"):
            name = spec[role]
        elif role in ("collar", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "toe"):
            name = spec["side"](side, role)
        else:
            name = f"extra{next(counter)}"
        roles[(role, side)] = name
        return name

    rig = as_rig(humanoid(names=names, pose="A", seed=9))
    return rig, roles


@pytest.mark.parametrize("convention", list(CONVENTION_NAMES))
def test_conventions_are_mapped_by_name(convention):
    rig, roles = _named_rig(convention)
    bone_map = map_bones(rig)
    expected = {"pelvis": roles[("pelvis", None)], "neck": roles[("neck", None)], "head": roles[("head", None)]}
    expected.update({f"spine{k + 1}": CONVENTION_NAMES[convention]["spine"][k] for k in range(3)})
    for side in ("left", "right"):
        for role in ("collar", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            expected[f"{side}_{role}"] = roles[(role, side)]
        expected[f"{side}_foot"] = roles[("toe", side)]
    assert bone_map == {j: expected[j] for j in JOINT_NAMES}


@pytest.mark.parametrize("spines,necks", [(s, n) for s in range(1, 7) for n in (1, 2, 3)])
def test_spines_of_one_to_six_segments_and_necks_of_one_to_three(spines, necks, wiggle):
    rig = as_rig(humanoid(names=lambda role, side, **e: f"b{next(_COUNT)}",
                          spines=spines, necks=necks, pose="A", seed=spines))
    bone_map = map_bones(rig)
    mapped_spine = [j for j in ("spine1", "spine2", "spine3") if j in bone_map]
    assert mapped_spine == {1: ["spine3"], 2: ["spine1", "spine3"]}.get(spines, ["spine1", "spine2", "spine3"])
    assert {"neck", "head"} <= set(bone_map)
    # Whatever the spine, the legs land where the source's are.
    pose = pose_from_motion(wiggle, rig, bone_map)
    heads = joint_heads(rig, bone_map, pose)
    for joint in ("left_ankle", "right_knee", "left_foot"):
        assert np.abs(heads[joint] - to_blender(wiggle.positions[:, JOINT_INDEX[joint]])).max() < 1e-6


_COUNT = itertools.count()


def test_unmappable_rig_names_what_is_missing():
    bones = [b for b in humanoid("mixamo", seed=1) if "Left" not in b["name"] or "Leg" not in b["name"] and
             "Foot" not in b["name"] and "Toe" not in b["name"]]
    # A rig without a left leg.
    rig = as_rig(bones)
    with pytest.raises(MappingError, match="left_hip, left_knee, left_ankle"):
        map_bones(rig)


def test_a_chain_of_bones_is_not_a_humanoid():
    heads = np.array([[0, 0, z] for z in np.linspace(0, 1, 5)], dtype=float)
    rig = Rig(tuple(f"b{i}" for i in range(5)), np.arange(-1, 4), heads, heads + [0, 0, 0.25],
              np.tile(np.eye(3), (5, 1, 1)))
    with pytest.raises(MappingError, match="pelvis"):
        map_bones(rig)


def test_edited_maps_are_checked():
    rig = as_rig(humanoid("mixamo", seed=1))
    good = map_bones(rig)
    assert validate_bone_map(rig, good) == good
    with pytest.raises(MappingError, match="unknown SMPL joints.*tail"):
        validate_bone_map(rig, dict(good, tail="mixamorig:Hips"))
    with pytest.raises(MappingError, match="does not have: left_wrist -> Hand.L"):
        validate_bone_map(rig, dict(good, left_wrist="Hand.L"))
    with pytest.raises(MappingError, match="mapped twice"):
        validate_bone_map(rig, dict(good, right_wrist=good["left_wrist"]))
    with pytest.raises(MappingError, match="no bone for left_elbow"):
        validate_bone_map(rig, {j: b for j, b in good.items() if j != "left_elbow"})
    with pytest.raises(MappingError, match="not below the bone of their parent joint: left_knee"):
        validate_bone_map(rig, dict(good, left_knee=good["right_knee"], right_knee=good["left_knee"]))
    # Optional joints may be left out: the bones stay in rest.
    partial = {j: b for j, b in good.items() if j not in ("spine2", "neck", "left_collar", "left_foot")}
    assert validate_bone_map(rig, partial) == partial


def test_missing_optional_joints_are_tolerated(wiggle):
    rig = as_rig(humanoid("mixamo", seed=1))
    bone_map = {j: b for j, b in map_bones(rig).items() if j not in ("spine2", "neck", "left_collar", "right_foot")}
    pose = pose_from_motion(wiggle, rig, bone_map)
    assert len(pose.bones) == 18
    heads = joint_heads(rig, bone_map, pose)
    # Legs hang from the pelvis, untouched by the spine: still exact.
    assert np.abs(heads["left_ankle"] - to_blender(wiggle.positions[:, JOINT_INDEX["left_ankle"]])).max() < 1e-6
    back = motion_from_pose(rig, bone_map, pose)
    assert np.all(np.isfinite(back.positions))


def test_y_up_armature_space_and_a_scaled_rig(wiggle):
    """An FBX-style armature (Y up in armature space, facing +Z) twice the size: the
    motion comes out scaled by the leg ratio in that armature's own axes."""
    bones = humanoid("mixamo", pose="A", seed=3, scale=2.0)
    # Blender (x, y, z) -> Y-up armature space (x, z, -y): the body faces +Z.
    for bone in bones:
        for key in ("head", "tail"):
            x, y, z = bone[key]
            bone[key] = np.array([x, z, -y])
    # Rolls describe the old axes; rebuild matrices by turning them with the body.
    turn = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    base = as_rig(humanoid("mixamo", pose="A", seed=3, scale=2.0))
    rig = Rig(base.names, base.parents, np.array([b["head"] for b in bones]), np.array([b["tail"] for b in bones]),
              turn @ base.matrices)
    bone_map = map_bones(rig)
    binding = bind(rig, bone_map)
    assert np.allclose(binding.frame, np.eye(3))  # ours is Y up, facing +Z, too
    assert abs(binding.scale - 2.0) < 1e-9
    pose = pose_from_motion(wiggle, rig, bone_map)
    assert _max_error(rig, bone_map, pose, wiggle.positions, transform=lambda p: 2.0 * p) < 1e-6
    back = motion_from_pose(rig, bone_map, pose)
    assert np.abs(back.positions - wiggle.positions).max() < 1e-6


def test_other_proportions_keep_directions_and_floor(wiggle):
    rig = as_rig(humanoid("vrm", seed=2, stretch={"left_knee": 1.2, "right_knee": 1.2, "left_elbow": 0.8,
                                                   "right_elbow": 0.8, "spine2": 1.3}))
    bone_map = map_bones(rig)
    binding, world, pelvis, _ = retarget(wiggle, rig, bone_map)
    heads = binding.heads(world, pelvis)
    for joint, parent in (("left_knee", "left_hip"), ("left_ankle", "left_knee"), ("right_wrist", "right_elbow")):
        a = heads[:, binding.slot[JOINT_INDEX[joint]]] - heads[:, binding.slot[JOINT_INDEX[parent]]]
        b = to_blender(wiggle.positions[:, JOINT_INDEX[joint]] - wiggle.positions[:, JOINT_INDEX[parent]])
        cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert cos.min() > 1 - 1e-9
    # Root motion is scaled by the leg ratio (thighs 1.2x: legs about 1.1x).
    leg = (1.2 * 0.393623 + 0.432433) / (0.393623 + 0.432433)
    assert abs(binding.scale - leg) < 0.01
    travel = np.linalg.norm(np.diff(pelvis[:, :2], axis=0), axis=-1).sum()
    source = np.linalg.norm(np.diff(wiggle.positions[:, 0, [0, 2]], axis=0), axis=-1).sum()
    assert abs(travel / source - binding.scale) < 1e-9


def test_pose_from_matrices_reads_back_the_channels(wiggle):
    rig = as_rig(humanoid("ue5", spines=5, necks=2, twists=True, extras=True, seed=7))
    bone_map = map_bones(rig)
    pose = pose_from_motion(wiggle, rig, bone_map)
    binding = bind(rig, bone_map)
    world = binding.world_from_channels(pose.rotations)
    heads = binding.heads(world, binding.pelvis_head + pose.root_location @ binding.root_rest.T)
    # What Blender's pose_bone.matrix would hold: world change times rest orientation.
    matrices = np.tile(np.eye(4), (pose.frames, len(bone_map), 1, 1))
    order = [binding.bone_names.index(b) for b in bone_map.values()]
    matrices[..., :3, :3] = quat_to_matrix(world[:, order]) @ rig.matrices[binding.bones[order]]
    matrices[..., :3, 3] = heads[:, order]
    read = pose_from_matrices(rig, bone_map, matrices, 20.0)
    assert read.bones == pose.bones and read.root_bone == pose.root_bone == "pelvis"
    assert np.abs(read.rotations - pose.rotations).max() < 1e-9
    assert np.abs(read.root_location - pose.root_location).max() < 1e-9


def test_foot_lock_holds_planted_feet_without_popping():
    rotations, root = smooth_random_motion(frames=120, seed=2, amplitude=0.25, walk_speed=0.0)
    # Slide the whole body sideways back and forth slowly: feet "skate" while low.
    root[:, 0] = 0.06 * np.sin(np.linspace(0, 4 * np.pi, 120))
    motion = Motion.from_rotations(rotations, root)
    rig = as_rig(humanoid("mixamo", seed=1, stretch={"left_knee": 1.15, "right_knee": 1.15}))
    bone_map = map_bones(rig)
    contacts = foot_contacts(motion.positions, motion.fps)
    assert contacts.sum() > 40
    speeds, steps = {}, {}
    for lock in (False, True):
        binding, world, pelvis, _ = retarget(motion, rig, bone_map, foot_lock=lock)
        heads = binding.heads(world, pelvis)
        ankles = heads[:, [binding.slot[7], binding.slot[8]]]
        speeds[lock] = foot_skating(ankles, contacts, motion.fps, up=binding.up)
        # The largest distance an ankle moves in one frame: a pop would show here.
        steps[lock] = np.linalg.norm(np.diff(ankles, axis=0), axis=-1).max()
        pose = pose_from_motion(motion, rig, bone_map, foot_lock=lock)
        assert np.all(np.isfinite(pose.rotations))
    print(f"planted-foot speed {100 * speeds[False]:.2f} cm/s free, {100 * speeds[True]:.2f} cm/s locked; "
          f"largest ankle step {100 * steps[False]:.2f} cm free, {100 * steps[True]:.2f} cm locked")
    assert speeds[True] < 0.2 * speeds[False]
    assert steps[True] < 1.5 * steps[False]


def test_pose_and_motion_inputs_are_checked(wiggle):
    rig = as_rig(humanoid("mixamo", seed=1))
    bone_map = map_bones(rig)
    pose = pose_from_motion(wiggle, rig, bone_map)
    with pytest.raises(ValueError, match="does not cover the mapped bones"):
        motion_from_pose(rig, bone_map, Pose(pose.bones[1:], pose.rotations[:, 1:], pose.root_bone,
                                             pose.root_location, 20.0))
    bad = pose.rotations.copy()
    bad[3, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        motion_from_pose(rig, bone_map, Pose(pose.bones, bad, pose.root_bone, pose.root_location, 20.0))
    with pytest.raises(ValueError, match="root_location must have shape"):
        motion_from_pose(rig, bone_map, Pose(pose.bones, pose.rotations, pose.root_bone, pose.root_location[1:], 20.0))
    with pytest.raises(ValueError, match="parents before children"):
        Rig(("a", "b"), [1, -1], np.zeros((2, 3)), np.ones((2, 3)), np.tile(np.eye(3), (2, 1, 1)))
    with pytest.raises(ValueError, match="unique"):
        Rig(("a", "a"), [-1, 0], np.zeros((2, 3)), np.ones((2, 3)), np.tile(np.eye(3), (2, 1, 1)))


def test_connected_pelvis_passes_root_motion_to_its_parent(wiggle):
    rig = as_rig(humanoid("ue5", seed=4, extras=True))
    # Connect the pelvis to the root bone (its location channel then does nothing).
    connected = rig.connected.copy()
    connected[rig.index["pelvis"]] = True
    rig = Rig(rig.names, rig.parents, rig.heads, rig.tails, rig.matrices, rig.deform, connected)
    bone_map = map_bones(rig)
    pose = pose_from_motion(wiggle, rig, bone_map)
    assert pose.root_bone == "root"
    binding = bind(rig, bone_map)
    # The root bone is not rotated, so its location moves the pelvis head one for one.
    pelvis = binding.pelvis_head + pose.root_location @ rig.matrices[rig.index["root"]].T
    assert np.abs(pelvis - to_blender(wiggle.positions[:, 0])).max() < 1e-6


def test_rigify_deform_bones_alone_are_mapped():
    """A Rigify rig exported with its DEF- bones only (as for game engines) maps to them;
    the metarig's own names map too."""
    metarig = as_rig(humanoid("rigify", seed=2))
    deform = _rename(metarig, tuple(f"DEF-{name}" for name in metarig.names))
    expected = map_bones(metarig)
    assert expected["left_hip"] == "thigh.L" and expected["head"] == "spine.006" and expected["neck"] == "spine.004"
    assert map_bones(deform) == {j: f"DEF-{b}" for j, b in expected.items()}
    controlled = _rename(metarig, tuple(f"ORG-{n}" if k % 3 == 0 else f"MCH-{n}" if k % 3 == 1 else f"DEF-{n}"
                                        for k, n in enumerate(metarig.names)))
    with pytest.raises(MappingError, match="generated Rigify rig"):
        map_bones(controlled)


# --- the structure decides, names choose between bones the structure allows ---------

def _rig_named(table, pose="A", twists=False, seed=12):
    """A humanoid whose bones are named by `table` {role: pattern with {S}/{s}/{Side}}; the
    map a person would expect from those names."""
    roles = {}
    counter = itertools.count()

    def names(role, side, **extra):
        pattern = table.get(role)
        if role == "spine":
            pattern = table["spine"][extra["i"]]
        if pattern is None:
            return f"{table.get('other', 'bone')}{next(counter):02d}"
        name = pattern.format(S=(side or "")[:1].upper(), s=(side or "")[:1], Side=(side or "").capitalize(),
                              part=extra.get("part", ""))
        roles.setdefault((role, side), name)
        return name

    rig = as_rig(humanoid(names=names, pose=pose, twists=twists, seed=seed))
    expected = {"pelvis": roles[("pelvis", None)], "neck": roles[("neck", None)], "head": roles[("head", None)]}
    expected.update({f"spine{k + 1}": table["spine"][k] for k in range(3)})
    for side in ("left", "right"):
        for role, joint in (("collar", "collar"), ("shoulder", "shoulder"), ("elbow", "elbow"), ("wrist", "wrist"),
                            ("hip", "hip"), ("knee", "knee"), ("ankle", "ankle"), ("toe", "foot")):
            expected[f"{side}_{joint}"] = roles[(role, side)]
    return rig, expected


STRUCTURE_CONVENTIONS = {
    # BVH's Collar family: "Shoulder" is the upper arm, "Hip" the thigh (the bug report's rig).
    "bvh collar/shoulder/elbow/wrist": dict(
        pelvis="Hips", spine=("Chest", "Chest2", "Chest3"), neck="Neck", head="Head", collar="{Side}Collar",
        shoulder="{Side}Shoulder", elbow="{Side}Elbow", wrist="{Side}Wrist", hip="{Side}Hip", knee="{Side}Knee",
        ankle="{Side}Ankle", toe="{Side}Toe"),
    # Unity's humanoid: "Shoulder" is the collar.
    "unity humanoid": dict(
        pelvis="Hips", spine=("Spine", "Chest", "UpperChest"), neck="Neck", head="Head", collar="{Side}Shoulder",
        shoulder="{Side}UpperArm", elbow="{Side}LowerArm", wrist="{Side}Hand", hip="{Side}UpperLeg",
        knee="{Side}LowerLeg", ankle="{Side}Foot", toe="{Side}Toes"),
    "asf names": dict(
        pelvis="root", spine=("lowerback", "upperback", "thorax"), neck="lowerneck", head="head",
        collar="{s}clavicle", shoulder="{s}humerus", elbow="{s}radius", wrist="{s}wrist", hip="{s}femur",
        knee="{s}tibia", ankle="{s}foot", toe="{s}toes"),
    "3ds max biped": dict(
        pelvis="Bip01 Pelvis", spine=("Bip01 Spine", "Bip01 Spine1", "Bip01 Spine2"), neck="Bip01 Neck",
        head="Bip01 Head", collar="Bip01 {S} Clavicle", shoulder="Bip01 {S} UpperArm", elbow="Bip01 {S} Forearm",
        wrist="Bip01 {S} Hand", hip="Bip01 {S} Thigh", knee="Bip01 {S} Calf", ankle="Bip01 {S} Foot",
        toe="Bip01 {S} Toe0", other="Bip01 Nub"),
}


@pytest.mark.parametrize("convention", list(STRUCTURE_CONVENTIONS))
def test_names_that_mean_different_joints_in_different_conventions(convention, wiggle):
    rig, expected = _rig_named(STRUCTURE_CONVENTIONS[convention])
    bone_map = map_bones(rig)
    assert bone_map == {j: expected[j] for j in JOINT_NAMES}
    pose = pose_from_motion(wiggle, rig, bone_map)
    assert _max_error(rig, bone_map, pose, wiggle.positions) < 1e-6


def test_unreal_twist_bones_inside_the_chains_are_stepped_over():
    """UE mannequin names with the twist bones in the chain (upperarm_l >
    upperarm_twist_01_l > lowerarm_l), as some exports parent them."""
    table = dict(pelvis="pelvis", spine=("spine_01", "spine_02", "spine_03"), neck="neck_01", head="head",
                 collar="clavicle_{s}", shoulder="upperarm_{s}", elbow="lowerarm_{s}", wrist="hand_{s}",
                 hip="thigh_{s}", knee="calf_{s}", ankle="foot_{s}", toe="ball_{s}", twist="{part}_twist_01_{s}")
    rig, expected = _rig_named(table, twists=True)
    assert rig.names[rig.parents[rig.index["lowerarm_l"]]] == "upperarm_twist_01_l"
    assert map_bones(rig) == {j: expected[j] for j in JOINT_NAMES}


def test_names_on_the_wrong_bones_do_not_move_joints_off_the_structure():
    """Mixamo names with "LeftArm" and "LeftShoulder" swapped: the bone at the side of the
    chest is still the upper arm, the one from the middle of the chest the collar."""
    rig = as_rig(humanoid("mixamo", pose="A", seed=5))
    swap = {"mixamorig:LeftArm": "mixamorig:LeftShoulder", "mixamorig:LeftShoulder": "mixamorig:LeftArm"}
    swapped = _rename(rig, tuple(swap.get(n, n) for n in rig.names))
    bone_map = map_bones(swapped)
    assert bone_map["left_collar"] == "mixamorig:LeftArm" and bone_map["left_shoulder"] == "mixamorig:LeftShoulder"
    assert bone_map["right_collar"] == "mixamorig:RightShoulder"


def test_sides_come_from_the_feet_not_from_names():
    """A rig whose names say Left on the character's right (a mirrored export): the
    structure maps by where the limbs are, the names only pick within a limb."""
    rig = as_rig(humanoid("mixamo", pose="A", seed=6))
    mirrored = _rename(rig, tuple(n.replace("Left", "Tmp").replace("Right", "Left").replace("Tmp", "Right")
                                  for n in rig.names))
    bone_map = map_bones(mirrored)
    assert bone_map["left_hip"] == "mixamorig:RightUpLeg" and bone_map["left_wrist"] == "mixamorig:RightHand"


def test_a_rig_without_legs_is_refused_in_words():
    bones = [b for b in humanoid("mixamo", seed=1) if not any(w in b["name"] for w in ("Leg", "Foot", "Toe"))]
    with pytest.raises(MappingError, match="no legs found.*the rig needs two legs.*pelvis"):
        map_bones(as_rig(bones))
    one_leg = [b for b in humanoid("mixamo", seed=1) if not any(w in b["name"] for w in ("LeftUpLeg", "LeftLeg",
                                                                                         "LeftFoot", "LeftToe"))]
    with pytest.raises(MappingError, match="no left leg found below the pelvis: the rig needs two legs"):
        map_bones(as_rig(one_leg))


def test_a_rig_without_an_arm_is_refused_in_words():
    """One arm missing breaks the body's left-right symmetry that the axes are guessed
    from: the hierarchy still reads as a body under the right axes, and the error
    names the arm."""
    bones = [b for b in humanoid("mixamo", seed=1) if not any(
        w in b["name"] for w in ("LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand"))]
    with pytest.raises(MappingError, match=r"no left arm found.*\(no bone found for left_shoulder, left_elbow, "
                                           r"left_wrist;"):
        map_bones(as_rig(bones))


def test_biped_thighs_under_the_first_spine_bone(wiggle):
    """3ds Max's Biped hangs the thighs from "Bip01 Spine", not from "Bip01 Pelvis": the
    bone where legs and spine part is the one whose turn moves both, so it takes the
    pelvis's motion whatever the names say, and the legs still land where the source's
    do."""
    table = STRUCTURE_CONVENTIONS["3ds max biped"]
    roles = {}

    def names(role, side, **extra):
        pattern = table["spine"][extra["i"]] if role == "spine" else table.get(role, "Bip01 Nub{n}")
        name = pattern.format(S=(side or "")[:1].upper(), n=len(roles))
        roles[name] = role
        return name

    bones = humanoid(names=names, pose="A", seed=13)
    for bone in bones:
        if bone["name"] in ("Bip01 L Thigh", "Bip01 R Thigh"):
            bone["parent"] = "Bip01 Spine"
    rig = as_rig(bones)
    bone_map = map_bones(rig)
    assert bone_map["pelvis"] == "Bip01 Spine"
    assert bone_map["left_hip"] == "Bip01 L Thigh" and bone_map["spine3"] == "Bip01 Spine2"
    pose = pose_from_motion(wiggle, rig, bone_map)
    heads = joint_heads(rig, bone_map, pose)
    for joint in ("left_knee", "right_ankle", "left_wrist"):
        assert np.isfinite(heads[joint]).all()
    # The legs hang from the bone that carries the pelvis's motion: they follow the
    # source's directions exactly.
    for top, end in (("left_hip", "left_knee"), ("right_knee", "right_ankle")):
        a = heads[end] - heads[top]
        b = to_blender(wiggle.positions[:, JOINT_INDEX[end]] - wiggle.positions[:, JOINT_INDEX[top]])
        cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert cos.min() > 1 - 1e-9


def test_a_rig_without_arms_is_refused_naming_the_arms():
    """Most of an armless rig's bones are in its legs, which turns the guessed up
    upside down; the axes under which two legs stand below a pelvis are taken instead."""
    bones = [b for b in humanoid("mixamo", pose="A", seed=1) if not any(w in b["name"] for w in ("Shoulder", "Arm",
                                                                                                "Hand"))]
    with pytest.raises(MappingError, match=r"no left arm found.*no right arm found.*\(no bone found for "
                                           r"left_shoulder, right_shoulder, left_elbow"):
        map_bones(as_rig(bones))


def test_a_prop_on_the_head_is_not_the_head():
    """A hat bone standing on the head (deforming nothing) is the rig's highest point;
    the head is still the bone below it."""
    rig = as_rig(humanoid("rigify", necks=2, extras=True, seed=3))
    assert rig.names[rig.parents[rig.index["hat"]]] == "spine.007"
    bone_map = map_bones(rig)
    assert bone_map["head"] == "spine.007" and bone_map["neck"] == "spine.004"
