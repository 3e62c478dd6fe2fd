"""BVH: write the SMPL-22 skeleton, read any BVH hierarchy.

Writing uses the motion's own rest offsets and local rotations, so Blender's BVH
importer (and any other) shows the same joint positions. Reading parses the hierarchy
and the motion block first, then computes world positions for every joint with forward
kinematics vectorized over frames.
"""

import re
from dataclasses import dataclass

import numpy as np

from ..motion import Motion
from ..rotation import axis_rotation_matrix, matrix_to_euler, matrix_to_quat, normalize, quat_to_matrix, unwrap_euler
from ..skeleton import JOINT_COUNT, JOINT_NAMES, PARENTS

# Rotation channel order written for every joint: Z, then Y, then X (R = Rz Ry Rx).
_WRITE_ORDER = "ZYX"
# Length of the End Site after each leaf joint, metres, along its rest direction.
_END_SITE = {"left_foot": 0.06, "right_foot": 0.06, "head": 0.12, "left_wrist": 0.08, "right_wrist": 0.08}


@dataclass
class BvhData:
    names: list
    parents: list
    offsets: np.ndarray  # (J, 3)
    channels: list  # per joint, e.g. ["Xposition", ..., "Zrotation"]
    values: np.ndarray  # (T, total channels)
    frame_time: float

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


def write_bvh(motion: Motion, stream, scale: float = 1.0) -> None:
    """Write a Motion as BVH text to an open text stream. `scale` converts metres to the
    file's unit (1 keeps metres, which Blender imports at true size; 100 gives cm)."""
    offsets = motion.offsets * scale
    children = {j: [c for c in range(JOINT_COUNT) if PARENTS[c] == j] for j in range(JOINT_COUNT)}
    lines = ["HIERARCHY"]

    def emit(joint, depth):
        pad = "\t" * depth
        keyword = "ROOT" if joint == 0 else "JOINT"
        lines.append(f"{pad}{keyword} {JOINT_NAMES[joint]}")
        lines.append(f"{pad}{{")
        offset = np.zeros(3) if joint == 0 else offsets[joint]
        lines.append(f"{pad}\tOFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        rotation_channels = " ".join(f"{axis}rotation" for axis in _WRITE_ORDER)
        if joint == 0:
            lines.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rotation_channels}")
        else:
            lines.append(f"{pad}\tCHANNELS 3 {rotation_channels}")
        for child in children[joint]:
            emit(child, depth + 1)
        if not children[joint]:
            tip = normalize(motion.offsets[joint]) * _END_SITE.get(JOINT_NAMES[joint], 0.05) * scale
            lines.append(f"{pad}\tEnd Site")
            lines.append(f"{pad}\t{{")
            lines.append(f"{pad}\t\tOFFSET {tip[0]:.6f} {tip[1]:.6f} {tip[2]:.6f}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    # Channels are written in the depth-first order of the hierarchy above.
    order = []

    def visit(joint):
        order.append(joint)
        for child in children[joint]:
            visit(child)

    visit(0)
    angles = np.degrees(unwrap_euler(matrix_to_euler(quat_to_matrix(motion.rotations), _WRITE_ORDER), axis=0))
    root = motion.root_translation + motion.offsets[0]
    columns = [root * scale] + [angles[:, j] for j in order]
    table = np.concatenate(columns, axis=1)
    lines.append("MOTION")
    lines.append(f"Frames: {motion.frames}")
    lines.append(f"Frame Time: {1.0 / motion.fps:.8f}")
    stream.write("\n".join(lines) + "\n")
    np.savetxt(stream, table, fmt="%.6f")


def parse_bvh(text: str) -> BvhData:
    """Parse BVH text; raises ValueError naming the line that is wrong."""
    tokens = re.findall(r"\S+", text)
    if not tokens or tokens[0] != "HIERARCHY":
        raise ValueError("not a BVH file: it does not start with HIERARCHY")
    pos = 1
    names, parents, offsets, channels = [], [], [], []
    stack = []

    def expect(word):
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] != word:
            found = tokens[pos] if pos < len(tokens) else "end of file"
            raise ValueError(f"BVH: expected '{word}', found '{found}'")
        pos += 1

    def number():
        nonlocal pos
        try:
            value = float(tokens[pos])
        except (ValueError, IndexError):
            raise ValueError(f"BVH: expected a number, found '{tokens[pos] if pos < len(tokens) else 'end of file'}'")
        pos += 1
        return value

    while pos < len(tokens) and tokens[pos] != "MOTION":
        word = tokens[pos]
        pos += 1
        if word in ("ROOT", "JOINT"):
            if word == "ROOT" and names:
                raise ValueError("BVH: more than one ROOT is not supported")
            names.append(tokens[pos])
            pos += 1
            parents.append(stack[-1] if stack else -1)
            expect("{")
            expect("OFFSET")
            offsets.append([number(), number(), number()])
            joint_channels = []
            if pos < len(tokens) and tokens[pos] == "CHANNELS":
                pos += 1
                count = int(number())
                joint_channels = tokens[pos : pos + count]
                pos += count
            channels.append(joint_channels)
            stack.append(len(names) - 1)
        elif word == "End":
            expect("Site")
            expect("{")
            expect("OFFSET")
            number(), number(), number()
            expect("}")
        elif word == "}":
            if not stack:
                raise ValueError("BVH: unbalanced '}' in the hierarchy")
            stack.pop()
        else:
            raise ValueError(f"BVH: unexpected '{word}' in the hierarchy")
    if not names:
        raise ValueError("BVH: the hierarchy has no joints")
    if stack:
        raise ValueError("BVH: the hierarchy is not closed (missing '}')")
    expect("MOTION")
    expect("Frames:")
    frames = int(number())
    expect("Frame")
    expect("Time:")
    frame_time = number()
    if frame_time <= 0:
        raise ValueError(f"BVH: frame time must be positive, got {frame_time}")
    width = sum(len(c) for c in channels)
    data = tokens[pos:]
    if len(data) != frames * width:
        raise ValueError(f"BVH: expected {frames} frames of {width} values, found {len(data)} values")
    try:
        values = np.array(data, dtype=np.float64).reshape(frames, width)
    except ValueError:
        raise ValueError("BVH: the motion block contains something that is not a number")
    if frames == 0:
        raise ValueError("BVH: the motion has no frames")
    if not np.all(np.isfinite(values)):
        raise ValueError("BVH: the motion contains NaN or infinite values")
    return BvhData(names, parents, np.array(offsets, dtype=np.float64), channels, values, frame_time)


