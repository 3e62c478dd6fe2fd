"""Which bone of an armature is which SMPL-22 joint.

Names first: a bone name is split into words (camelCase, separators, namespaces such
as `mixamorig:`), its side is read off ("Left", "l", ".L", "_r", ...) and the rest is
compared with the naming conventions below; the convention that explains most joints
wins. The spine and neck are then read from the hierarchy (any number of segments),
and a structural fallback that needs no names fills what is still missing: the body's
up, left and forward from the rest pose, the legs as the paths to the lowest points on
each side, the arms as the paths to the outermost points, the pelvis and chest where
those paths meet.

A map is a plain dict {SMPL joint name: bone name}; joints the rig lacks are absent.
"""

import re

import numpy as np

from .rig import Rig
from .rotation import normalize
from .skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS

# Joints a humanoid must have for retargeting to mean anything; the rest are optional.
REQUIRED = (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
SPINE = ("spine1", "spine2", "spine3")


class MappingError(ValueError):
    """The rig cannot be mapped; the message names the joints that are missing."""


# Per convention: words stripped from the front of every name, and for each joint the
# side-less names it may have (lower case, no separators, numbers without leading
# zeros). "L" stands for both sides. Spine segments come from the hierarchy.
CONVENTIONS = {
    "smpl": {
        "prefixes": (("m", "avg"), ("f", "avg"), ("smplx",), ("smpl",)),
        "pelvis": ("pelvis",), "L_hip": ("hip",), "L_knee": ("knee",), "L_ankle": ("ankle",),
        "L_foot": ("foot",), "neck": ("neck",), "head": ("head",), "L_collar": ("collar",),
        "L_shoulder": ("shoulder",), "L_elbow": ("elbow",), "L_wrist": ("wrist",),
        "spine1": ("spine1",), "spine2": ("spine2",), "spine3": ("spine3",),
    },
    "mixamo / BVH": {
        "prefixes": (("mixamorig",), ("mixamorig", "1"), ("mixamorig", "2"), ("mixamorig", "3")),
        "pelvis": ("hips", "hip"), "L_hip": ("upleg", "thigh"), "L_knee": ("leg", "shin"), "L_ankle": ("foot",),
        "L_foot": ("toebase", "toe"), "neck": ("neck",), "head": ("head",), "L_collar": ("shoulder",),
        "L_shoulder": ("arm", "upperarm"), "L_elbow": ("forearm",), "L_wrist": ("hand",),
    },
    "rigify": {
        "prefixes": (),
        "pelvis": ("spine",), "L_hip": ("thigh",), "L_knee": ("shin",), "L_ankle": ("foot",),
        "L_foot": ("toe",), "neck": ("spine4",), "head": ("spine6",), "L_collar": ("shoulder",),
        "L_shoulder": ("upperarm",), "L_elbow": ("forearm",), "L_wrist": ("hand",),
    },
    "rigify deform": {
        "prefixes": (("def",),),
        "pelvis": ("spine",), "L_hip": ("thigh",), "L_knee": ("shin",), "L_ankle": ("foot",),
        "L_foot": ("toe",), "neck": ("spine4",), "head": ("spine6",), "L_collar": ("shoulder",),
        "L_shoulder": ("upperarm",), "L_elbow": ("forearm",), "L_wrist": ("hand",),
    },
    "unreal": {
        "prefixes": (),
        "pelvis": ("pelvis",), "L_hip": ("thigh",), "L_knee": ("calf",), "L_ankle": ("foot",),
        "L_foot": ("ball",), "neck": ("neck1", "neck"), "head": ("head",), "L_collar": ("clavicle",),
        "L_shoulder": ("upperarm",), "L_elbow": ("lowerarm",), "L_wrist": ("hand",),
    },
    "vrm": {
        "prefixes": (("j", "bip", "c"), ("j", "bip"), ("j", "sec")),
        "pelvis": ("hips",), "L_hip": ("upperleg",), "L_knee": ("lowerleg",), "L_ankle": ("foot",),
        "L_foot": ("toes", "toebase", "toe"), "neck": ("neck",), "head": ("head",), "L_collar": ("shoulder",),
        "L_shoulder": ("upperarm",), "L_elbow": ("lowerarm",), "L_wrist": ("hand",),
    },
    "character creator": {
        "prefixes": (("cc", "base"), ("rl",)),
        "pelvis": ("hip",), "L_hip": ("thigh",), "L_knee": ("calf",), "L_ankle": ("foot",),
        "L_foot": ("toebase",), "neck": ("necktwist1",), "head": ("head",), "L_collar": ("clavicle",),
        "L_shoulder": ("upperarm",), "L_elbow": ("forearm",), "L_wrist": ("hand",),
    },
    "daz": {
        "prefixes": (),
        "pelvis": ("hip",), "L_hip": ("thighbend", "thigh"), "L_knee": ("shin",), "L_ankle": ("foot",),
        "L_foot": ("toe",), "neck": ("necklower", "neck"), "head": ("head",), "L_collar": ("collar",),
        "L_shoulder": ("shldrbend", "shldr"), "L_elbow": ("forearmbend", "forearm"), "L_wrist": ("hand",),
    },
    "3ds max biped": {
        "prefixes": (("bip01",), ("bip1",), ("bip", "1")),
        "pelvis": ("pelvis",), "L_hip": ("thigh",), "L_knee": ("calf",), "L_ankle": ("foot",),
        "L_foot": ("toe0", "toe"), "neck": ("neck",), "head": ("head",), "L_collar": ("clavicle",),
        "L_shoulder": ("upperarm",), "L_elbow": ("forearm",), "L_wrist": ("hand",),
    },
}

_SIDE_WORDS = {"l": "left", "left": "left", "lft": "left", "r": "right", "right": "right", "rgt": "right"}


def name_words(name: str) -> list:
    """A bone name as lower-case words: namespaces dropped, camelCase and separators
    split, numbers without leading zeros ("mixamorig:LeftUpLeg" -> left up leg)."""
    name = re.split(r"[:|]", str(name))[-1]
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    name = re.sub(r"([A-Z])([A-Z][a-z])", r"\1 \2", name)
    name = re.sub(r"([A-Za-z])(\d)", r"\1 \2", name)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name.lower()) if w]
    return [str(int(w)) if w.isdigit() else w for w in words]


