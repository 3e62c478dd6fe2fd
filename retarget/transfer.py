"""SMPL-22 motion onto an armature's pose channels, and an armature's animation back.

Both skeletons are brought to one reference pose, the SMPL T-pose of the motion's
rest skeleton: for every mapped bone a constant rotation D turns the bone from the
rig's rest pose into that reference (for a T-pose rig almost nothing, for an A-pose
rig the arms come up), chosen so the bone towards the next mapped joint points where
the SMPL bone points. A motion then moves every bone by the world-space rotation its
SMPL joint makes away from the reference:

    W_b(t) = B G_j(t) B^-1 D_b            (world change of bone b, armature space)
    q_b(t) = R_b^-1 W_a(t)^-1 W_b(t) R_b  (pose_bone.rotation_quaternion)

with G_j the joint's global rotation, B the body's axes in armature space (ours is Y
up, facing +Z), R_b the bone's rest orientation (matrix_local) and a the nearest mapped
bone above b (bones in between stay in rest, and so do bones outside the map:
twists, fingers, props). Because the reference is shared, an A-pose and a T-pose
version of one rig get the same world positions, whatever their bone rolls.

Root motion is scaled by the ratio of leg lengths; the pelvis keeps its height above
the feet, so the feet of the armature reach its floor (the armature's origin level).
Everything is vectorized over frames; Python loops run over joints only.
"""

from dataclasses import dataclass

import numpy as np

from .mapping import validate_bone_map
from .motion import Motion
from .rig import Rig
from .rotation import (
    matrix_to_quat,
    normalize,
    quat_between,
    quat_conj,
    quat_identity,
    quat_make_continuous,
    quat_mul,
    quat_rotate,
    quat_to_matrix,
)
from .skeleton import JOINT_COUNT, JOINT_INDEX, PARENTS, REST_OFFSETS, rest_positions


@dataclass
class Pose:
    """Pose channels of an armature over T frames.

    bones          the bones that get keys (the mapped bones)
    rotations      (T, len(bones), 4) w, x, y, z: exactly pose_bone.rotation_quaternion
    root_bone      the bone that takes root motion (the pelvis bone, or the first bone
                   above it that is not connected to its parent)
    root_location  (T, 3): exactly that bone's pose_bone.location
    fps            frames per second
    """

    bones: tuple
    rotations: np.ndarray
    root_bone: str
    root_location: np.ndarray
    fps: float = 20.0

    @property
    def frames(self) -> int:
        return len(self.rotations)


# The joint whose direction each joint's reference rotation aligns (SMPL's primary
# child, as in inverse kinematics); leaves have none.
_PRIMARY_CHILD = {0: 3, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12,
                  12: 15, 13: 16, 14: 17, 16: 18, 17: 19, 18: 20, 19: 21}
_LEFT_ANKLE, _RIGHT_ANKLE = JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]
_LEGS = ((JOINT_INDEX["left_hip"], JOINT_INDEX["left_knee"], _LEFT_ANKLE),
         (JOINT_INDEX["right_hip"], JOINT_INDEX["right_knee"], _RIGHT_ANKLE))


def _depth(joint: int) -> int:
    return 0 if PARENTS[joint] < 0 else 1 + _depth(PARENTS[joint])


# Joints grouped by depth in the tree: one multiplication per level, not per joint.
_LEVELS = [np.array([j for j in range(JOINT_COUNT) if _depth(j) == d]) for d in range(1, 8)]
_LEVEL_PARENTS = [np.array([PARENTS[j] for j in level]) for level in _LEVELS]


def global_rotations(local: np.ndarray) -> np.ndarray:
    """Global joint rotations (..., 22, 4) from local ones."""
    out = np.empty_like(local)
    out[..., 0, :] = local[..., 0, :]
    for level, parents in zip(_LEVELS, _LEVEL_PARENTS):
        out[..., level, :] = quat_mul(out[..., parents, :], local[..., level, :])
    return out


