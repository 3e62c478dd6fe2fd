"""ASF/AMC (Acclaim skeleton and motion, the format of CMU's motion capture database).

The ASF file describes the skeleton: units, the root, one block per bone (`direction`
and `length` of the bone in the rest pose, in world axes; `axis` angles and their order,
which orient the bone's own frame C; the rotational degrees of freedom `dof` that the
motion animates; their `limits`) and the hierarchy. The AMC file holds, per frame, one
line per animated bone with its dof values.

Forward kinematics follows the Acclaim definition. Acclaim writes row vectors
(v' = v L with L = C^-1 M C B); with the column vectors used throughout this project
the same thing reads: a bone's world rotation is

    W_bone = W_parent @ C @ M @ C^-1

where M composes the frame's dof rotations in the order listed (first listed applied
first: "rx ry rz" gives M = Rz @ Ry @ Rx), and the bone's end is its start (its
parent's end) plus W_bone @ (length * direction). The root's end is its position. In
the rest pose every M is the identity, so the ends are plain sums of direction*length.

Only numpy: positions are computed for all frames at once, one bone at a time.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..rotation import axis_rotation_matrix

_ROTATION_DOFS = ("rx", "ry", "rz")
_TRANSLATION_DOFS = ("tx", "ty", "tz")


@dataclass
class AsfBone:
    name: str
    direction: np.ndarray  # (3,) unit vector, world axes, rest pose
    length: float  # in the file's length unit
    axis: np.ndarray  # (3,) angles of the bone frame C, radians, in the order of axis_order
    axis_order: str  # e.g. "XYZ": rotate about X first, then Y, then Z
    dofs: tuple = ()  # e.g. ("rx", "ry", "rz")
    limits: list = field(default_factory=list)  # (low, high) per dof, as written


@dataclass
class AsfSkeleton:
    name: str
    length_unit: float  # `:units length`: the file's lengths are in (1 / length_unit) inches
    angle_unit: str  # "deg" or "rad"
    root_order: tuple  # dof order of the root's AMC line, e.g. ("tx", "ty", "tz", "rx", "ry", "rz")
    root_axis_order: str
    root_position: np.ndarray  # (3,)
    root_orientation: np.ndarray  # (3,) radians, in root_axis_order
    bones: list  # AsfBone, in file order
    parents: dict  # bone name -> parent name ("root" for the root's children)

    @property
    def names(self) -> list:
        """Joint names of the positions forward kinematics returns: "root", then every
        bone parents-first (each entry is that bone's END)."""
        return ["root"] + [bone.name for bone in self.ordered_bones()]

    def bone(self, name: str) -> AsfBone:
        for bone in self.bones:
            if bone.name == name:
                return bone
        raise KeyError(name)

    def ordered_bones(self) -> list:
        """The bones, each after its parent (breadth first from the root)."""
        children = {}
        for child, parent in self.parents.items():
            children.setdefault(parent, []).append(child)
        order, queue = [], list(children.get("root", []))
        while queue:
            name = queue.pop(0)
            order.append(self.bone(name))
            queue.extend(children.get(name, []))
        return order

    def metres_per_unit(self) -> float:
        return 0.0254 / self.length_unit


@dataclass
class AmcMotion:
    frame_numbers: np.ndarray  # (T,) as written in the file
    values: dict  # name -> (T, dofs) float64, angles in radians, lengths in file units


def _fail(source, line, message):
    raise ValueError(f"{source}:{line}: {message}")


def _floats(tokens, count, source, line, what):
    if len(tokens) != count:
        _fail(source, line, f"{what} needs {count} numbers, got {len(tokens)}")
    try:
        return np.array([float(t) for t in tokens])
    except ValueError:
        _fail(source, line, f"{what}: not a number in {' '.join(tokens)!r}")


def _check_order(order, source, line):
    order = order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        _fail(source, line, f"rotation order must use X, Y and Z once each, got {order!r}")
    return order


def rotation_from_angles(angles: np.ndarray, order: str) -> np.ndarray:
    """Rotation matrices (..., 3, 3) for angles (..., len(order)) in radians applied
    about the world axes in `order`, the first one first (order "XYZ" -> Rz @ Ry @ Rx)."""
    angles = np.asarray(angles, dtype=np.float64)
    matrix = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3))
    for k, axis in enumerate(order):
        matrix = axis_rotation_matrix(axis.upper(), angles[..., k]) @ matrix
    return matrix


