"""Humanoid armatures the tests build: bone lists in several naming conventions.

A rig is a list of bones (name, parent, head, tail, roll, deform) in Blender's
armature space (Z up, the character faces -Y). The same list becomes a numpy Rig
(`as_rig`) or a real Blender armature (BUILD_SCRIPT, run inside Blender).

The body has the proportions of the SMPL rest skeleton (retarget.skeleton), so a
retargeted motion can be compared with the source joint by joint; `scale` and
`stretch` give other proportions. `pose="A"` lowers the arms by 45 degrees about the
shoulder (bones turned rigidly, rolls included), so A- and T-pose versions of one rig
differ only in their rest pose.
"""

import json

import numpy as np

from retarget.rig import Rig, bone_matrix
from retarget.skeleton import JOINT_INDEX, REST_OFFSETS, rest_positions

PELVIS_HEIGHT = 0.93  # puts the SMPL toes at about floor level


def to_blender(v):
    """Ours (x, y, z) = Blender (x, -z, y)."""
    v = np.asarray(v, dtype=np.float64)
    return np.stack([v[..., 0], -v[..., 2], v[..., 1]], axis=-1)


def _roll_of(matrix):
    """The roll that gives a bone along matrix's Y axis the orientation `matrix`."""
    y = matrix[:, 1]
    base = bone_matrix(y, 0.0)
    x0, x1 = base[:, 0], matrix[:, 0]
    return float(np.arctan2(np.dot(np.cross(x0, x1), y), np.dot(x0, x1)))


def _axis_rotation(axis, angle):
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


NAMES = {
    "mixamo": dict(
        pelvis="mixamorig:Hips", spine="mixamorig:Spine{i}", neck="mixamorig:Neck{i}", head="mixamorig:Head",
        head_end="mixamorig:HeadTop_End", collar="mixamorig:{Side}Shoulder", shoulder="mixamorig:{Side}Arm",
        elbow="mixamorig:{Side}ForeArm", wrist="mixamorig:{Side}Hand", finger="mixamorig:{Side}Hand{finger}{k}",
        hip="mixamorig:{Side}UpLeg", knee="mixamorig:{Side}Leg", ankle="mixamorig:{Side}Foot",
        toe="mixamorig:{Side}ToeBase", toe_end="mixamorig:{Side}Toe_End",
        spine_index=lambda i, n: "" if i == 0 else str(i), neck_index=lambda i, n: "" if i == 0 else str(i),
    ),
    "ue5": dict(
        root="root", pelvis="pelvis", spine="spine_{i}", neck="neck_{i}", head="head", head_end=None,
        collar="clavicle_{s}", shoulder="upperarm_{s}", elbow="lowerarm_{s}", wrist="hand_{s}",
        finger="{finger_lower}_{k:02d}_{s}", hip="thigh_{s}", knee="calf_{s}", ankle="foot_{s}", toe="ball_{s}",
        toe_end=None, twist="{part}_twist_01_{s}",
        spine_index=lambda i, n: f"{i + 1:02d}", neck_index=lambda i, n: f"{i + 1:02d}",
    ),
    "vrm": dict(
        pelvis="J_Bip_C_Hips", spine="J_Bip_C_{i}", neck="J_Bip_C_Neck{i}", head="J_Bip_C_Head",
        head_end=None, collar="J_Bip_{S}_Shoulder", shoulder="J_Bip_{S}_UpperArm", elbow="J_Bip_{S}_LowerArm",
        wrist="J_Bip_{S}_Hand", finger="J_Bip_{S}_{finger}{k}", hip="J_Bip_{S}_UpperLeg",
        knee="J_Bip_{S}_LowerLeg", ankle="J_Bip_{S}_Foot", toe="J_Bip_{S}_ToeBase", toe_end=None,
        spine_index=lambda i, n: ("Spine", "Chest", "UpperChest", "UpperChest2")[i], neck_index=lambda i, n: "",
    ),
    "rigify": dict(
        pelvis="spine", spine="spine.{i}", neck="spine.{i}", head="spine.{i}", head_end=None,
        collar="shoulder.{S}", shoulder="upper_arm.{S}", elbow="forearm.{S}", wrist="hand.{S}",
        finger="f_{finger_lower}.{k:02d}.{S}", hip="thigh.{S}", knee="shin.{S}", ankle="foot.{S}", toe="toe.{S}",
        toe_end=None, spine_index=lambda i, n: f"{i + 1:03d}", neck_index=lambda i, n: f"{i + 4:03d}",
    ),
}


