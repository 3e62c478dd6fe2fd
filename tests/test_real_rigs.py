"""Bone mapping on real rigs nobody here made (tests/data/rigs; sources and licences in
tests/data/rigs/SOURCES.md).

Each file's skeleton becomes a Rig the way Blender's importers lay it out (Y-up files
turned to Blender's Z up, facing -Y; a bone points at its first child; a leaf bone
continues its parent's direction by half): BVH through the project's own parser, ASF
and glTF node trees parsed here; the BVH files also through Blender's own importer.
The map must be what a person reading the hierarchy would pick (written out in
CASES), also with every bone renamed Bone.000, Bone.001, ...; and a short SMPL motion
retargeted onto the rig must point each limb segment (thigh, shin, foot, upper arm,
forearm) within 5 degrees of the source's.

Results: 8 rigs. All 8 map automatically, all 8 also without their names, and all 8
move right (every limb segment within 0.001 degrees of the source's direction; the
3 BVH files the same through Blender's importer). Motion read back from each rig (what
caption, continue and in-between send) has SMPL's bone lengths and stands on the floor
the source stood on (0.00 mm); joints whose chain the rig has in full come back exact.
Before the structural rework (the mapper of commit a7453c0) 3 of the 8 mapped right:
  mocapbank_collar_shoulder_elbow.bvh  refused: "no bone found for left_hip, ...,
                                       left_shoulder, ..." (its names were read as
                                       Mixamo's, LeftShoulder as the collar)
  riggedfigure_nodes.gltf,             refused: "no bone found for left_hip, ...,
  cesiumman_nodes.gltf                 right_ankle" (steep feet, no leg names)
  cmu_01.asf, cmu_02.asf               wrong: lhipjoint as the hip, lhand/lfingers as
                                       the wrist, upperneck as the head
Four of the rigs (the Collar BVH, CMU's BVH and both ASF files) start both collars at
one point; their arms moved 7 to 89 degrees off the source until retarget/transfer.py
stopped using the (zero) line between such collars for the chest.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from retarget.formats.bvh import parse_bvh
from retarget.mapping import map_bones
from retarget.motion import Motion
from retarget.rig import Rig, rig_from_chain
from retarget.skeleton import JOINT_INDEX, JOINT_NAMES
from retarget.humanml3d import canonical_joints
from retarget.skeleton import PARENTS, REST_OFFSETS
from retarget.transfer import motion_from_pose, pose_from_motion, retarget
from harness.motions import smooth_random_motion

RIGS = Path(__file__).resolve().parent / "data" / "rigs"


def _y_up_to_blender(points):
    """Y-up file coordinates (the character faces +Z) -> Blender's (Z up, facing -Y), as
    Blender's BVH and glTF importers turn them."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[:, 0], -points[:, 2], points[:, 1]], axis=-1)


def rig_from_bvh(path):
    bvh = parse_bvh(Path(path).read_text())
    rest = np.zeros((len(bvh.names), 3))
    for joint, parent in enumerate(bvh.parents):
        rest[joint] = bvh.offsets[joint] + (rest[parent] if parent >= 0 else 0.0)
    return rig_from_chain(bvh.names, bvh.parents, _y_up_to_blender(rest))


def rig_from_asf(path):
    """An Acclaim skeleton: each bone runs from its parent's end along `direction` (in
    world axes) for `length`; the root is a point, given a short bone up."""
    text = Path(path).read_text()
    bonedata = text.split(":bonedata")[1].split(":hierarchy")[0]
    bones = {}
    for block in re.findall(r"begin(.*?)\bend\b", bonedata, re.S):
        fields = {line.split()[0]: line.split()[1:] for line in block.strip().splitlines() if line.split()}
        bones[fields["name"][0]] = (np.array(fields["direction"], float), float(fields["length"][0]))
    children = {}
    hierarchy = text.split(":hierarchy")[1].split("begin")[1].split("end")[0]
    for line in hierarchy.strip().splitlines():
        parent, *kids = line.split()
        children[parent] = kids
    names, parents, heads, tails = ["root"], [-1], [np.zeros(3)], [np.array([0.0, 1.0, 0.0])]
    queue = [("root", 0, np.zeros(3))]
    while queue:
        parent, index, end = queue.pop(0)
        for kid in children.get(parent, []):
            direction, length = bones[kid]
            names.append(kid)
            parents.append(index)
            heads.append(end)
            tails.append(end + direction * length)
            queue.append((kid, len(names) - 1, tails[-1]))
    return rig_from_chain(names, parents, _y_up_to_blender(heads), _y_up_to_blender(tails))