def split_side(words: list):
    """(side, remaining words): side is 'left', 'right' or None."""
    for k, word in enumerate(words):
        side = _SIDE_WORDS.get(word)
        # A single letter counts as a side only at either end or between words
        # (CC_Base_L_Thigh); 'left'/'right' anywhere.
        if side and (len(word) > 1 or k in (0, len(words) - 1) or len(words) > 2):
            return side, words[:k] + words[k + 1:]
    return None, words


def _core(words: list, prefixes) -> str:
    for prefix in sorted(prefixes, key=len, reverse=True):
        if tuple(words[: len(prefix)]) == tuple(prefix):
            words = words[len(prefix):]
            break
    # Numbers glued back to their word: spine 1 -> spine1, toe 0 -> toe0.
    return "".join(words)


def _named_map(rig: Rig, convention: dict) -> dict:
    """{joint: bone index} for the joints this convention's names explain."""
    wanted = {}
    for key, cores in convention.items():
        if key == "prefixes":
            continue
        if key.startswith("L_"):
            wanted.update({(side, core): f"{side}_{key[2:]}" for side in ("left", "right") for core in cores})
        else:
            wanted.update({(None, core): key for core in cores})
    priority = {}
    for key, cores in convention.items():
        if key != "prefixes":
            for rank, core in enumerate(cores):
                priority[core] = rank
    found = {}
    for bone, name in enumerate(rig.names):
        side, words = split_side(name_words(name))
        core = _core(words, convention["prefixes"])
        joint = wanted.get((side, core))
        if joint is None:
            continue
        # Several bones can carry a name (a twist copy, a duplicate): prefer the
        # convention's first spelling, then deforming bones, then the shallowest.
        rank = (priority[core], not rig.deform[bone], len(rig.ancestors(bone)))
        if joint not in found or rank < found[joint][0]:
            found[joint] = (rank, bone)
    return {joint: bone for joint, (_, bone) in found.items()}