def humanoid(convention="mixamo", pose="T", spines=3, necks=1, fingers=True, twists=False, extras=False,
             scale=1.0, stretch=None, seed=0, names=None):
    """Bones of a humanoid: list of dicts name, parent, head, tail, roll, deform.

    `names` overrides the convention with a function role -> name (for unusual rigs).
    `stretch` {joint: factor} lengthens bones to give other proportions.
    """
    rng = np.random.default_rng(seed)
    offsets = REST_OFFSETS.copy()
    for joint, factor in (stretch or {}).items():
        offsets[JOINT_INDEX[joint]] *= factor
    joints = rest_positions(offsets) + np.array([0.0, PELVIS_HEIGHT, 0.0])
    joints *= scale
    J = {name: joints[i] for name, i in JOINT_INDEX.items()}
    table = NAMES.get(convention, {})
    bones = []

    def name_of(role, side=None, **extra):
        if names is not None:
            return names(role, side, **extra)
        pattern = table.get(role)
        if pattern is None:
            return None
        fields = dict(extra)
        if side:
            fields.update(Side=side.capitalize(), S=side[0].upper(), s=side[0])
        return pattern.format(**fields)

    def add(name, parent, head, tail, deform=True, role=None):
        if name is None:
            return None
        bones.append(dict(name=name, parent=parent, head=np.asarray(head, float), tail=np.asarray(tail, float),
                          roll=float(rng.uniform(-np.pi, np.pi)), deform=deform, role=role))
        return name

    root = add(name_of("root"), None, [0, 0, 0], [0, 0, 0.2 * scale], deform=False) if "root" in table else None
    pelvis = add(name_of("pelvis"), root, J["pelvis"], J["pelvis"] + [0, 0.1 * scale, 0])

    # Spine: exactly SMPL's joints for three segments, else evenly along them.
    line = np.array([J["spine1"], J["spine2"], J["spine3"], J["neck"]])
    if spines == 3:
        spine_heads = line[:3]
    else:
        lengths = np.r_[0, np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))]
        spine_heads = np.array([[np.interp(f * lengths[-1], lengths, line[:, c]) for c in range(3)]
                                for f in np.arange(spines) / spines])
    parent = pelvis
    for i, head in enumerate(spine_heads):
        tail = spine_heads[i + 1] if i + 1 < spines else J["neck"]
        parent = add(name_of("spine", i=table["spine_index"](i, spines) if names is None else i), parent, head, tail)
    chest = parent
    neck_heads = [J["neck"] + (J["head"] - J["neck"]) * k / necks for k in range(necks)]
    for i, head in enumerate(neck_heads):
        tail = neck_heads[i + 1] if i + 1 < necks else J["head"]
        index = table["neck_index"](i, necks) if names is None else i
        parent = add(name_of("neck", i=index), parent, head, tail)
    head_name = name_of("head", i=table["neck_index"](necks + 1, necks) if convention == "rigify" else None)
    head = add(head_name, parent, J["head"], J["head"] + [0, 0.2 * scale, 0.0])
    if table.get("head_end") or names is not None:
        add(name_of("head_end"), head, J["head"] + [0, 0.2 * scale, 0], J["head"] + [0, 0.25 * scale, 0])
    if extras:
        add(name_of("prop", side=None, k=0) if names is not None else "hat", head,
            J["head"] + [0, 0.22 * scale, 0.05 * scale], J["head"] + [0, 0.3 * scale, 0.15 * scale], deform=False)

    for side in ("left", "right"):
        sign = 1.0 if side == "left" else -1.0
        side_joint = lambda j: J[f"{side}_{j}"]  # noqa: E731
        collar = add(name_of("collar", side), chest, side_joint("collar"), side_joint("shoulder"))
        shoulder = add(name_of("shoulder", side), collar, side_joint("shoulder"), side_joint("elbow"),
                       role=(side, "shoulder"))
        elbow_parent = shoulder
        if twists and names is not None:
            # A twist bone in the chain: the upper arm in two halves.
            middle = 0.5 * (side_joint("shoulder") + side_joint("elbow"))
            bones[-1]["tail"] = middle
            elbow_parent = add(name_of("twist", side, part="upperarm"), shoulder, middle, side_joint("elbow"))
        elbow = add(name_of("elbow", side), elbow_parent, side_joint("elbow"), side_joint("wrist"))
        hand_tip = side_joint("wrist") + [sign * 0.08 * scale, 0, 0]
        wrist = add(name_of("wrist", side), elbow, side_joint("wrist"), hand_tip)
        if twists and names is None and "twist" in table:
            for part, a, b in (("upperarm", "shoulder", "elbow"), ("lowerarm", "elbow", "wrist")):
                parent_bone = shoulder if part == "upperarm" else elbow
                add(name_of("twist", side, part=part), parent_bone,
                    0.5 * (side_joint(a) + side_joint(b)), side_joint(b), deform=True)
        if fingers:
            for f, (finger, spread) in enumerate((("Index", 0.03), ("Middle", 0.0), ("Thumb", -0.03))):
                parent_bone = wrist
                base = hand_tip + np.array([0, 0, spread]) * scale
                for k in range(1, 4):
                    start = base + [sign * 0.03 * (k - 1) * scale, 0, 0]
                    end = start + [sign * 0.03 * scale, 0, 0]
                    parent_bone = add(name_of("finger", side, finger=finger, finger_lower=finger.lower(), k=k),
                                      parent_bone, start, end)
        if extras and side == "right":
            add(name_of("prop", side, k=1) if names is not None else "sword", wrist,
                side_joint("wrist") + [sign * 0.08 * scale, -0.02 * scale, 0],
                side_joint("wrist") + [sign * 0.1 * scale, -0.02 * scale, 0.7 * scale], deform=False)

        hip = add(name_of("hip", side), pelvis, side_joint("hip"), side_joint("knee"))
        knee_parent = hip
        if twists and names is not None:
            middle = 0.5 * (side_joint("hip") + side_joint("knee"))
            bones[-1]["tail"] = middle
            knee_parent = add(name_of("twist", side, part="thigh"), hip, middle, side_joint("knee"))
        knee = add(name_of("knee", side), knee_parent, side_joint("knee"), side_joint("ankle"))
        ankle = add(name_of("ankle", side), knee, side_joint("ankle"), side_joint("foot"))
        toe_tip = side_joint("foot") + [0, 0, 0.06 * scale]
        toe = add(name_of("toe", side), ankle, side_joint("foot"), toe_tip)
        if table.get("toe_end") or names is not None:
            add(name_of("toe_end", side), toe, toe_tip, toe_tip + [0, 0, 0.02 * scale])
        if twists and names is None and "twist" in table:
            for part, parent_bone, a, b in (("thigh", hip, "hip", "knee"), ("calf", knee, "knee", "ankle")):
                add(name_of("twist", side, part=part), parent_bone,
                    0.5 * (side_joint(a) + side_joint(b)), side_joint(b))

    if convention == "ue5" and names is None and extras:
        add("ik_foot_root", root, [0, 0, 0], [0, 0, 0.1 * scale], deform=False)
        for side in ("l", "r"):
            ankle = J["left_ankle" if side == "l" else "right_ankle"]
            add(f"ik_foot_{side}", "ik_foot_root", ankle, ankle + [0, 0.1 * scale, 0], deform=False)
        add("ik_hand_root", root, [0, 0, 0], [0, 0, 0.1 * scale], deform=False)
        add("ik_hand_gun", "ik_hand_root", J["right_wrist"], J["right_wrist"] + [0, 0.1 * scale, 0], deform=False)
        for side in ("l", "r"):
            wrist = J["left_wrist" if side == "l" else "right_wrist"]
            add(f"ik_hand_{side}", "ik_hand_gun", wrist, wrist + [0, 0.1 * scale, 0], deform=False)

    for bone in bones:  # ours -> Blender
        bone["head"], bone["tail"] = to_blender(bone["head"]), to_blender(bone["tail"])
    if pose == "A":
        _lower_arms(bones)
    return bones


