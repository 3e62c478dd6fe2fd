"""Which bone of an armature is which SMPL-22 joint.

The structure decides. From the hierarchy and the rest pose alone: the body's up and
left-right axis (guess_body_frame), the feet as the lowest limb ends on each side and
the hands as the outermost, the pelvis where the legs and the head meet and the chest
where the arms meet, which end is left (the feet point forward). Along each chain
the joints sit where the geometry puts them: the ankle where the leg turns forward or
bends low down, the hip at the top of the leg's downward run (not a bone from the
pelvis's middle such as CMU's LHipJoint), the knee half-way; the wrist where fingers
branch, the shoulder out at the side of the chest where upper arm and forearm come out
alike, the collar before it; the head where eyes or a jaw branch or before its end
nub; the spine and neck between. Helper bones (twist, roll, IK, pole, end nubs, by
their names) and bones of no length are stepped over.

Names then refine: a bone name is split into words (camelCase, separators,
namespaces such as `mixamorig:`), its side is read off ("Left", "l", ".L", "_r",
ASF's glued "lfemur") and the rest compared with the naming conventions below. The
convention that explains most bones gives each joint a suggested bone, taken only if
it is one of the bones the structure allows for that joint ("Shoulder" is the upper
arm in BVH's Collar/Shoulder/Elbow/Wrist and the collar for Mixamo and Unity: only
one of the two starts out at the side). Where the feet cannot say which way the body
faces, the side words decide.

A map is a plain dict {SMPL joint name: bone name}; joints the rig lacks are absent.
"""