def _consistent(rig: Rig, mapping: dict) -> dict:
    """Drop joints whose bone is not below the bone of their nearest mapped SMPL
    ancestor (a name that matched the wrong thing)."""
    kept = {}
    for joint in JOINT_NAMES:
        if joint not in mapping:
            continue
        parent = PARENTS[JOINT_INDEX[joint]]
        while parent >= 0 and JOINT_NAMES[parent] not in kept:
            parent = PARENTS[parent]
        if parent < 0 or rig.is_ancestor(kept[JOINT_NAMES[parent]], mapping[joint]):
            if joint == "pelvis" or parent >= 0:
                kept[joint] = mapping[joint]
    return kept


# --- the body's axes and the structural reading ---------------------------------------

def _snap(axis: np.ndarray, degrees: float = 25.0) -> np.ndarray:
    """The coordinate axis nearest to `axis` when within `degrees`, else `axis`."""
    k = int(np.argmax(np.abs(axis)))
    if abs(axis[k]) >= np.cos(np.radians(degrees)):
        snapped = np.zeros(3)
        snapped[k] = np.sign(axis[k])
        return snapped
    return axis


def body_frame(up, left) -> np.ndarray:
    """Rotation (3, 3) whose columns are the body's left, up and forward in armature
    space (ours is X left, Y up, Z forward), snapped to the armature's axes when close."""
    up = _snap(normalize(np.asarray(up, dtype=np.float64)))
    left = np.asarray(left, dtype=np.float64)
    left = _snap(normalize(left - np.dot(left, up) * up))
    left = normalize(left - np.dot(left, up) * up)
    forward = np.cross(left, up)
    return np.stack([left, up, forward], axis=-1)


def _points(rig: Rig) -> np.ndarray:
    return np.concatenate([rig.heads, rig.tails])


def guess_body_frame(rig: Rig) -> np.ndarray:
    """The body's axes from rest geometry alone (no names).

    The body is left-right symmetric, so the lateral axis is the armature axis across
    which the bone positions mirror best. Of the other two, up is the longer; it points
    to the end that holds most bones (the upper body: spine, arms, hands, head).
    """
    points = _points(rig)
    centre = 0.5 * (points.min(0) + points.max(0))
    extent = points.max(0) - points.min(0)
    size = max(extent.max(), 1e-9)
    scores = []
    for axis in range(3):
        mirrored = points.copy()
        mirrored[:, axis] = 2 * centre[axis] - mirrored[:, axis]
        distances = np.linalg.norm(points[:, None, :] - mirrored[None, :, :], axis=-1).min(axis=1)
        scores.append(np.mean(distances) / size)
    lateral = int(np.argmin(scores))
    others = [a for a in range(3) if a != lateral]
    vertical = max(others, key=lambda a: extent[a])
    depth = [a for a in others if a != vertical][0]
    heights = points[:, vertical]
    # Most bones are in the upper body (spine, arms, hands, head), so the median point
    # lies above the middle of the body's height.
    up_sign = 1.0 if np.median(heights) >= centre[vertical] else -1.0
    low = points[up_sign * heights <= np.quantile(up_sign * heights, 0.08)]
    up = np.zeros(3)
    up[vertical] = up_sign
    # Forward: toes stick out in front of the ankles, so the lowest points lie ahead of
    # the body's middle.
    forward_sign = np.sign(np.mean(low[:, depth]) - np.median(points[:, depth])) or 1.0
    forward = np.zeros(3)
    forward[depth] = forward_sign
    left = np.cross(up, forward)
    return np.stack([left, up, forward], axis=-1)