def _frame_rotation(v1_from, v2_from, v1_to, v2_to) -> np.ndarray:
    """Rotation matrix taking the frame of (v1_from, v2_from) onto that of (v1_to, v2_to):
    v1 exactly, v2 as near as it can."""
    def frame(a, b):
        x = normalize(a)
        y = normalize(b - np.dot(b, x) * x)
        return np.stack([x, y, np.cross(x, y)], axis=-1)

    return frame(v1_to, v2_to) @ frame(v1_from, v2_from).T


class Binding:
    """What retargeting between one rig, one bone map and one rest skeleton needs,
    computed once: the body axes, the reference rotations, the root scale."""

    def __init__(self, rig: Rig, bone_map: dict, offsets=REST_OFFSETS):
        from .mapping import _frame_from_map  # the same axes the mapping used

        bone_map = validate_bone_map(rig, bone_map)
        self.rig = rig
        self.offsets = np.asarray(offsets, dtype=np.float64)
        # Mapped joints, ordered as the rig lists their bones (parents first).
        pairs = sorted(((rig.index[b], JOINT_INDEX[j]) for j, b in bone_map.items()))
        self.bones = np.array([b for b, _ in pairs], dtype=np.int64)
        self.joints = np.array([j for _, j in pairs], dtype=np.int64)
        self.bone_names = tuple(rig.names[b] for b in self.bones)
        self.slot = {int(j): k for k, j in enumerate(self.joints)}  # SMPL joint -> mapped index
        mapped_bones = {int(b): k for k, b in enumerate(self.bones)}
        # Nearest mapped bone above each mapped bone in the rig's own hierarchy.
        self.rig_parent = np.array(
            [next((mapped_bones[a] for a in rig.ancestors(b) if a in mapped_bones), -1) for b in self.bones])
        self.rest = matrix_to_quat(rig.matrices[self.bones])  # R_b
        heads = rig.heads[self.bones]

        frame = _frame_from_map(rig, {j: rig.index[b] for j, b in bone_map.items()})
        if frame is None:
            raise ValueError("cannot tell which way the armature faces (pelvis, hips and head/neck are needed)")
        self.frame = frame
        self.frame_q = matrix_to_quat(frame)
        self.up = frame[:, 1]

        # Reference (SMPL rest) joint positions in armature space, directions only.
        reference = rest_positions(self.offsets) @ frame.T
        deltas = np.zeros((len(self.bones), 3, 3))
        for k in np.argsort(self.joints, kind="stable"):  # SMPL order: parents first
            joint = int(self.joints[k])
            parent = PARENTS[joint]
            while parent >= 0 and parent not in self.slot:
                parent = PARENTS[parent]
            parent_delta = deltas[self.slot[parent]] if parent >= 0 else np.eye(3)
            deltas[k] = self._reference_rotation(joint, heads, reference, parent_delta)
        self.delta = matrix_to_quat(deltas)  # D_b
        self._frame_inv_delta = quat_mul(quat_conj(self.frame_q), self.delta)
        self._rest_inv = quat_conj(self.rest)
        # Channels straight from SMPL's local rotations: when the bone above b holds an
        # SMPL ancestor of b's joint, Wp^-1 W_b = Dp^-1 B (local rotations on the path)
        # B^-1 D_b, so q_b = [R^-1 Dp^-1 B] (locals) [B^-1 D_b R]: two products per frame.
        self.paths = []
        for k, joint in enumerate(self.joints):
            parent = self.rig_parent[k]
            path = [int(joint)]
            stop = int(self.joints[parent]) if parent >= 0 else -1
            while PARENTS[path[-1]] != stop and PARENTS[path[-1]] >= 0:
                path.append(PARENTS[path[-1]])
            if PARENTS[path[-1]] != stop:
                self.paths = None  # the bone above is not an SMPL ancestor: go through W
                break
            self.paths.append(path[::-1])
        if self.paths is not None:
            parent_delta = np.where(self.rig_parent[:, None] >= 0, self.delta[np.maximum(self.rig_parent, 0)],
                                    quat_identity((len(self.bones),)))
            self._left = quat_mul(quat_mul(self._rest_inv, quat_conj(parent_delta)), self.frame_q)
            self._right = quat_mul(self._frame_inv_delta, self.rest)
            # As one 4x4 matrix per bone (columns: left e_i right), applied by matmul.
            basis = np.eye(4)[:, None, :]
            columns = quat_mul(quat_mul(self._left[None], basis), self._right[None])  # (4, M, 4)
            self._sandwich = np.ascontiguousarray(np.transpose(columns, (1, 0, 2)))  # row i = column i
            self._single = np.array([len(p) == 1 for p in self.paths])
            self._single_joints = np.array([p[0] for p in self.paths])

        # Root: scale by leg length, keep the pelvis's height above the feet.
        rig_leg = self._leg_length(lambda j: heads[self.slot[j]])
        ref_positions = rest_positions(self.offsets)
        smpl_leg = self._leg_length(lambda j: ref_positions[j])
        self.scale = rig_leg / smpl_leg
        # Heights are measured down to the ankles: SMPL's rest foot is flat at ankle
        # height, so its toes say nothing about the floor; the ankle's own height
        # above the floor then scales with the legs.
        ankles = (_LEFT_ANKLE, _RIGHT_ANKLE)
        pelvis = self.slot[0]
        rig_height = float(np.dot(heads[pelvis] - 0.5 * (heads[self.slot[ankles[0]]] + heads[self.slot[ankles[1]]]),
                                  self.up))
        smpl_height = float(ref_positions[0, 1] - 0.5 * (ref_positions[ankles[0], 1] + ref_positions[ankles[1], 1]))
        self.lift = rig_height - self.scale * smpl_height
        self.pelvis_head = heads[pelvis]

        root = int(self.bones[pelvis])
        while rig.connected[root] and rig.parents[root] >= 0:
            root = int(rig.parents[root])
        self.root_bone = rig.names[root]
        self.root_rest = rig.matrices[root]

    def _leg_length(self, position) -> float:
        total = 0.0
        for hip, knee, ankle in _LEGS:
            total += np.linalg.norm(position(knee) - position(hip)) + np.linalg.norm(position(ankle) - position(knee))
        return 0.5 * total

    def _next_mapped(self, joint):
        """Mapped joints along the joint's primary chain, nearest first."""
        out = []
        child = _PRIMARY_CHILD.get(joint)
        while child is not None:
            if child in self.slot:
                out.append(child)
            child = _PRIMARY_CHILD.get(child)
        return out

    def _reference_rotation(self, joint, heads, reference, parent_delta):
        """D for one joint: rest pose -> reference pose, world (armature) space."""
        here = heads[self.slot[joint]]

        def vectors(target):
            return heads[self.slot[target]] - here, reference[target] - reference[joint]

        def first_usable(candidates):
            for target in candidates:
                rig_vector, ref_vector = vectors(target)
                if np.linalg.norm(rig_vector) > 1e-4:
                    return rig_vector, ref_vector
            return None

        primary = first_usable(self._next_mapped(joint))
        # The pelvis and the chest carry three limbs: align a whole frame (across the
        # hips / collars, and up the spine / neck).
        if joint in (0, JOINT_INDEX["spine3"]):
            pairs = (("left_hip", "right_hip"),) if joint == 0 else (("left_collar", "right_collar"),
                                                                    ("left_shoulder", "right_shoulder"))
            for left, right in pairs:
                a, b = JOINT_INDEX[left], JOINT_INDEX[right]
                # Collars that start at one point (BVH, ASF) give no line across: use the shoulders.
                if a in self.slot and b in self.slot and np.ptp(heads[[self.slot[a], self.slot[b]]], 0).max() > 1e-4:
                    rig_across = heads[self.slot[a]] - heads[self.slot[b]]
                    ref_across = reference[a] - reference[b]
                    if primary is None:
                        return quat_to_matrix(quat_between(parent_delta @ rig_across, ref_across)) @ parent_delta
                    # The line across is matched exactly (it places the legs or arms),
                    # the way up as near as it can be.
                    return _frame_rotation(rig_across, primary[0], ref_across, primary[1])
        if primary is None:
            return parent_delta  # a leaf keeps its rest pose relative to its parent
        swing = quat_to_matrix(quat_between(parent_delta @ primary[0], primary[1]))
        return swing @ parent_delta

    # --- SMPL -> rig ---------------------------------------------------------------

    def world_changes(self, global_rot: np.ndarray) -> np.ndarray:
        """W (T, M, 4): each mapped bone's world rotation away from its rest pose."""
        g = global_rot[:, self.joints]
        return quat_mul(quat_mul(self.frame_q, g), self._frame_inv_delta)

    def channels(self, world: np.ndarray) -> np.ndarray:
        """Pose rotations (T, M, 4) from world changes W (T, M, 4)."""
        parent = world[:, np.maximum(self.rig_parent, 0)]
        parent[:, self.rig_parent < 0] = (1.0, 0.0, 0.0, 0.0)
        # q = R^-1 Wp^-1 W R
        q = quat_mul(quat_mul(self._rest_inv, quat_conj(parent)), quat_mul(world, self.rest))
        return quat_make_continuous(q, start_positive=True)

    def channels_from_local(self, local: np.ndarray) -> np.ndarray:
        """Pose rotations (T, M, 4) straight from SMPL local rotations (T, 22, 4)."""
        path_rot = local[:, self._single_joints]
        for k in np.flatnonzero(~self._single):
            product = local[:, self.paths[k][0]]
            for joint in self.paths[k][1:]:
                product = quat_mul(product, local[:, joint])
            path_rot[:, k] = product
        q = (path_rot[..., None, :] @ self._sandwich)[..., 0, :]
        return quat_make_continuous(q, start_positive=True)

    def pelvis_target(self, pelvis_positions: np.ndarray) -> np.ndarray:
        """The pelvis head (T, 3) in armature space for SMPL pelvis positions (T, 3)."""
        return (self.scale * pelvis_positions) @ self.frame.T + self.lift * self.up

    def root_location(self, pelvis_heads: np.ndarray) -> np.ndarray:
        """pose_bone.location of the root bone that puts the pelvis head there."""
        return (pelvis_heads - self.pelvis_head) @ self.root_rest  # R^T v, row-wise

    def heads(self, world: np.ndarray, pelvis_heads: np.ndarray) -> np.ndarray:
        """World (armature space) heads (T, M, 3) of the mapped bones."""
        rest_heads = self.rig.heads[self.bones]
        out = np.empty(world.shape[:2] + (3,))
        for k in range(len(self.bones)):
            parent = self.rig_parent[k]
            if parent < 0:
                out[:, k] = pelvis_heads if k == self.slot[0] else rest_heads[k]
            else:
                out[:, k] = out[:, parent] + quat_rotate(world[:, parent], rest_heads[k] - rest_heads[parent])
        return out

    # --- rig -> SMPL ---------------------------------------------------------------

    def world_from_channels(self, rotations: np.ndarray) -> np.ndarray:
        """W (T, M, 4) from pose rotations (T, M, 4)."""
        local = quat_mul(quat_mul(self.rest, rotations), quat_conj(self.rest))
        world = np.empty_like(local)
        for k in range(len(self.bones)):
            parent = self.rig_parent[k]
            world[:, k] = local[:, k] if parent < 0 else quat_mul(world[:, parent], local[:, k])
        return world

    def global_from_world(self, world: np.ndarray) -> np.ndarray:
        """SMPL global rotations (T, 22, 4); joints without a bone follow their parent."""
        g_mapped = quat_mul(quat_mul(quat_conj(self.frame_q), quat_mul(world, quat_conj(self.delta))), self.frame_q)
        out = np.empty((len(world), JOINT_COUNT, 4))
        for joint in range(JOINT_COUNT):
            if joint in self.slot:
                out[:, joint] = g_mapped[:, self.slot[joint]]
            else:
                out[:, joint] = out[:, PARENTS[joint]]
        return out


