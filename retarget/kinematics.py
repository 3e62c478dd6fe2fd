"""Forward and inverse kinematics on the SMPL-22 skeleton.

Rotations are local (relative to the parent joint) and relative to the rest pose in
skeleton.REST_OFFSETS, SMPL's convention: a joint's rotation moves its children.
Everything is vectorized over frames; the only Python loop runs over the 22 joints.
"""

import numpy as np

from .rotation import (
    normalize,
    quat_about_axis,
    quat_between,
    quat_conj,
    quat_identity,
    quat_make_continuous,
    quat_mul,
    quat_rotate,
)
from .skeleton import JOINT_COUNT, PARENTS, REST_OFFSETS


def forward_kinematics(rotations, root_translation, offsets=REST_OFFSETS):
    """Joint positions (..., 22, 3) from local rotations (..., 22, 4) and the pelvis
    position (..., 3)."""
    rotations = np.asarray(rotations, dtype=np.float64)
    root_translation = np.asarray(root_translation, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64)
    global_rot = np.empty_like(rotations)
    positions = np.empty(rotations.shape[:-1] + (3,))
    global_rot[..., 0, :] = rotations[..., 0, :]
    positions[..., 0, :] = root_translation + offsets[0]
    for joint in range(1, rotations.shape[-2]):
        parent = PARENTS[joint]
        global_rot[..., joint, :] = quat_mul(global_rot[..., parent, :], rotations[..., joint, :])
        positions[..., joint, :] = positions[..., parent, :] + quat_rotate(global_rot[..., parent, :], offsets[joint])
    return positions


# How inverse kinematics resolves each joint's rotation. Positions fix the direction of
# the bone to a "primary" child; the twist about that bone needs a second direction.
#   frame:  a second world direction measured from the joints themselves
#           (the hip line for the pelvis, the collar line for spine3, a blend for the
#           spine, the knee/elbow bend plane for the hips/shoulders);
#   none:   the smallest swing from the parent, so the twist follows the parent,
#           for bones whose twist positions cannot show (knees, ankles, neck, ...).
# Leaves (feet, head, wrists) have no child: they keep the parent's rotation.
_PRIMARY_CHILD = {0: 3, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12,
                  12: 15, 13: 16, 14: 17, 16: 18, 17: 19, 18: 20, 19: 21}

# The hinge axes of knees and elbows in the rest pose: knees bend the shin backwards,
# elbows bend the forearm forwards (arms along +-X, palms down).
_KNEE_HINGE = np.array([1.0, 0.0, 0.0])
_LEFT_ELBOW_HINGE = np.array([0.0, -1.0, 0.0])
_RIGHT_ELBOW_HINGE = np.array([0.0, 1.0, 0.0])

# Below this bend (sine of the angle) a limb's bend plane is uncertain and its twist
# fades to the parent's, so almost-straight limbs do not spin.
_HINGE_PARENTS = (1, 2, 16, 17)
_HINGE_CONFIDENT_SINE = np.sin(np.radians(25.0))


def _lateral(joints, left, right):
    return normalize(joints[:, left] - joints[:, right])


def _bend_normal(joints, top, middle, bottom):
    """Normal of the limb's bend plane and how sure we are of it (0..1)."""
    n = np.cross(joints[:, middle] - joints[:, top], joints[:, bottom] - joints[:, middle])
    upper = np.linalg.norm(joints[:, middle] - joints[:, top], axis=-1)
    lower = np.linalg.norm(joints[:, bottom] - joints[:, middle], axis=-1)
    sine = np.linalg.norm(n, axis=-1) / np.maximum(upper * lower, 1e-12)
    return normalize(n), np.clip(sine / _HINGE_CONFIDENT_SINE, 0.0, 1.0)