def _structural_map(rig: Rig, frame: np.ndarray, known: dict) -> dict:
    """Joints read from the hierarchy and rest geometry; `known` joints are kept."""
    local = _points(rig) @ frame  # columns: left, up, forward
    heads = rig.heads @ frame
    tails = rig.tails @ frame
    height = local[:, 1].max() - local[:, 1].min()
    mapping = dict(known)
    leaves = [b for b in range(rig.count) if not rig.children[b]]
    end_points = tails  # a leaf reaches as far as its tail

    def extreme_leaf(side_sign, key):
        candidates = [b for b in leaves if side_sign * end_points[b, 0] > 0.02 * height]
        return max(candidates, key=key) if candidates else None

    # Feet: of the leaves near the ground on each side, the one furthest forward (a toe,
    # not a heel); hands: the outermost leaf on each side above the hips.
    feet = {}
    for side, sign in (("left", 1), ("right", -1)):
        lowest = extreme_leaf(sign, lambda b: -end_points[b, 1])
        if lowest is None:
            return mapping
        ground = [b for b in leaves if sign * end_points[b, 0] > 0.02 * height
                  and end_points[b, 1] < end_points[lowest, 1] + 0.04 * height]
        feet[side] = max(ground, key=lambda b: end_points[b, 2])
    top = max(leaves, key=lambda b: end_points[b, 1])
    pelvis = mapping.get("pelvis", rig.common_ancestor([feet["left"], feet["right"], top]))
    if pelvis < 0:
        return mapping
    mapping.setdefault("pelvis", pelvis)
    body = [b for b in leaves if rig.is_ancestor(mapping["pelvis"], b)]
    hip_level = max(end_points[feet["left"], 1], end_points[feet["right"], 1]) + 0.35 * height
    hands = {}
    for side, sign in (("left", 1), ("right", -1)):
        candidates = [b for b in body if sign * end_points[b, 0] > 0.05 * height and end_points[b, 1] > hip_level]
        hands[side] = max(candidates, key=lambda b: sign * end_points[b, 0]) if candidates else None

    # Legs: the part of the path to the foot below the pelvis that belongs to one side.
    for side in ("left", "right"):
        other = "right" if side == "left" else "left"
        shared = set(rig.ancestors(feet[other])) | {feet[other]}
        path = [b for b in rig.path(mapping["pelvis"], feet[side]) if b not in shared]
        if not path:
            continue
        prefix = f"{side}_"
        vertical = [abs(normalize(tails[b] - heads[b])[1]) > 0.7 for b in path]
        top_y, bottom_y = heads[path[0], 1], end_points[feet[side], 1]
        leg = top_y - bottom_y
        # Ankle: the first bone low in the leg that is not vertical (the foot).
        ankle = next((k for k, b in enumerate(path) if not vertical[k] and heads[b, 1] - bottom_y < 0.3 * leg
                      and k > 0), None)
        if ankle is None:
            continue
        if prefix + "ankle" not in mapping:
            mapping[prefix + "ankle"] = path[ankle]
        if prefix + "foot" not in mapping and ankle + 1 < len(path) and rig.lengths[path[ankle + 1]] > 0.01 * height:
            toe = path[ankle + 1]
            # A toe bone starts ahead of the ankle; an end nub pointing nowhere is not one.
            if heads[toe, 2] - heads[path[ankle], 2] > 0.02 * height:
                mapping[prefix + "foot"] = toe
        # Hip: the top of the run of vertical bones that ends at the ankle.
        start = ankle
        while start > 0 and vertical[start - 1]:
            start -= 1
        if prefix + "hip" not in mapping and start < ankle:
            mapping[prefix + "hip"] = path[start]
        hip = mapping.get(prefix + "hip")
        if prefix + "knee" not in mapping and hip is not None and hip in path:
            between = path[path.index(hip) + 1: ankle]
            if between:
                middle = 0.5 * (heads[hip, 1] + heads[path[ankle], 1])
                mapping[prefix + "knee"] = min(between, key=lambda b: abs(heads[b, 1] - middle))

    # Arms: the side-specific part of the path from the pelvis to the outermost point.
    if None not in hands.values():
        chest = rig.common_ancestor([hands["left"], hands["right"]])
        for side, sign in (("left", 1), ("right", -1)):
            prefix = f"{side}_"
            if chest < 0 or not rig.is_ancestor(chest, hands[side]):
                continue
            path = rig.path(chest, hands[side])
            wrist = mapping.get(prefix + "wrist")
            if wrist is None or wrist not in path:
                # The hand: the first bone on the path where fingers branch off (two or
                # more children that have children of their own; a twist bone has
                # none); else the last bone that is not a tiny end nub.
                branching = [b for b in path if sum(1 for c in rig.children[b] if rig.children[c]) >= 2]
                if branching:
                    wrist = branching[0]
                else:
                    wrist = path[-1]
                    while rig.lengths[wrist] < 0.02 * height and rig.parents[wrist] in path:
                        wrist = int(rig.parents[wrist])
                mapping.setdefault(prefix + "wrist", wrist)
            wrist = mapping[prefix + "wrist"]
            if wrist not in path:
                continue
            arm = path[: path.index(wrist)]
            if not arm:
                continue
            # A collar starts near the body's middle; the shoulder is the first joint
            # out at the side.
            lateral = [sign * heads[b, 0] for b in arm]
            collar_width = 0.06 * height
            if prefix + "shoulder" not in mapping:
                outer = [k for k, x in enumerate(lateral) if x > collar_width]
                if not outer:
                    continue
                shoulder_at = outer[0]
                mapping[prefix + "shoulder"] = arm[shoulder_at]
                if shoulder_at > 0 and prefix + "collar" not in mapping:
                    mapping[prefix + "collar"] = arm[shoulder_at - 1] if shoulder_at == 1 else arm[0]
            shoulder = mapping[prefix + "shoulder"]
            if prefix + "elbow" not in mapping and shoulder in arm:
                between = arm[arm.index(shoulder) + 1:]
                if between:
                    # The elbow: the joint nearest the middle of shoulder-to-wrist.
                    a, c = heads[shoulder], heads[wrist]
                    mapping[prefix + "elbow"] = min(
                        between, key=lambda b: abs(np.linalg.norm(heads[b] - a) - np.linalg.norm(heads[b] - c)))

    # Head: on the way from the chest to the top, the bone nearest to a third of the way
    # from the neck's base to the top (the rest is skull).
    if "head" not in mapping and top >= 0:
        arms = [mapping[j] for j in ("left_collar", "right_collar", "left_shoulder", "right_shoulder") if j in mapping]
        chest = rig.common_ancestor(arms) if len(arms) >= 2 else -1
        if chest >= 0 and rig.is_ancestor(chest, top):
            path = rig.path(chest, top)
            if len(path) >= 2:
                base = heads[path[0]]
                target = 0.35 * np.linalg.norm(end_points[top] - base)
                mapping["head"] = min(path[1:], key=lambda b: abs(np.linalg.norm(heads[b] - base) - target))
            elif path:
                mapping["head"] = path[0]
    return mapping