def _quat_matrix(q):
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def rig_from_gltf(path, root):
    """The node `root` (a name, or an index for unnamed nodes) and the nodes below it as
    bones: heads at the nodes' rest positions (translation/rotation/scale or matrix,
    every parent applied); an unnamed node is called node<index>."""
    nodes = json.loads(Path(path).read_text())["nodes"]
    local = []
    for node in nodes:
        matrix = np.eye(4)
        if "matrix" in node:
            matrix = np.array(node["matrix"], float).reshape(4, 4).T  # glTF stores columns
        else:
            matrix[:3, :3] = _quat_matrix(node.get("rotation", [0, 0, 0, 1])) * np.array(node.get("scale", [1, 1, 1]))
            matrix[:3, 3] = node.get("translation", [0, 0, 0])
        local.append(matrix)
    parent_of = {child: i for i, node in enumerate(nodes) for child in node.get("children", [])}

    def world(i):
        return world(parent_of[i]) @ local[i] if i in parent_of else local[i]

    start = root if isinstance(root, int) else next(i for i, node in enumerate(nodes) if node.get("name") == root)
    order, parents, queue = [], [], [(start, -1)]
    while queue:
        node, parent = queue.pop(0)
        order.append(node)
        parents.append(parent)
        queue.extend((child, len(order) - 1) for child in nodes[node].get("children", []))
    heads = np.array([world(i)[:3, 3] for i in order])
    return rig_from_chain([nodes[i].get("name", f"node{i}") for i in order], parents, _y_up_to_blender(heads))


def _sided(left, right, **common):
    """An expected map from per-side names ("{}" is L/R, Left/Right, ... as given)."""
    out = dict(common)
    for side, fill in (("left", left), ("right", right)):
        out.update({f"{side}_{joint}": name for joint, name in fill.items()})
    return out


def _side_names(pattern, sides, joints):
    return [{joint: pattern[joint].format(s) for joint in joints if joint in pattern} for s in sides]


LIMBS = ("hip", "knee", "ankle", "foot", "collar", "shoulder", "elbow", "wrist")
BVH_COLLAR = dict(hip="{}Hip", knee="{}Knee", ankle="{}Ankle", collar="{}Collar", shoulder="{}Shoulder",
                  elbow="{}Elbow", wrist="{}Wrist")
MIXAMO = dict(hip="mixamorig:{}UpLeg", knee="mixamorig:{}Leg", ankle="mixamorig:{}Foot", foot="mixamorig:{}ToeBase",
              collar="mixamorig:{}Shoulder", shoulder="mixamorig:{}Arm", elbow="mixamorig:{}ForeArm",
              wrist="mixamorig:{}Hand")
CMU_BVH = dict(hip="{}UpLeg", knee="{}Leg", ankle="{}Foot", foot="{}ToeBase", collar="{}Shoulder", shoulder="{}Arm",
               elbow="{}ForeArm", wrist="{}Hand")
ASF = dict(hip="{}femur", knee="{}tibia", ankle="{}foot", foot="{}toes", collar="{}clavicle", shoulder="{}humerus",
           elbow="{}radius", wrist="{}wrist")
RIGGED_FIGURE = dict(hip="leg_joint_{}_1", knee="leg_joint_{}_2", ankle="leg_joint_{}_3", foot="leg_joint_{}_5",
                     shoulder="arm_joint_{}_1", elbow="arm_joint_{}_2", wrist="arm_joint_{}_3")