def bvh_local_transforms(bvh: BvhData):
    """Per-joint local rotation matrices (T, J, 3, 3) and translations (T, J, 3)."""
    frames = len(bvh.values)
    rotations = np.tile(np.eye(3), (frames, len(bvh.names), 1, 1))
    translations = np.tile(bvh.offsets, (frames, 1, 1))
    column = 0
    for joint, joint_channels in enumerate(bvh.channels):
        block = bvh.values[:, column : column + len(joint_channels)]
        column += len(joint_channels)
        rot_axes = [c[0].upper() for c in joint_channels if c.lower().endswith("rotation")]
        rot_cols = [k for k, c in enumerate(joint_channels) if c.lower().endswith("rotation")]
        pos_cols = {c[0].upper(): k for k, c in enumerate(joint_channels) if c.lower().endswith("position")}
        # Listed rotations compose left to right, whatever their number.
        for axis, k in zip(rot_axes, rot_cols):
            rotations[:, joint] = rotations[:, joint] @ axis_rotation_matrix(axis, np.radians(block[:, k]))
        if len(pos_cols) == 3:
            # Position channels replace the offset (Blender and most readers do the same
            # for the root, whose offset is usually zero).
            translations[:, joint] = block[:, [pos_cols["X"], pos_cols["Y"], pos_cols["Z"]]]
    return rotations, translations


def bvh_world_positions(bvh: BvhData):
    """World positions (T, J, 3) and world rotation matrices (T, J, 3, 3) of every joint."""
    local_rot, local_pos = bvh_local_transforms(bvh)
    world_rot = np.empty_like(local_rot)
    world_pos = np.empty_like(local_pos)
    for joint, parent in enumerate(bvh.parents):
        if parent < 0:
            world_rot[:, joint] = local_rot[:, joint]
            world_pos[:, joint] = local_pos[:, joint]
        else:
            world_rot[:, joint] = world_rot[:, parent] @ local_rot[:, joint]
            world_pos[:, joint] = world_pos[:, parent] + np.einsum("tij,tj->ti", world_rot[:, parent], local_pos[:, joint])
    return world_pos, world_rot


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.split(":")[-1].lower())


def motion_from_bvh(bvh: BvhData, scale: float | None = None) -> Motion:
    """A Motion from a BVH whose joints carry the SMPL-22 names (any case, any
    separators, namespace prefixes ignored). `scale` converts the file's unit to metres;
    by default centimetre files are recognised by their size."""
    index = {_key(name): i for i, name in enumerate(bvh.names)}
    missing = [name for name in JOINT_NAMES if _key(name) not in index]
    if missing:
        raise ValueError(
            "BVH is not on the SMPL-22 skeleton: no joints named " + ", ".join(missing)
            + " (found: " + ", ".join(bvh.names[:8]) + ("..." if len(bvh.names) > 8 else "") + ")"
        )
    picked = [index[_key(name)] for name in JOINT_NAMES]
    world_pos, world_rot = bvh_world_positions(bvh)
    positions = world_pos[:, picked]
    if scale is None:
        # A person is 1-2 m tall: a pelvis-to-head distance over 3 units means cm.
        height = np.linalg.norm(positions[0, 15] - positions[0, 0])
        scale = 0.01 if height > 3.0 else 1.0
    positions = positions * scale
    if not np.all(np.isfinite(positions)):
        raise ValueError("BVH: the motion contains NaN or infinite values")

    same_tree = all(
        bvh.parents[picked[j]] == (picked[PARENTS[j]] if PARENTS[j] >= 0 else -1) for j in range(JOINT_COUNT)
    )
    if same_tree:
        # The file is on our skeleton: keep its rotations (and the twists they carry).
        offsets = bvh.offsets[picked] * scale
        offsets[0] = 0.0
        local = world_rot[:, picked].copy()
        parent_rot = world_rot[:, [picked[p] for p in PARENTS[1:]]]
        local[:, 1:] = np.swapaxes(parent_rot, -1, -2) @ world_rot[:, picked[1:]]
        return Motion.from_rotations(matrix_to_quat(local), positions[:, 0], bvh.fps, offsets)
    return Motion.from_positions(positions, bvh.fps)


def read_bvh(stream, scale: float | None = None) -> Motion:
    return motion_from_bvh(parse_bvh(stream.read()), scale)