def _spine_and_neck(rig: Rig, mapping: dict) -> dict:
    """spine1..3 and neck from the hierarchy between pelvis, chest and head."""
    mapping = dict(mapping)
    arms = [mapping[j] for j in ("left_collar", "right_collar") if j in mapping]
    if len(arms) < 2:
        arms = [mapping[j] for j in ("left_shoulder", "right_shoulder") if j in mapping]
    if "pelvis" not in mapping or len(arms) < 2:
        return mapping
    chest = rig.common_ancestor(arms)
    pelvis = mapping["pelvis"]
    named = {j: mapping.pop(j) for j in SPINE if j in mapping}
    if chest != pelvis and rig.is_ancestor(pelvis, chest):
        chain = rig.path(pelvis, chest)
        if all(b in chain for b in named.values()) and len(named) == min(3, len(chain)) and named.get("spine3") == chest:
            mapping.update(named)
        else:
            count = len(chain)
            if count == 1:
                picks = {"spine3": chain[0]}
            elif count == 2:
                picks = {"spine1": chain[0], "spine3": chain[1]}
            else:
                picks = {j: chain[int(round(k * (count - 1) / 2))] for k, j in enumerate(SPINE)}
            mapping.update(picks)
    head = mapping.get("head")
    if head is not None and rig.is_ancestor(chest, head):
        between = rig.path(chest, head)[:-1]
        if mapping.get("neck") not in between:
            mapping.pop("neck", None)
            if between:
                mapping["neck"] = between[0]
    return mapping