VRM_DOTS = dict(hip="UpperLeg.{}", knee="LowerLeg.{}", ankle="Foot.{}", foot="Toes.{}", collar="Shoulder.{}",
                shoulder="UpperArm.{}", elbow="LowerArm.{}", wrist="Hand.{}")

# file, loader, convention, expected map (what a person reading the hierarchy picks).
CASES = {
    "mocapbank_collar_shoulder_elbow.bvh": (rig_from_bvh, "BVH Collar/Shoulder/Elbow/Wrist, Hip/Knee/Ankle, no toes",
        _sided(*_side_names(BVH_COLLAR, ("Left", "Right"), LIMBS), pelvis="Hips", spine1="Chest", spine3="Chest2",
               neck="Neck", head="Head")),
    "freebvh_mixamo.bvh": (rig_from_bvh, "Mixamo names in a BVH (eyes, head top, fingers)",
        _sided(*_side_names(MIXAMO, ("Left", "Right"), LIMBS), pelvis="mixamorig:Hips", spine1="mixamorig:Spine",
               spine2="mixamorig:Spine1", spine3="mixamorig:Spine2", neck="mixamorig:Neck", head="mixamorig:Head")),
    "cmu_01_04_hierarchy.bvh": (rig_from_bvh, "CMU BVH (cgspeed): LHipJoint, stacked zero-length joints",
        _sided(*_side_names(CMU_BVH, ("Left", "Right"), LIMBS), pelvis="Hips", spine1="LowerBack", spine2="Spine",
               spine3="Spine1", neck="Neck", head="Head")),
    "cmu_01.asf": (rig_from_asf, "ASF/AMC (lhipjoint, lfemur, lhumerus, ...)",
        _sided(*_side_names(ASF, ("l", "r"), LIMBS), pelvis="root", spine1="lowerback", spine2="upperback",
               spine3="thorax", neck="lowerneck", head="head")),
    "cmu_02.asf": (rig_from_asf, "ASF/AMC, another subject's proportions",
        _sided(*_side_names(ASF, ("l", "r"), LIMBS), pelvis="root", spine1="lowerback", spine2="upperback",
               spine3="thorax", neck="lowerneck", head="head")),
    "riggedfigure_nodes.gltf": (lambda p: rig_from_gltf(p, "torso_joint_1"),
        "glTF, names that say little (torso_joint_1, leg_joint_L_3), no collars, steep feet",
        _sided(*_side_names(RIGGED_FIGURE, ("L", "R"), LIMBS), pelvis="torso_joint_1", spine1="torso_joint_2",
               spine3="torso_joint_3", neck="neck_joint_1", head="neck_joint_2")),
    "cesiumman_nodes.gltf": (lambda p: rig_from_gltf(p, 2), "glTF whose joints have no names at all (CesiumMan)",
        _sided(dict(hip="node7", knee="node8", ankle="node9", foot="node10", shoulder="node16", elbow="node17",
                    wrist="node18"),
               dict(hip="node3", knee="node4", ankle="node5", foot="node6", shoulder="node13", elbow="node14",
                    wrist="node15"),
               pelvis="node2", spine1="node11", spine3="node12", neck="node19", head="node20")),
    "vrm1_isbinary_skeleton.gltf": (lambda p: rig_from_gltf(p, "Hips"),
        "VRM 1.0 / Unity humanoid names (Shoulder.L is the collar, UpperArm.L, LowerLeg.L)",
        _sided(*_side_names(VRM_DOTS, ("L", "R"), LIMBS), pelvis="Hips", spine1="Spine", spine2="Chest",
               spine3="UpperChest", neck="Neck", head="Head")),
}