_BINDINGS = {}


def bind(rig: Rig, bone_map: dict, offsets=REST_OFFSETS) -> Binding:
    """A Binding, cached for the same rig object, map and offsets."""
    key = (id(rig), tuple(sorted(bone_map.items())), np.asarray(offsets, dtype=np.float64).tobytes())
    cached = _BINDINGS.get(key)
    if cached is None or cached.rig is not rig:
        if len(_BINDINGS) > 32:
            _BINDINGS.clear()
        cached = _BINDINGS[key] = Binding(rig, bone_map, offsets)
    return cached


# --- foot contacts and locking ---------------------------------------------------------

def foot_contacts(positions: np.ndarray, fps: float, speed: float = 0.5, height: float = 0.08) -> np.ndarray:
    """(T, 2) bool: left and right ankle planted (moving slower than `speed` m/s and
    within `height` m of the ankle's lowest height in the clip). Y is up."""
    ankles = np.asarray(positions, dtype=np.float64)[:, [_LEFT_ANKLE, _RIGHT_ANKLE]]
    velocity = np.zeros_like(ankles)
    if len(ankles) > 1:
        velocity[1:] = np.diff(ankles, axis=0) * fps
        velocity[0] = velocity[1]
    slow = np.linalg.norm(velocity, axis=-1) < speed
    low = ankles[..., 1] < ankles[..., 1].min(axis=0) + height
    return slow & low