def _secondary_directions(joints, offsets):
    """World secondary direction, its rest counterpart and a confidence, per joint."""
    hips = _lateral(joints, 1, 2)
    collars = _lateral(joints, 13, 14)
    ones = np.ones(len(joints))
    spec = {
        0: (hips, normalize(offsets[1] - offsets[2]), ones),
        3: (normalize(2.0 * hips + collars), np.array([1.0, 0.0, 0.0]), ones),
        6: (normalize(hips + 2.0 * collars), np.array([1.0, 0.0, 0.0]), ones),
        9: (collars, normalize(offsets[13] - offsets[14]), ones),
    }
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
        normal, confidence = _bend_normal(joints, hip, knee, ankle)
        spec[hip] = (normal, _KNEE_HINGE, confidence)
    for shoulder, elbow, wrist, hinge in ((16, 18, 20, _LEFT_ELBOW_HINGE), (17, 19, 21, _RIGHT_ELBOW_HINGE)):
        normal, confidence = _bend_normal(joints, shoulder, elbow, wrist)
        spec[shoulder] = (normal, hinge, confidence)
    return spec


def _signed_angle_about(axis, a, b):
    """Angle from a to b about `axis`, after projecting both onto the plane normal to it."""
    a = a - np.sum(a * axis, axis=-1, keepdims=True) * axis
    b = b - np.sum(b * axis, axis=-1, keepdims=True) * axis
    sine = np.sum(np.cross(a, b) * axis, axis=-1)
    cosine = np.sum(a * b, axis=-1)
    strength = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.arctan2(sine, cosine), strength


def inverse_kinematics(joints, offsets=REST_OFFSETS):
    """Local rotations (T, 22, 4) and root translation (T, 3) from joint positions (T, 22, 3).

    Each joint's rotation turns its rest bone onto the bone the positions show, with the
    smallest swing from the parent, then adds the twist that the secondary directions
    (hip, collar, bend planes) show, faded out where they are unsure (an almost straight
    limb), so the result does not flip between frames. Forward kinematics of the result
    gives back every bone's direction, and the positions too when the bone lengths and
    the rigid pelvis and spine3 groups match `offsets`.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (JOINT_COUNT, 3):
        raise ValueError(f"joint positions must have shape (frames, 22, 3), got {joints.shape}")
    offsets = np.asarray(offsets, dtype=np.float64)
    frames = len(joints)
    secondary = _secondary_directions(joints, offsets)
    global_rot = quat_identity((frames, JOINT_COUNT))

    for joint in range(JOINT_COUNT):
        parent = PARENTS[joint]
        parent_rot = global_rot[:, parent] if parent >= 0 else quat_identity((frames,))
        child = _PRIMARY_CHILD.get(joint)
        if child is None:
            global_rot[:, joint] = parent_rot
            continue
        bone = normalize(joints[:, child] - joints[:, joint])
        rest_bone = normalize(offsets[child])
        swing = quat_mul(quat_between(quat_rotate(parent_rot, rest_bone), bone), parent_rot)
        if joint not in secondary:
            # Positions cannot show this bone's twist: the smallest swing from the
            # parent keeps the parent's twist.
            global_rot[:, joint] = swing
            continue
        target, rest_axis, confidence = secondary[joint]
        # Twist that turns the swung rest secondary onto the measured one, about the bone.
        angle, strength = _signed_angle_about(bone, quat_rotate(swing, rest_axis), target)
        # Where the secondary direction runs along the bone it says nothing about twist.
        weight = confidence * np.clip(strength / 0.2, 0.0, 1.0)
        # The angle is taken frame by frame, so a sure secondary direction (weight 1)
        # gives that frame's rotation whatever came before, and an unsure one fades to
        # the swing instead of guessing a branch. A bend normal is read as a line, not
        # an arrow: a limb bent the "wrong" way (hyperextended) is read as a small
        # hyperextension, not as a half-turn twist, so the limb does not flip as it
        # passes through straight.
        if joint in _HINGE_PARENTS:
            angle = (angle + 0.5 * np.pi) % np.pi - 0.5 * np.pi
        global_rot[:, joint] = quat_mul(quat_about_axis(bone, weight * angle), swing)

    local = np.empty_like(global_rot)
    local[:, 0] = global_rot[:, 0]
    parents = np.array(PARENTS[1:])
    local[:, 1:] = quat_mul(quat_conj(global_rot[:, parents]), global_rot[:, 1:])
    local = quat_make_continuous(local, axis=0)
    root_translation = joints[:, 0] - offsets[0]
    return local, root_translation