def parse_asf(text: str, source: str = "<asf>") -> AsfSkeleton:
    """Parse ASF text; errors name `source` and the line."""
    lines = [(number, raw.split("#", 1)[0].strip()) for number, raw in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line]
    units = {"length": 1.0, "angle": "deg", "mass": 1.0}
    root = {"order": None, "axis": "XYZ", "position": np.zeros(3), "orientation": np.zeros(3)}
    raw_bones, parents, parent_lines, name = [], {}, {}, "skeleton"
    section, bone, in_hierarchy = None, None, False
    for number, line in lines:
        tokens = line.split()
        if tokens[0].startswith(":"):
            if bone is not None:
                _fail(source, number, f"bone block '{bone.get('name', '?')}' has no 'end'")
            section = tokens[0][1:].lower()
            if section == "name" and len(tokens) > 1:
                name = tokens[1]
            continue
        if section == "units":
            if len(tokens) != 2:
                _fail(source, number, "a unit line is 'length|mass|angle VALUE'")
            key, value = tokens[0].lower(), tokens[1]
            if key == "angle":
                if value.lower() not in ("deg", "rad"):
                    _fail(source, number, f"angle unit must be deg or rad, got {value!r}")
                units["angle"] = value.lower()
            else:
                try:
                    units[key] = float(value)
                except ValueError:
                    _fail(source, number, f"unit {key} is not a number: {value!r}")
                if key == "length" and units[key] <= 0:
                    _fail(source, number, "the length unit must be positive")
        elif section == "root":
            key = tokens[0].lower()
            if key == "order":
                order = tuple(t.lower() for t in tokens[1:])
                unknown = [t for t in order if t not in _ROTATION_DOFS + _TRANSLATION_DOFS]
                if unknown or len(set(order)) != len(order):
                    _fail(source, number, f"root order: unknown or repeated channels {' '.join(tokens[1:])!r}")
                root["order"] = order
            elif key == "axis":
                if len(tokens) != 2:
                    _fail(source, number, "root axis needs one order such as XYZ")
                root["axis"] = _check_order(tokens[1], source, number)
            elif key in ("position", "orientation"):
                root[key] = _floats(tokens[1:], 3, source, number, f"root {key}")
            else:
                _fail(source, number, f"unknown root field {tokens[0]!r}")
        elif section == "bonedata":
            key = tokens[0].lower()
            if key == "begin":
                if bone is not None:
                    _fail(source, number, "'begin' inside a bone block")
                bone = {"line": number, "dofs": (), "limits": []}
            elif bone is None:
                _fail(source, number, f"{tokens[0]!r} outside a begin/end bone block")
            elif key == "end":
                for required in ("name", "direction", "length", "axis"):
                    if required not in bone:
                        _fail(source, number, f"bone block starting at line {bone['line']} has no {required}")
                if bone["dofs"] and len(bone["limits"]) not in (0, len(bone["dofs"])):
                    _fail(source, number, f"bone {bone['name']}: {len(bone['dofs'])} dofs but {len(bone['limits'])} limits")
                raw_bones.append(bone)
                bone = None
            elif key == "id":
                pass
            elif key == "name":
                if len(tokens) != 2:
                    _fail(source, number, "a bone name is one word")
                bone["name"] = tokens[1]
            elif key == "direction":
                direction = _floats(tokens[1:], 3, source, number, "direction")
                norm = np.linalg.norm(direction)
                # Zero-length bones may have a zero direction; others are unit vectors.
                bone["direction"] = direction / norm if norm > 0 else direction
            elif key == "length":
                bone["length"] = float(_floats(tokens[1:], 1, source, number, "length")[0])
                if bone["length"] < 0:
                    _fail(source, number, "a bone length cannot be negative")
            elif key == "axis":
                bone["axis"] = _floats(tokens[1:4], 3, source, number, "axis")
                if len(tokens) != 5:
                    _fail(source, number, "axis is three angles and an order, e.g. 'axis 0 0 20 XYZ'")
                bone["axis_order"] = _check_order(tokens[4], source, number)
            elif key == "dof":
                dofs = tuple(t.lower() for t in tokens[1:])
                unknown = [t for t in dofs if t not in _ROTATION_DOFS]
                if unknown:
                    # Acclaim allows translating and stretching bones; CMU never does.
                    _fail(source, number, f"dof {' '.join(unknown)} is not supported (only rx ry rz)")
                if len(set(dofs)) != len(dofs):
                    _fail(source, number, "a dof is repeated")
                bone["dofs"] = dofs
            elif key == "limits" or tokens[0].startswith("("):  # one (low high) pair per line
                pairs = tokens[1:] if key == "limits" else tokens
                joined = " ".join(pairs).replace("(", " ").replace(")", " ").split()
                bone["limits"].append(tuple(_floats(joined, 2, source, number, "a limit")))
            else:
                _fail(source, number, f"unknown bone field {tokens[0]!r}")
        elif section == "hierarchy":
            key = tokens[0].lower()
            if key == "begin":
                in_hierarchy = True
            elif key == "end":
                in_hierarchy = False
            elif not in_hierarchy:
                _fail(source, number, "hierarchy lines must be between begin and end")
            else:
                for child in tokens[1:]:
                    if child in parents:
                        _fail(source, number, f"bone {child} has two parents")
                    parents[child] = tokens[0]
                    parent_lines[child] = number
        elif section in (None,):
            _fail(source, number, f"text before the first section: {line!r}")
        # Other sections (:version, :documentation, ...) carry nothing we use.
    if bone is not None:
        _fail(source, bone["line"], "bone block has no 'end'")
    if root["order"] is None:
        _fail(source, len(text.splitlines()), "no :root section with an order line")
    scale = np.pi / 180.0 if units["angle"] == "deg" else 1.0
    bones = [AsfBone(b["name"], b["direction"], b["length"], b["axis"] * scale, b["axis_order"], b["dofs"], b["limits"])
             for b in raw_bones]
    known = {"root"}
    for raw, b in zip(raw_bones, bones):
        if b.name in known:
            _fail(source, raw["line"], f"bone name {b.name!r} is used twice (or a bone is called root)")
        known.add(b.name)
    for child, parent in parents.items():
        if child not in known or parent not in known:
            _fail(source, parent_lines[child], f"hierarchy names an unknown bone: {parent} -> {child}")
    for raw, b in zip(raw_bones, bones):
        if b.name not in parents:
            _fail(source, raw["line"], f"bone {b.name} is not in the hierarchy")
    skeleton = AsfSkeleton(name, units["length"], units["angle"], root["order"], root["axis"], root["position"],
                           root["orientation"] * scale, bones, parents)
    if len(skeleton.ordered_bones()) != len(bones):
        unreachable = sorted({b.name for b in bones} - {b.name for b in skeleton.ordered_bones()})
        _fail(source, parent_lines[unreachable[0]], f"bones not reachable from root (a cycle?): {', '.join(unreachable)}")
    return skeleton