def _runs(flags: np.ndarray):
    """(start, end) inclusive of each run of True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.diff(padded)
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def lock_targets(ankles: np.ndarray, contacts: np.ndarray, blend: int = 3) -> np.ndarray:
    """Where each ankle (T, 3) should be: still during each contact (where it was when
    the contact began), eased in and out over `blend` frames around it so nothing pops.
    Between two contacts closer than the easing, the foot glides from one to the next."""
    frames = len(ankles)
    t = np.arange(frames)
    weighted = np.zeros_like(ankles)
    weights = np.zeros(frames)
    held = np.zeros_like(ankles)
    for start, end in _runs(contacts):
        anchor = ankles[start]
        held[start : end + 1] = anchor
        before = np.clip((t - (start - blend - 1)) / (blend + 1), 0.0, 1.0)
        after = np.clip(((end + blend + 1) - t) / (blend + 1), 0.0, 1.0)
        w = np.minimum(before, after)
        w = w * w * (3 - 2 * w)  # smoothstep: no velocity jump where the lock eases in
        weighted += w[:, None] * anchor
        weights += w
    out = ankles.copy()
    easing = (weights > 0) & ~contacts
    blended = weighted[easing] / weights[easing, None]
    strength = np.minimum(weights[easing], 1.0)[:, None]
    out[easing] = ankles[easing] + strength * (blended - ankles[easing])
    out[contacts] = held[contacts]
    return out


def two_bone_ik(hip, knee, ankle, target, forward):
    """Swing rotations (T, 4) for the thigh and the shin (world space) that put the
    ankle on `target`, keeping the knee in its plane (or bending it towards `forward`
    when the leg is straight). All positions (T, 3)."""
    upper = np.linalg.norm(knee - hip, axis=-1)
    lower = np.linalg.norm(ankle - knee, axis=-1)
    to_target = target - hip
    reach = np.linalg.norm(to_target, axis=-1)
    reach_clamped = np.clip(reach, np.abs(upper - lower) + 1e-6, upper + lower - 1e-6)
    u = normalize(to_target)
    side = (knee - hip) - np.sum((knee - hip) * u, axis=-1, keepdims=True) * u
    fallback = forward - np.sum(forward * u, axis=-1, keepdims=True) * u
    side = np.where(np.linalg.norm(side, axis=-1, keepdims=True) > 1e-6 * upper[:, None], side, fallback)
    v = normalize(side)
    cos_a = np.clip((upper**2 + reach_clamped**2 - lower**2) / (2 * upper * reach_clamped), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a**2)
    new_knee = hip + upper[:, None] * (cos_a[:, None] * u + sin_a[:, None] * v)
    new_ankle = hip + reach_clamped[:, None] * u
    thigh_swing = quat_between(knee - hip, new_knee - hip)
    shin_swing = quat_between(quat_rotate(thigh_swing, ankle - knee), new_ankle - new_knee)
    return thigh_swing, shin_swing


def foot_skating(ankles: np.ndarray, contacts: np.ndarray, fps: float, up) -> float:
    """Mean horizontal speed (m/s) of planted ankles: frames where the foot is planted
    now and in the next frame. ankles (T, 2, 3), contacts (T, 2)."""
    up = normalize(np.asarray(up, dtype=np.float64))
    step = np.diff(ankles, axis=0)
    step = step - np.sum(step * up, axis=-1, keepdims=True) * up
    speed = np.linalg.norm(step, axis=-1) * fps
    planted = contacts[1:] & contacts[:-1]
    return float(speed[planted].mean()) if planted.any() else 0.0


# --- the two directions -------------------------------------------------------------

def _check_motion(motion: Motion):
    if motion.rotations.ndim != 3 or motion.rotations.shape[1:] != (JOINT_COUNT, 4) or motion.frames == 0:
        raise ValueError(f"the motion must have rotations of shape (frames, 22, 4), got {motion.rotations.shape}")


def retarget(motion: Motion, rig: Rig, bone_map: dict, foot_lock: bool = False, blend: int = 3):
    """pose_from_motion's work, also returning the binding, the world changes W, the
    pelvis heads and the foot contacts (None without foot locking)."""
    _check_motion(motion)
    binding = bind(rig, bone_map, motion.offsets)
    world = binding.world_changes(global_rotations(motion.rotations))
    pelvis = binding.pelvis_target(motion.positions[:, 0])
    contacts = None
    if foot_lock:
        contacts = foot_contacts(motion.positions, motion.fps)
        world = lock_feet(binding, world, pelvis, contacts, blend)
    return binding, world, pelvis, contacts


def lock_feet(binding: Binding, world, pelvis_heads, contacts, blend: int = 3):
    """World changes with each planted ankle held still by two-bone IK on its leg."""
    world = world.copy()
    heads = binding.heads(world, pelvis_heads)
    forward = np.broadcast_to(binding.frame[:, 2], pelvis_heads.shape)
    for side, (hip, knee, ankle) in enumerate(_LEGS):
        if not contacts[:, side].any():
            continue
        h, k, a = (binding.slot[j] for j in (hip, knee, ankle))
        # Bend towards where the knee points: the thigh's rest forward, carried along.
        knee_forward = quat_rotate(world[:, h], forward)
        target = lock_targets(heads[:, a], contacts[:, side], blend)
        thigh_swing, shin_swing = two_bone_ik(heads[:, h], heads[:, k], heads[:, a], target, knee_forward)
        world[:, h] = quat_mul(thigh_swing, world[:, h])
        world[:, k] = quat_mul(quat_mul(shin_swing, thigh_swing), world[:, k])
        # The ankle keeps its world rotation (so the foot does not tip), which its
        # channel then expresses relative to the new shin.
    return world


def pose_from_motion(motion: Motion, rig: Rig, bone_map: dict, foot_lock: bool = False) -> Pose:
    """Pose channels that make `rig` perform `motion`."""
    if foot_lock:
        binding, world, pelvis, _ = retarget(motion, rig, bone_map, foot_lock)
        rotations = binding.channels(world)
    else:
        _check_motion(motion)
        binding = bind(rig, bone_map, motion.offsets)
        pelvis = binding.pelvis_target(motion.positions[:, 0])
        if binding.paths is not None:
            rotations = binding.channels_from_local(motion.rotations)
        else:
            rotations = binding.channels(binding.world_changes(global_rotations(motion.rotations)))
    return Pose(
        bones=binding.bone_names,
        rotations=rotations,
        root_bone=binding.root_bone,
        root_location=binding.root_location(pelvis),
        fps=float(motion.fps),
    )


def _check_pose(binding: Binding, pose: Pose):
    if set(pose.bones) != set(binding.bone_names):
        missing = sorted(set(binding.bone_names) - set(pose.bones))
        raise ValueError("the pose does not cover the mapped bones: " + ", ".join(missing[:8]))
    rotations = np.asarray(pose.rotations, dtype=np.float64)
    if rotations.ndim != 3 or rotations.shape[1:] != (len(pose.bones), 4) or len(rotations) == 0:
        raise ValueError(f"pose rotations must have shape (frames, {len(pose.bones)}, 4), got {rotations.shape}")
    location = np.asarray(pose.root_location, dtype=np.float64)
    if location.shape != (len(rotations), 3):
        raise ValueError(f"pose root_location must have shape ({len(rotations)}, 3), got {location.shape}")
    if not (np.all(np.isfinite(rotations)) and np.all(np.isfinite(location))):
        raise ValueError("the pose contains NaN or infinite values")
    order = [pose.bones.index(name) for name in binding.bone_names]
    return normalize(rotations[:, order]), location


def motion_from_pose(rig: Rig, bone_map: dict, pose: Pose, offsets=REST_OFFSETS) -> Motion:
    """The SMPL-22 motion (on the rest skeleton `offsets`) an armature's pose performs."""
    binding = bind(rig, bone_map, offsets)
    rotations, location = _check_pose(binding, pose)
    world = binding.world_from_channels(rotations)
    global_rot = binding.global_from_world(world)
    local = np.empty_like(global_rot)
    local[:, 0] = global_rot[:, 0]
    local[:, 1:] = quat_mul(quat_conj(global_rot[:, list(PARENTS[1:])]), global_rot[:, 1:])
    pelvis_heads = binding.pelvis_head + location @ binding.root_rest.T
    pelvis = ((pelvis_heads - binding.lift * binding.up) @ binding.frame) / binding.scale
    offsets = np.asarray(offsets, dtype=np.float64)
    return Motion.from_rotations(quat_make_continuous(local, axis=0), pelvis - offsets[0], pose.fps, offsets)