SEGMENTS = [("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("right_hip", "right_knee"),
            ("right_knee", "right_ankle"), ("left_ankle", "left_foot"), ("right_ankle", "right_foot"),
            ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
            ("right_elbow", "right_wrist")]


@pytest.fixture(scope="module")
def motion():
    rotations, root = smooth_random_motion(frames=40, seed=21, amplitude=0.4, turn_degrees=90, walk_speed=1.0)
    return Motion.from_rotations(rotations, root)


def _rig(name):
    return CASES[name][0](RIGS / name)


@pytest.mark.parametrize("name", list(CASES))
def test_real_rig_is_mapped_as_its_hierarchy_says(name):
    expected = CASES[name][2]
    assert map_bones(_rig(name)) == {j: expected[j] for j in JOINT_NAMES if j in expected}


@pytest.mark.parametrize("name", list(CASES))
def test_real_rig_is_mapped_by_its_structure_alone(name):
    """With every name replaced by Bone.000, Bone.001, ... the map is the same: the
    hierarchy and the rest pose decide; names only choose where both would do."""
    rig = _rig(name)
    anonymous = tuple(f"Bone.{k:03d}" for k in range(rig.count))
    real = dict(zip(anonymous, rig.names))
    bone_map = map_bones(Rig(anonymous, rig.parents, rig.heads, rig.tails, rig.matrices))
    expected = CASES[name][2]
    assert {j: real[b] for j, b in bone_map.items()} == {j: expected[j] for j in JOINT_NAMES if j in expected}


def limb_errors_degrees(rig, motion):
    """Largest angle (degrees) over the clip between each mapped limb segment on the rig
    and the same segment of the source motion."""
    bone_map = map_bones(rig)
    binding, world, pelvis, _ = retarget(motion, rig, bone_map)
    heads = binding.heads(world, pelvis)
    errors = {}
    for parent, child in SEGMENTS:
        if parent not in bone_map or child not in bone_map:
            continue  # a rig without toes
        a = heads[:, binding.slot[JOINT_INDEX[child]]] - heads[:, binding.slot[JOINT_INDEX[parent]]]
        # The source's segment in the rig's axes: ours (left, up, forward) turned onto
        # the way the rig faces (Blender's -Y for most; CesiumMan faces +X).
        b = (motion.positions[:, JOINT_INDEX[child]] - motion.positions[:, JOINT_INDEX[parent]]) @ binding.frame.T
        cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        errors[f"{parent}->{child}"] = float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max())
    return errors


@pytest.mark.parametrize("name", list(CASES))
def test_real_rig_moves_like_the_source(name, motion):
    errors = limb_errors_degrees(_rig(name), motion)
    print(f"{name}: limb directions within {max(errors.values()):.3f} deg of the source")
    assert max(errors.values()) < 5.0, errors


@pytest.mark.parametrize("name", list(CASES))
def test_motion_read_back_from_a_real_rig_is_smpl_sized_and_on_the_floor(name, motion):
    """What caption, continue, in-between and export send the model from a rig: the
    rig's own size and proportions stay out of it (SMPL's bone lengths), and a motion
    that stood on HumanML3D's floor (lowest joint of the clip at y = 0) still does."""
    rig = _rig(name)
    bone_map = map_bones(rig)
    source = Motion.from_positions(canonical_joints(motion.positions, uniform_skeleton=False), motion.fps)
    source = Motion.from_rotations(source.rotations, source.positions[:, 0] - REST_OFFSETS[0], source.fps)
    assert abs(source.positions[..., 1].min()) < 1e-6
    back = motion_from_pose(rig, bone_map, pose_from_motion(source, rig, bone_map)).positions
    parents = [JOINT_INDEX[p] for p, _ in SEGMENTS]
    children = [JOINT_INDEX[c] for _, c in SEGMENTS]
    lengths = np.linalg.norm(back[:, children] - back[:, parents], axis=-1)
    np.testing.assert_allclose(lengths, np.linalg.norm(REST_OFFSETS[children], axis=-1)[None].repeat(len(back), 0), atol=1e-6)
    floor = back[..., 1].min()
    # A joint whose chain from the pelvis has a bone the rig lacks (a spine of two
    # bones for SMPL's three, no collars) cannot come back as it was; the others must.
    whole = [j for j, joint in enumerate(JOINT_NAMES) if all(JOINT_NAMES[a] in bone_map for a in _chain(j))]
    error = np.abs(back[:, whole] - source.positions[:, whole]).max()
    print(f"{name}: floor at {1000 * floor:.2f} mm; {len(whole)} of 22 joints fully mapped, read back within {1000 * error:.3f} mm")
    assert abs(floor) < 0.005, floor
    assert error < 0.001