def parse_amc(text: str, skeleton: AsfSkeleton, source: str = "<amc>") -> AmcMotion:
    """Parse AMC text for `skeleton`. Every frame must give every animated bone."""
    degrees = skeleton.angle_unit == "deg"
    counts = {"root": len(skeleton.root_order)} | {b.name: len(b.dofs) for b in skeleton.bones if b.dofs}
    rows = {name: [] for name in counts}
    frame_numbers, current, seen = [], None, set()

    def close_frame(line):
        missing = [name for name in counts if name not in seen]
        if missing:
            _fail(source, line, f"frame {frame_numbers[-1]} lacks {', '.join(missing)}")

    number = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            keyword = line.upper()
            if keyword == ":DEGREES":
                degrees = True
            elif keyword == ":RADIANS":
                degrees = False
            continue
        tokens = line.split()
        if len(tokens) == 1 and tokens[0].isdigit():
            if current is not None:
                close_frame(number)
            current = int(tokens[0])
            frame_numbers.append(current)
            seen = set()
            continue
        if current is None:
            _fail(source, number, f"bone values before the first frame number: {line!r}")
        name = tokens[0]
        if name not in counts:
            _fail(source, number, f"unknown or unanimated bone {name!r}")
        if name in seen:
            _fail(source, number, f"bone {name} twice in frame {current}")
        seen.add(name)
        rows[name].append(_floats(tokens[1:], counts[name], source, number, f"bone {name}"))
    if current is None:
        _fail(source, max(number, 1), "no frames")
    close_frame(number)
    angle_scale = np.pi / 180.0 if degrees else 1.0
    values = {}
    for name, row in rows.items():
        array = np.array(row, dtype=np.float64).reshape(len(frame_numbers), counts[name])
        dofs = skeleton.root_order if name == "root" else skeleton.bone(name).dofs
        rotational = np.array([d in _ROTATION_DOFS for d in dofs])
        array[:, rotational] *= angle_scale
        values[name] = array
    return AmcMotion(np.array(frame_numbers), values)