def _lower_arms(bones, degrees=45.0):
    """Turn each arm (the upper-arm bone and everything below it) down about the
    forward axis at the shoulder joint, rolls included."""
    by_name = {b["name"]: b for b in bones}
    children = {}
    for b in bones:
        children.setdefault(b["parent"], []).append(b["name"])
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = next(b["name"] for b in bones if b["role"] == (side, "shoulder"))
        pivot = by_name[shoulder]["head"].copy()
        # Blender's forward is -Y: a turn about +Y takes the left arm (+X) down to -Z.
        rotation = _axis_rotation([0.0, sign, 0.0], np.radians(degrees))
        stack = [shoulder]
        while stack:
            name = stack.pop()
            bone = by_name[name]
            matrix = bone_matrix(bone["tail"] - bone["head"], bone["roll"])
            bone["head"] = pivot + rotation @ (bone["head"] - pivot)
            bone["tail"] = pivot + rotation @ (bone["tail"] - pivot)
            bone["roll"] = _roll_of(rotation @ matrix)
            stack.extend(children.get(name, []))


def as_rig(bones, world=None) -> Rig:
    index = {b["name"]: i for i, b in enumerate(bones)}
    return Rig(
        names=tuple(b["name"] for b in bones),
        parents=np.array([index[b["parent"]] if b["parent"] is not None else -1 for b in bones]),
        heads=np.array([b["head"] for b in bones]),
        tails=np.array([b["tail"] for b in bones]),
        matrices=np.array([bone_matrix(b["tail"] - b["head"], b["roll"]) for b in bones]),
        deform=np.array([b["deform"] for b in bones]),
        world=np.eye(4) if world is None else world,
    )


def to_json(bones) -> str:
    return json.dumps([dict(b, head=list(map(float, b["head"])), tail=list(map(float, b["tail"])), role=None)
                       for b in bones])


# Blender code that builds an armature from to_json's output (call build_armature).
BUILD_CODE = '''
def build_armature(bones, name="Rig"):
    import bpy
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for b in bones:
        e = data.edit_bones.new(b["name"])
        e.head, e.tail, e.roll = b["head"], b["tail"], b["roll"]
        e.use_deform = b["deform"]
    for b in bones:
        if b["parent"] is not None:
            data.edit_bones[b["name"]].parent = data.edit_bones[b["parent"]]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj
'''