def _frame_from_map(rig: Rig, mapping: dict):
    if not all(j in mapping for j in ("pelvis", "left_hip", "right_hip")):
        return None
    top = next((mapping[j] for j in ("head", "neck", "spine3", "spine2") if j in mapping), None)
    if top is None:
        return None
    up = rig.heads[top] - rig.heads[mapping["pelvis"]]
    left = rig.heads[mapping["left_hip"]] - rig.heads[mapping["right_hip"]]
    if np.linalg.norm(up) < 1e-6 or np.linalg.norm(left) < 1e-6:
        return None
    return body_frame(up, left)


def _missing(mapping: dict) -> list:
    return [j for j in REQUIRED if j not in mapping]


def detect_convention(rig: Rig):
    """(convention name, {joint: bone index}) of the naming convention that explains
    the most joints, or (None, {})."""
    best_name, best = None, {}
    for name, convention in CONVENTIONS.items():
        found = _consistent(rig, _named_map(rig, convention))
        if len(found) > len(best):
            best_name, best = name, found
    return best_name, best


def map_bones(rig: Rig) -> dict:
    """{SMPL-22 joint name: bone name} for a humanoid armature.

    Raises MappingError naming the required joints that could not be found.
    """
    prefixes = {name.split("-", 1)[0] for name in rig.names if "-" in name}
    if {"DEF", "ORG", "MCH"} <= prefixes:
        raise MappingError(
            "this is a generated Rigify rig: its DEF- and ORG- bones follow constraints from the control bones, "
            "so keys on them would not move it, and retargeting onto Rigify's control bones is not supported yet; "
            "retarget onto the metarig or onto a rig of plain deform bones"
        )
    _, named = detect_convention(rig)
    if len(named) < 4:
        named = {}
    mapping = dict(named)
    frame = _frame_from_map(rig, mapping)
    if frame is None:
        frame = guess_body_frame(rig)
    if _missing(mapping) or any(j not in mapping for j in ("head", "left_foot", "right_foot")):
        mapping = _consistent(rig, _structural_map(rig, frame, mapping))
    mapping = _consistent(rig, _spine_and_neck(rig, mapping))
    missing = _missing(mapping)
    if missing:
        raise MappingError(
            "cannot map the armature to a humanoid: no bone found for " + ", ".join(missing)
            + " (edit the bone map to name them)"
        )
    return {joint: rig.names[mapping[joint]] for joint in JOINT_NAMES if joint in mapping}


def validate_bone_map(rig: Rig, bone_map: dict) -> dict:
    """Check a (user-edited) map: known joints, existing bones, no bone twice, the
    required joints present, each bone below its SMPL parent's bone. Returns it as
    {joint: bone name} in SMPL order; raises MappingError naming what is wrong."""
    if not isinstance(bone_map, dict):
        raise MappingError("the bone map must be a mapping of SMPL joint names to bone names")
    unknown = [j for j in bone_map if j not in JOINT_INDEX]
    if unknown:
        raise MappingError("unknown SMPL joints in the bone map: " + ", ".join(map(str, unknown)))
    clean = {j: b for j, b in bone_map.items() if b}
    absent = [f"{j} -> {b}" for j, b in clean.items() if b not in rig.index]
    if absent:
        raise MappingError("the bone map names bones the armature does not have: " + ", ".join(absent))
    seen = {}
    for joint, bone in clean.items():
        if bone in seen:
            raise MappingError(f"bone {bone} is mapped twice ({seen[bone]} and {joint})")
        seen[bone] = joint
    missing = _missing(clean)
    if missing:
        raise MappingError("the bone map has no bone for " + ", ".join(missing))
    indices = {j: rig.index[b] for j, b in clean.items()}
    consistent = _consistent(rig, indices)
    wrong = [j for j in indices if j not in consistent]
    if wrong:
        raise MappingError(
            "these bones are not below the bone of their parent joint: "
            + ", ".join(f"{j} -> {clean[j]}" for j in wrong)
        )
    return {j: clean[j] for j in JOINT_NAMES if j in clean}