def _chain(joint):
    while joint >= 0:
        yield joint
        joint = PARENTS[joint]


# Blender's own BVH importer lays the bones out its way (End Sites as tails, its rule
# for zero-length bones, its axis turn): the map must not depend on our layout.
BLENDER_IMPORT = '''
import json, sys
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
out = {}
for path in sys.argv[1:]:
    before = set(bpy.data.objects)
    bpy.ops.import_anim.bvh(filepath=path, axis_forward="-Z", axis_up="Y", global_scale=1.0, frame_start=1,
                            use_fps_scale=False, update_scene_fps=False, update_scene_duration=False,
                            rotate_mode="NATIVE")
    obj = next(o for o in bpy.data.objects if o not in before and o.type == "ARMATURE")
    bones = list(obj.data.bones)
    out[path] = dict(
        names=[b.name for b in bones],
        parents=[bones.index(b.parent) if b.parent else -1 for b in bones],
        heads=[list(b.head_local) for b in bones], tails=[list(b.tail_local) for b in bones],
        matrices=[[list(row) for row in b.matrix_local.to_3x3()] for b in bones])
print("RESULT-JSON:" + json.dumps(out))
'''
BVH_FILES = [name for name in CASES if name.endswith(".bvh")]


@pytest.fixture(scope="module")
def blender_imports():
    from harness.blender import run_in_blender

    result = run_in_blender(BLENDER_IMPORT, *[str(RIGS / name) for name in BVH_FILES], timeout=300)
    rigs = {}
    for name in BVH_FILES:
        data = result[str(RIGS / name)]
        # A Rig lists parents first; Blender's bone order need not.
        order, seen = [], set()
        while len(order) < len(data["names"]):
            for k, parent in enumerate(data["parents"]):
                if k not in seen and (parent < 0 or parent in seen):
                    order.append(k)
                    seen.add(k)
        index = {old: new for new, old in enumerate(order)}
        rigs[name] = Rig([data["names"][k] for k in order],
                         [index[data["parents"][k]] if data["parents"][k] >= 0 else -1 for k in order],
                         np.array(data["heads"])[order], np.array(data["tails"])[order],
                         np.array(data["matrices"])[order])
    return rigs


@pytest.mark.parametrize("name", BVH_FILES)
def test_bvh_imported_by_blender_maps_and_moves_the_same(name, blender_imports, motion):
    rig = blender_imports[name]
    expected = CASES[name][2]
    assert map_bones(rig) == {j: expected[j] for j in JOINT_NAMES if j in expected}
    errors = limb_errors_degrees(rig, motion)
    print(f"{name} (Blender's import): limb directions within {max(errors.values()):.3f} deg of the source")
    assert max(errors.values()) < 5.0, errors


def test_vrm_map_agrees_with_the_models_own_humanoid_declaration():
    """A VRM declares which node is which humanoid bone: the mapper, reading structure
    and names, picks the same bones."""
    data = json.loads((RIGS / "vrm1_isbinary_skeleton.gltf").read_text())
    declared = {bone: data["nodes"][entry["node"]]["name"]
                for bone, entry in data["extensions"]["VRMC_vrm"]["humanoid"]["humanBones"].items()}
    vrm_name = {"pelvis": "hips", "spine1": "spine", "spine2": "chest", "spine3": "upperChest", "neck": "neck",
                "head": "head"}
    for side in ("left", "right"):
        vrm_name.update({f"{side}_{ours}": side + theirs for ours, theirs in (
            ("hip", "UpperLeg"), ("knee", "LowerLeg"), ("ankle", "Foot"), ("foot", "Toes"), ("collar", "Shoulder"),
            ("shoulder", "UpperArm"), ("elbow", "LowerArm"), ("wrist", "Hand"))})
    bone_map = map_bones(_rig("vrm1_isbinary_skeleton.gltf"))
    assert bone_map == {joint: declared[vrm_name[joint]] for joint in JOINT_NAMES}