def pose_from_matrices(rig: Rig, bone_map: dict, matrices: np.ndarray, fps: float) -> Pose:
    """The Pose an armature shows, from its evaluated pose matrices (T, M, 4, 4)
    (pose_bone.matrix, armature space) of the mapped bones in the map's order.

    Whatever moved the bones (channels, constraints, unmapped bones in between) is
    folded into the mapped bones' rotations, so motion_from_pose reads it whole."""
    binding = bind(rig, bone_map)
    order = validate_bone_map(rig, bone_map)
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.ndim != 4 or matrices.shape[1:] != (len(order), 4, 4):
        raise ValueError(f"pose matrices must have shape (frames, {len(order)}, 4, 4), got {matrices.shape}")
    position = {name: k for k, name in enumerate(order.values())}
    picked = matrices[:, [position[name] for name in binding.bone_names]]
    rotation = picked[..., :3, :3]
    u, _, vt = np.linalg.svd(rotation)  # drop any scale the pose carries
    world = matrix_to_quat(u @ vt @ np.swapaxes(binding.rig.matrices[binding.bones], -1, -2)[None])
    world = quat_make_continuous(world, axis=0)
    pelvis_heads = picked[:, binding.slot[0], :3, 3]
    return Pose(
        bones=binding.bone_names,
        rotations=binding.channels(world),
        root_bone=binding.root_bone,
        root_location=binding.root_location(pelvis_heads),
        fps=float(fps),
    )


def pose_heads(rig: Rig, bone_map: dict, pose: Pose, offsets=REST_OFFSETS) -> dict:
    """{bone name: (T, 3) head position in armature space} of the mapped bones, by the
    armature's own forward kinematics (bones between mapped ones in rest)."""
    binding = bind(rig, bone_map, offsets)
    rotations, location = _check_pose(binding, pose)
    world = binding.world_from_channels(rotations)
    pelvis_heads = binding.pelvis_head + location @ binding.root_rest.T
    heads = binding.heads(world, pelvis_heads)
    return {name: heads[:, k] for k, name in enumerate(binding.bone_names)}


def joint_heads(rig: Rig, bone_map: dict, pose: Pose, offsets=REST_OFFSETS) -> dict:
    """{SMPL joint name: (T, 3)} head positions of the mapped bones, armature space."""
    by_bone = pose_heads(rig, bone_map, pose, offsets)
    return {joint: by_bone[bone] for joint, bone in validate_bone_map(rig, bone_map).items()}


__all__ = [
    "Pose", "Binding", "bind", "pose_from_motion", "motion_from_pose", "pose_from_matrices", "pose_heads",
    "joint_heads", "foot_contacts", "foot_skating", "lock_feet", "retarget", "global_rotations",
]