def read_asf(path) -> AsfSkeleton:
    path = Path(path)
    return parse_asf(path.read_text(encoding="utf-8", errors="replace"), str(path))


def read_amc(path, skeleton: AsfSkeleton) -> AmcMotion:
    path = Path(path)
    return parse_amc(path.read_text(encoding="utf-8", errors="replace"), skeleton, str(path))


def _dof_rotation(values: np.ndarray, dofs) -> np.ndarray:
    """M (T, 3, 3) from a bone's rotational dof values (T, len(dofs)), first dof first."""
    matrix = np.broadcast_to(np.eye(3), values.shape[:1] + (3, 3))
    for column, dof in enumerate(dofs):
        if dof in _ROTATION_DOFS:
            matrix = axis_rotation_matrix(dof[1].upper(), values[:, column]) @ matrix
    return matrix


def forward_kinematics(skeleton: AsfSkeleton, motion: AmcMotion | None = None):
    """World positions (T, J, 3) in the file's length unit, joints in `skeleton.names`
    order (the root, then each bone's END). Without a motion: the rest pose, T = 1.
    Returns (positions, world rotations (T, J, 3, 3))."""
    frames = 1 if motion is None else len(motion.frame_numbers)
    ordered = skeleton.ordered_bones()
    index = {name: k for k, name in enumerate(skeleton.names)}
    positions = np.zeros((frames, len(index), 3))
    rotations = np.zeros((frames, len(index), 3, 3))
    root_frame = rotation_from_angles(skeleton.root_orientation, skeleton.root_axis_order)
    if motion is None:
        positions[:, 0] = skeleton.root_position
        rotations[:, 0] = np.eye(3)
    else:
        root_values = motion.values["root"]
        order = skeleton.root_order
        translation = np.zeros((frames, 3))
        for column, dof in enumerate(order):
            if dof in _TRANSLATION_DOFS:
                translation[:, "xyz".index(dof[1])] = root_values[:, column]
        # The AMC's root translation is the root's position (CMU's ASF position is 0).
        positions[:, 0] = translation
        rotations[:, 0] = root_frame @ _dof_rotation(root_values, order) @ root_frame.T
    for bone in ordered:
        parent = index[skeleton.parents[bone.name]]
        frame = rotation_from_angles(bone.axis, bone.axis_order)
        if motion is not None and bone.dofs:
            local = frame @ _dof_rotation(motion.values[bone.name], bone.dofs) @ frame.T
            world = rotations[:, parent] @ local
        else:
            world = rotations[:, parent]
        joint = index[bone.name]
        rotations[:, joint] = world
        positions[:, joint] = positions[:, parent] + world @ (bone.length * bone.direction)
    return positions, rotations