import functools
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
    "bvh collar / shoulder / elbow / wrist": {
        "prefixes": (),
        "pelvis": ("hips", "hip", "root"), "L_hip": ("hip", "upleg", "thigh"), "L_knee": ("knee", "lowleg"),
        "L_ankle": ("ankle", "foot"), "L_foot": ("toe", "toes"), "neck": ("neck",), "head": ("head",),
        "L_collar": ("collar",), "L_shoulder": ("shoulder", "uparm"), "L_elbow": ("elbow", "lowarm"),
        "L_wrist": ("wrist", "hand"),
    },
    "asf / amc": {
        "prefixes": (),
        "pelvis": ("root",), "L_hip": ("femur",), "L_knee": ("tibia",), "L_ankle": ("foot",), "L_foot": ("toes",),
        "spine1": ("lowerback",), "spine2": ("upperback",), "spine3": ("thorax",), "neck": ("lowerneck",),
        "head": ("head",), "L_collar": ("clavicle",), "L_shoulder": ("humerus",), "L_elbow": ("radius",),
        "L_wrist": ("wrist",),
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


# Every side-less core word of every convention: ASF glues the side to it ("lhumerus").
_CORES = frozenset(core for convention in CONVENTIONS.values() for key, cores in convention.items()
                   if key.startswith("L_") for core in cores) | {"hipjoint", "hand", "fingers", "thumb"}


@functools.lru_cache(maxsize=4096)
def _sided_words(name: str):
    """(side, words) of a bone name, also for a side letter glued to a known word
    (ASF's lfemur, rclavicle). Cached: every convention reads every name."""
    side, words = split_side(name_words(name))
    if side is None and len(words) == 1 and words[0][:1] in ("l", "r") and words[0][1:] in _CORES:
        side, words = _SIDE_WORDS[words[0][0]], [words[0][1:]]
    return side, tuple(words)


def _side_of(name: str):
    return _sided_words(name)[0]


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
        side, words = _sided_words(name)
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


# --- the structural reading: chains from the pelvis to the hands, feet and head -------

# Words that mark a bone as a helper (twist, roll, IK target, control, end nub): such a
# bone is never a joint, and a chain steps over it.
HELPER_WORDS = frozenset((
    "twist", "roll", "helper", "ik", "pole", "target", "ctrl", "ctr", "control", "mch", "nub", "end", "socket",
    "aux", "corrective", "jiggle", "attach", "prop", "weapon", "offset",
))


def is_helper(name: str) -> bool:
    """True for twist/roll/IK/control/end-nub bones (by their name's words)."""
    return any(word in HELPER_WORDS for word in _sided_words(name)[1])


class _Body:
    """What the hierarchy and rest geometry say about a rig, in body coordinates
    (columns left, up, forward): the end bones of the limbs, the pelvis and chest where
    they meet, and the chains of bones between them."""

    def __init__(self, rig: Rig, frame: np.ndarray):
        self.rig = rig
        self.heads = rig.heads @ frame
        self.tails = rig.tails @ frame
        points = np.concatenate([self.heads, self.tails])
        self.floor = points[:, 1].min()
        self.height = max(points[:, 1].max() - self.floor, 1e-9)
        # Helpers: named so (twist, IK, end nub...), or a leaf that deforms nothing in a
        # rig that has deforming bones (a hat, a sword, an IK target): not a limb's end.
        named_helper = np.array([is_helper(name) for name in rig.names])
        loose_leaf = np.array([not kids for kids in rig.children]) & ~rig.deform & rig.deform.any()
        self.helper = named_helper | loose_leaf
        # A bone of no length passes nothing on unless parts branch from it (CMU's hand
        # joint, where fingers and thumb start): a marker, a socket, a stacked joint.
        zero = rig.lengths < 1e-4 * self.height
        self.stacked = zero & np.array([len(kids) >= 2 for kids in rig.children])
        self.tiny = zero & ~self.stacked
        self.problems = []
        self.feet, self.hands, self.legs, self.arms = {}, {}, {}, {}
        self.pelvis = self.chest = self.top = -1
        self._read()

    def lateral(self, bone, side):
        """How far a bone's head is out on `side` (negative: on the other side)."""
        return (1.0 if side == "left" else -1.0) * self.heads[bone, 0]

    def joints(self, path):
        """The bones of a chain that can be joints: no helpers, nothing of no length."""
        return [b for b in path if not self.helper[b] and not self.tiny[b]]

    def _read(self):
        rig, h = self.rig, self.height
        # Ends of limbs: bones with nothing but helpers below them (a toe with its end
        # nub, a hand with its IK target).
        real_below = np.zeros(rig.count, bool)
        for bone in range(rig.count - 1, -1, -1):
            real_below[bone] = any(not self.helper[c] or real_below[c] for c in rig.children[bone])
        leaves = [b for b in range(rig.count) if not real_below[b] and not self.helper[b]]
        ends = self.tails
        # Feet: on each side, of the leaves near the lowest one, the one furthest forward
        # (a toe, not a heel). A leg ends near the floor: a side whose lowest leaf is
        # high up (a hand) has no leg.
        for side, sign in (("left", 1.0), ("right", -1.0)):
            outside = [b for b in leaves if sign * ends[b, 0] > 0.02 * h]
            if not outside:
                continue
            lowest = min(outside, key=lambda b: ends[b, 1])
            if ends[lowest, 1] - self.floor > 0.25 * h:
                continue
            ground = [b for b in outside if ends[b, 1] < ends[lowest, 1] + 0.04 * h]
            self.feet[side] = max(ground, key=lambda b: ends[b, 2])
        self.top = max(leaves, key=lambda b: ends[b, 1]) if leaves else -1
        if not self.feet:
            self.problems.append("no legs found: the rig needs two legs reaching down to the floor from the pelvis")
            return
        for side in ("left", "right"):
            if side not in self.feet:
                self.problems.append(f"no {side} leg found below the pelvis: the rig needs two legs")
        self.pelvis = rig.common_ancestor(list(self.feet.values()) + [self.top])
        if self.pelvis < 0 or self.pelvis in self.feet.values():
            self.problems.append("the legs and the head do not meet in one bone: no pelvis found")
            self.pelvis = -1
            return
        for side, foot in self.feet.items():
            others = [f for s, f in self.feet.items() if s != side]
            shared = set()
            for other in others:
                shared |= set(rig.ancestors(other)) | {other}
            self.legs[side] = [b for b in rig.path(self.pelvis, foot) if b not in shared]
            if not self.legs[side]:
                self.problems.append(f"the {side} foot shares its bones with the other leg: no {side} leg chain")
                del self.legs[side]

        # Hands: the outermost leaf on each side above the hips, below the pelvis.
        in_legs = set(b for chain in self.legs.values() for b in chain)
        hip_level = max(ends[f, 1] for f in self.feet.values()) + 0.35 * h
        body = [b for b in leaves if rig.is_ancestor(self.pelvis, b) and b not in in_legs]
        for side, sign in (("left", 1.0), ("right", -1.0)):
            candidates = [b for b in body if sign * ends[b, 0] > 0.05 * h and ends[b, 1] > hip_level]
            if candidates:
                self.hands[side] = max(candidates, key=lambda b: sign * ends[b, 0])
            else:
                self.problems.append(f"no {side} arm found: the rig needs an arm reaching out on each side of the chest")
        if len(self.hands) == 2:
            self.chest = rig.common_ancestor(list(self.hands.values()))
            if self.chest < 0 or self.chest in self.hands.values() or not (
                    self.chest == self.pelvis or rig.is_ancestor(self.pelvis, self.chest)):
                self.problems.append("the arms do not meet in a chest above the pelvis")
                self.chest = -1
        elif len(self.hands) == 1:
            # One arm: the chest is where it leaves the spine (the path to the top).
            hand = next(iter(self.hands.values()))
            self.chest = rig.common_ancestor([hand, self.top]) if self.top >= 0 else -1
        if self.chest >= 0:
            for side, hand in self.hands.items():
                if not rig.is_ancestor(self.chest, hand):
                    self.problems.append(f"the {side} arm does not hang from the chest")
                elif in_legs & set(rig.path(self.chest, hand)):
                    # A limb is an arm or a leg, not both (a rig read upside down).
                    self.problems.append(f"the {side} arm and a leg are one chain of bones")
                else:
                    self.arms[side] = rig.path(self.chest, hand)


def _bend_degrees(body: _Body, parent: int, bone: int) -> float:
    """The angle between two bones of a chain: where a limb bends in its rest pose."""
    a = normalize(body.tails[parent] - body.heads[parent])
    b = normalize(body.tails[bone] - body.heads[bone])
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


def _pick(candidates, named, default):
    """The bone a name chose when the structure allows it, else the structure's choice."""
    return named if named is not None and named in candidates else default


def _assign_leg(body: _Body, side: str, named: dict, mapping: dict):
    rig, heads, h = body.rig, body.heads, body.height
    chain = body.joints(body.legs[side])
    if len(chain) < 2:
        return
    prefix = f"{side}_"
    foot_end = body.tails[body.feet[side], 1]
    top = heads[chain[0], 1]
    leg = max(top - foot_end, 1e-9)
    down = [normalize(body.tails[b] - heads[b])[1] < -0.7 for b in chain]
    # Ankle: a joint in the lowest 30% of the leg; the first there that turns forward
    # (the foot), else the one where the leg bends most (a steep foot), else the lowest
    # (a leg without a foot bone ends in its ankle).
    low = [k for k in range(1, len(chain)) if heads[chain[k], 1] - foot_end < 0.3 * leg]
    if not low:
        return
    turning = [k for k in low if not down[k]]
    bends = {k: _bend_degrees(body, chain[k - 1], chain[k]) for k in low}
    bent = [k for k in low if bends[k] > 10.0]
    if turning:
        default = turning[0]
    elif bent:
        default = max(bent, key=lambda k: bends[k])
    else:
        default = low[-1]
    ankle = chain.index(_pick([chain[k] for k in low], named.get(prefix + "ankle"), chain[default]))
    mapping[prefix + "ankle"] = chain[ankle]
    # Toe: the bone after the ankle when it reaches forward of the ankle.
    after = chain[ankle + 1:]
    if after:
        toe = after[0]
        forward = heads[toe, 2] - heads[chain[ankle], 2] > 0.02 * h or body.tails[toe, 2] - heads[toe, 2] > 0.02 * h
        default_toe = toe if forward and rig.lengths[toe] > 0.01 * h else None
        toe = _pick(after, named.get(prefix + "foot"), default_toe)
        if toe is not None:
            mapping[prefix + "foot"] = toe
    # Hip: the top of the run of downward bones that ends at the ankle, not counting a
    # bone that starts on the body's midline (CMU's LHipJoint, ASF's lhipjoint: the
    # pelvis reaching out to the hip joint).
    start = ankle
    while start > 0 and down[start - 1]:
        start -= 1
    run = chain[start:ankle - 1] if ankle - start >= 2 else []
    if not run:
        # No downward run (a leg sideways in rest?): every bone above the knee may be it.
        run = chain[:ankle - 1]
    if not run:
        return
    off_midline = [b for b in run if body.lateral(b, side) > 0.015 * h]
    hip = _pick(run, named.get(prefix + "hip"), (off_midline or run)[0])
    # A leg stands: from hip to ankle it goes down (an arm read under the wrong axes
    # reaches sideways).
    if normalize(heads[chain[ankle]] - heads[hip])[1] > -0.8:
        del mapping[prefix + "ankle"]
        mapping.pop(prefix + "foot", None)
        body.problems.append(f"the {side} leg does not reach down from the hip to the ankle")
        return
    mapping[prefix + "hip"] = hip
    # Knee: between hip and ankle, the joint nearest half-way down (a twist bone in the
    # thigh sits a quarter of the way).
    between = chain[chain.index(hip) + 1: ankle]
    if between:
        middle = 0.5 * (heads[hip, 1] + heads[chain[ankle], 1])
        default_knee = min(between, key=lambda b: abs(heads[b, 1] - middle))
        mapping[prefix + "knee"] = _pick(between, named.get(prefix + "knee"), default_knee)


def _along(body: _Body, bone: int, child: int) -> bool:
    """True for a child that starts inside its parent and runs along it (a twist bone
    parented beside the next joint): it splits the bone, it does not branch from it."""
    head, tail = body.heads[bone], body.tails[bone]
    axis = tail - head
    length = np.linalg.norm(axis)
    if length < 1e-9:
        return False
    t = np.dot(body.heads[child] - head, axis) / length ** 2
    off_axis = np.linalg.norm(body.heads[child] - (head + t * axis))
    return 0.05 < t < 0.95 and off_axis < 0.05 * length and _bend_degrees(body, bone, child) < 15.0


def _branches(body: _Body, bone: int, jointed: bool = True) -> bool:
    """Parts branch from this bone (fingers and thumb from a hand; eyes, jaw or a hat
    from a head): two or more children that are not helpers nor twist bones along it
    -- for a hand (`jointed`) one of them with joints of its own, as a forearm's
    leaf helper has none -- or a stacked zero-length joint."""
    rig = body.rig
    kids = [c for c in rig.children[bone] if not body.helper[c] and not _along(body, bone, c)]
    return (len(kids) >= 2 and (not jointed or any(rig.children[c] for c in kids))) or bool(body.stacked[bone])


def _asymmetry(body: _Body, shoulder: int, elbow: int, wrist: int) -> float:
    """How unequal upper arm and forearm would be with these joints (0: equal)."""
    upper = np.linalg.norm(body.heads[elbow] - body.heads[shoulder])
    fore = np.linalg.norm(body.heads[wrist] - body.heads[elbow])
    return abs(upper - fore) / max(upper + fore, 1e-9)


def _assign_arm(body: _Body, side: str, named: dict, mapping: dict):
    rig, h = body.rig, body.height
    path = body.arms[side]
    prefix = f"{side}_"
    chain = body.joints(path)
    if len(chain) < 3:
        return
    # Wrist: where the fingers branch off, else the last bone that is not a tiny end nub.
    branching = [b for b in chain[2:] if _branches(body, b)]
    if branching:
        default = branching[0]
    else:
        default = chain[-1]
        while rig.lengths[default] < 0.02 * h and chain.index(default) > 2:
            default = chain[chain.index(default) - 1]
    # A name may move the wrist along the hand, never into the forearm: it must have
    # two joints (shoulder, elbow) before it.
    wrist = _pick(chain[2:], named.get(prefix + "wrist"), default)
    mapping[prefix + "wrist"] = wrist
    arm = chain[: chain.index(wrist)]
    # Elbow for a given shoulder: between it and the wrist, the joint about as far from
    # both (a twist bone sits a quarter of the way).
    def elbow_for(shoulder):
        between = arm[arm.index(shoulder) + 1:]
        return min(between, key=lambda b: _asymmetry(body, shoulder, b, wrist)) if between else None

    # Shoulder: a joint out at the side (a collar starts near the middle of the chest)
    # with an elbow after it; of several, the one that makes upper arm and forearm most
    # alike. Names choose between such joints: "Shoulder" is the upper arm in BVH's
    # Collar/Shoulder/Elbow/Wrist and the collar in Mixamo's and Unity's names.
    outer = [b for b in arm[:-1] if body.lateral(b, side) > 0.06 * h]
    candidates = outer or arm[-2:-1]
    if not candidates:
        return
    default = min(candidates, key=lambda b: _asymmetry(body, b, elbow_for(b), wrist))
    shoulder = _pick(candidates, named.get(prefix + "shoulder"), default)
    mapping[prefix + "shoulder"] = shoulder
    between = arm[arm.index(shoulder) + 1:]
    if between:
        mapping[prefix + "elbow"] = _pick(between, named.get(prefix + "elbow"), elbow_for(shoulder))
    # Collar: a bone between the chest and the shoulder.
    inner = arm[: arm.index(shoulder)]
    if inner:
        mapping[prefix + "collar"] = _pick(inner, named.get(prefix + "collar"), inner[0])


def _assign_head(body: _Body, named: dict, mapping: dict):
    """Head: on the way from the chest to the top, the first bone that parts branch
    from (eyes, jaw, a hat), else the last that is not a short end nub; the bones
    before it are the neck. A name may pick another bone of that way."""
    rig = body.rig
    if body.chest < 0 or body.top < 0 or not rig.is_ancestor(body.chest, body.top):
        return
    path = body.joints(rig.path(body.chest, body.top))
    if not path:
        return
    after_neck = path[1:] or path
    branching = [b for b in after_neck if _branches(body, b, jointed=False)]
    if branching:
        default = branching[0]
    else:
        # An end nub (a head-top marker) is short next to the skull it ends.
        k = len(after_neck) - 1
        while k > 0 and rig.lengths[after_neck[k]] < 0.35 * rig.lengths[after_neck[k - 1]]:
            k -= 1
        default = after_neck[k]
    mapping["head"] = _pick(path, named.get("head"), default)


def structural_map(rig: Rig, frame: np.ndarray, named: dict):
    """({joint: bone index}, [problems in words]) read from the hierarchy and rest
    geometry; `named` ({joint: bone index} from names) only chooses between bones
    the structure allows for a joint."""
    body = _Body(rig, frame)
    mapping = {}
    if body.pelvis >= 0:
        mapping["pelvis"] = body.pelvis
    for side in body.legs:
        _assign_leg(body, side, named, mapping)
    for side in body.arms:
        _assign_arm(body, side, named, mapping)
    _assign_head(body, named, mapping)
    # The spine and neck are read between pelvis, chest and head; names among them.
    for joint in SPINE + ("neck",):
        if joint in named:
            mapping[joint] = named[joint]
    problems = list(body.problems)
    for side in body.legs:
        if not all(f"{side}_{j}" in mapping for j in ("hip", "knee", "ankle")) and not any(
                p.startswith(f"the {side} leg") for p in problems):
            problems.append(f"the {side} leg chain has too few bones for hip, knee and ankle")
    for side in body.arms:
        if not all(f"{side}_{j}" in mapping for j in ("shoulder", "elbow", "wrist")):
            problems.append(f"the {side} arm chain has too few bones for shoulder, elbow and wrist")
    return mapping, problems


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


def _name_hints(rig: Rig) -> dict:
    """{joint: bone index} the names suggest: the convention whose names match the most
    bones. Only a hint: the structure decides which bones may be a joint."""
    best = {}
    for convention in CONVENTIONS.values():
        found = _named_map(rig, convention)
        if len(found) > len(best):
            best = found
    return best


def _side_vote(rig: Rig, left_axis: np.ndarray) -> float:
    """How strongly the side words of the names agree that `left_axis` points to the
    character's left: +1 all agree, -1 all disagree, 0 no sided names."""
    centre = 0.5 * (rig.heads.min(0) + rig.heads.max(0))
    votes = []
    for bone, name in enumerate(rig.names):
        side = _side_of(name)
        offset = float(np.dot(rig.heads[bone] - centre, left_axis))
        if side and abs(offset) > 1e-6:
            votes.append(np.sign(offset) * (1.0 if side == "left" else -1.0))
    return float(np.mean(votes)) if votes else 0.0


def _feet_point_forward(rig: Rig, frame: np.ndarray, mapping: dict) -> float:
    """Mean forward component of the ankle bones' directions (+1 straight ahead): feet
    point forward, so a negative value means `frame` has the body turned round (left
    and right swapped). Near 0 when the rig has no foot bones (a BVH ending in ankles)."""
    directions = [normalize(rig.tails[mapping[j]] - rig.heads[mapping[j]]) @ frame[:, 2]
                  for j in ("left_ankle", "right_ankle") if j in mapping]
    return float(np.mean(directions)) if directions else 0.0


def _axis_frames():
    """Every body frame (columns left, up, forward) made of the armature's axes."""
    axes = [sign * np.eye(3)[k] for k in range(3) for sign in (1.0, -1.0)]
    return [np.stack([left, up, np.cross(left, up)], axis=-1) for left in axes for up in axes
            if abs(np.dot(left, up)) < 0.5]


def _read_rig(rig: Rig, named: dict):
    """(frame, mapping, problems): the body's axes and the structural map.

    Up and the left-right axis come from the rest geometry (guess_body_frame). Which
    end of that axis is left follows the feet, which point forward from the ankles;
    when the feet show nothing (no foot bones), the names' side words decide, and
    without those the armature's +X is the left.
    """
    frame = guess_body_frame(rig)
    mapping, problems = structural_map(rig, frame, named)
    legs = ("left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle")
    if "pelvis" not in mapping:
        # No legs under the guessed axes (a rig without arms has most of its bones low,
        # which turns the guess upside down): axes under which two whole legs stand
        # below a pelvis are the body's.
        for candidate in _axis_frames():
            reading = structural_map(rig, candidate, named)
            if all(j in reading[0] for j in legs):
                frame, (mapping, problems) = candidate, reading
                break
    if problems and "pelvis" in mapping:
        # The guess rests on the body's symmetry and on most bones being in the upper
        # body; a rig that lacks a limb can mislead it. When it found legs meeting in a
        # pelvis but not a whole body, the armature axes under which the hierarchy
        # reads as most of a body win, so that the map is complete or the error names
        # what is really missing.
        def score(reading):
            return len(_missing(reading[0])), len(reading[1])

        for candidate in _axis_frames():
            reading = structural_map(rig, candidate, named)
            if score(reading) < score((mapping, problems)):
                frame, (mapping, problems) = candidate, reading
    forward = _feet_point_forward(rig, frame, mapping)
    if abs(forward) > 0.2:
        turned = forward < 0
    elif abs(_side_vote(rig, frame[:, 0])) > 0.5:
        turned = _side_vote(rig, frame[:, 0]) < 0
    else:
        # Nothing to tell: take Blender's convention (facing -Y, Z up) and that of Y-up
        # files (facing +Z), which agree that the character's left is +X.
        turned = frame[0, 0] < -0.5
    if turned:
        frame = frame * np.array([-1.0, 1.0, -1.0])
        mapping, problems = structural_map(rig, frame, named)
    return frame, mapping, problems


def map_bones(rig: Rig) -> dict:
    """{SMPL-22 joint name: bone name} for a humanoid armature.

    The structure decides: the chains from the pelvis to the feet, hands and head, and
    where along them each joint sits. Names only choose between bones the structure
    allows for a joint (which of two bones in the arm is the upper arm, say). Raises
    MappingError saying what is missing, in words and as SMPL joint names.
    """
    prefixes = {name.split("-", 1)[0] for name in rig.names if "-" in name}
    if {"DEF", "ORG", "MCH"} <= prefixes:
        raise MappingError(
            "this is a generated Rigify rig: its DEF- and ORG- bones follow constraints from the control bones, "
            "so keys on them would not move it, and retargeting onto Rigify's control bones is not supported yet; "
            "retarget onto the metarig or onto a rig of plain deform bones"
        )
    named = _name_hints(rig)
    _, mapping, problems = _read_rig(rig, named)
    mapping = _consistent(rig, _spine_and_neck(rig, mapping))
    missing = _missing(mapping)
    if missing:
        reason = "; ".join(problems) if problems else "the rig's chains do not give every joint a bone"
        raise MappingError(
            f"cannot map the armature to a humanoid: {reason} (no bone found for {', '.join(missing)}; "
            "edit the bone map to name them)"
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
