"""Rotations, forward and inverse kinematics."""

from pathlib import Path

import numpy as np
import pytest

from retarget import rotation as R
from retarget.humanml3d import joints_from_features
from retarget.kinematics import forward_kinematics, inverse_kinematics
from retarget.skeleton import REST_OFFSETS, bone_lengths_of, rest_positions
from harness.motions import smooth_random_motion

DATA = Path(__file__).parent / "data"
rng = np.random.default_rng(7)


def random_quats(*shape):
    return R.quat_normalize(rng.normal(size=shape + (4,)))


def geodesic(a, b):
    return 2 * np.arccos(np.clip(np.abs(np.sum(a * b, axis=-1)), 0, 1))


def test_conversions_round_trip_over_leading_shapes():
    q = random_quats(5, 7, 3)
    m = R.quat_to_matrix(q)
    assert m.shape == (5, 7, 3, 3, 3)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)
    assert geodesic(R.matrix_to_quat(m), q).max() < 1e-7
    assert geodesic(R.axis_angle_to_quat(R.quat_to_axis_angle(q)), q).max() < 1e-7
    assert geodesic(R.cont6d_to_quat(R.quat_to_cont6d(q)), q).max() < 1e-7
    assert np.allclose(R.quat_rotate(q, [0.3, -1.0, 2.0]), m @ np.array([0.3, -1.0, 2.0]), atol=1e-12)
    for order in ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"):
        back = R.euler_to_matrix(R.matrix_to_euler(m, order), order)
        assert np.abs(back - m).max() < 1e-9, order


def test_conversions_at_edge_angles():
    # Half turns, zero rotations and gimbal lock are where naive formulas break.
    axes = R.normalize(rng.normal(size=(50, 3)))
    for angle in (0.0, 1e-9, np.pi - 1e-9, np.pi):
        aa = axes * angle
        q = R.axis_angle_to_quat(aa)
        assert np.allclose(R.quat_to_matrix(q), R.axis_angle_to_matrix(aa))
        assert geodesic(R.matrix_to_quat(R.quat_to_matrix(q)), q).max() < 1e-6
        assert np.all(np.isfinite(R.quat_to_axis_angle(q)))
    locked = R.euler_to_matrix(np.array([[0.3, np.pi / 2, -0.2]]), "ZYX")
    assert np.abs(R.euler_to_matrix(R.matrix_to_euler(locked, "ZYX"), "ZYX") - locked).max() < 1e-9
    between = R.quat_between(np.array([[0, 1.0, 0], [1.0, 0, 0]]), np.array([[0, -1.0, 0], [-2.0, 0, 0]]))
    assert np.all(np.isfinite(between))
    assert np.allclose(R.quat_rotate(between, [[0, 1.0, 0], [1.0, 0, 0]]), [[0, -1.0, 0], [-1.0, 0, 0]], atol=1e-12)


def test_rest_pose_forward_kinematics():
    identity = R.quat_identity((1, 22))
    positions = forward_kinematics(identity, np.zeros((1, 3)))[0]
    assert np.allclose(positions, rest_positions())
    assert np.allclose(bone_lengths_of(positions)[1:], np.linalg.norm(REST_OFFSETS[1:], axis=-1))


def test_rotations_fk_ik_fk_round_trip():
    rotations, root = smooth_random_motion(frames=200, seed=11, amplitude=0.6, turn_degrees=400, walk_speed=1.0)
    positions = forward_kinematics(rotations, root)
    solved, solved_root = inverse_kinematics(positions)
    again = forward_kinematics(solved, solved_root)
    assert np.linalg.norm(again - positions, axis=-1).max() < 1e-3  # under 1 mm
    assert np.linalg.norm(again - positions, axis=-1).max() < 1e-9  # in fact exact


def test_ik_on_dataset_joints():
    joints = joints_from_features(np.load(DATA / "hml3d_012314_features.npy"))
    rotations, root = inverse_kinematics(joints)
    assert np.linalg.norm(forward_kinematics(rotations, root) - joints, axis=-1).max() < 1e-4


def test_ik_recovers_twist_where_positions_show_it():
    # Bent knees and elbows and the pelvis/spine3 groups show their twist: IK must find
    # the same rotations as the source there.
    rotations, root = smooth_random_motion(frames=100, seed=12, amplitude=0.3)
    # Knees and elbows are hinges here: only their bend, no wiggle of their own.
    rotations[:, [4, 5, 18, 19]] = [1.0, 0.0, 0.0, 0.0]
    bend = np.zeros((100, 22, 3))
    bend[:, [4, 5], 0] = 1.2  # knees bent 70 degrees about their hinge
    bend[:, 18, 1] = -1.2
    bend[:, 19, 1] = 1.2  # elbows bent forwards
    rotations = R.quat_mul(rotations, R.axis_angle_to_quat(bend))
    solved, _ = inverse_kinematics(forward_kinematics(rotations, root))
    global_source = _globals(rotations)
    global_solved = _globals(solved)
    for joint in (0, 1, 2, 9, 16, 17):
        assert geodesic(global_source[:, joint], global_solved[:, joint]).max() < 1e-6, joint


def human_like_motion(frames, seed):
    """Random smooth motion whose knees and elbows are hinges that bend one way only,
    passing through straight (where the bend plane is undefined)."""
    rotations, root = smooth_random_motion(frames=frames, seed=seed, amplitude=0.4)
    t = np.linspace(0, 1, frames)
    flex = 0.8 - 0.8 * np.cos(2 * np.pi * 3 * t + seed)  # 0 (straight) .. 1.6 rad
    hinge = np.zeros((frames, 22, 3))
    hinge[:, [4, 5], 0] = flex[:, None]
    hinge[:, 18, 1] = -flex
    hinge[:, 19, 1] = flex
    rotations[:, [4, 5, 18, 19]] = R.axis_angle_to_quat(hinge[:, [4, 5, 18, 19]])
    return rotations, root


@pytest.mark.parametrize("seed", range(4))
def test_ik_is_continuous_over_time(seed):
    # A slow motion must give slowly changing rotations: no twist flips between frames,
    # also when the limbs pass through straight.
    rotations, root = human_like_motion(400, seed)
    solved, _ = inverse_kinematics(forward_kinematics(rotations, root))
    step_source = geodesic(rotations[1:], rotations[:-1]).max()
    step_solved = geodesic(solved[1:], solved[:-1]).max()
    assert step_solved < 3 * step_source + np.radians(2.0)
    assert np.all(np.sum(solved[1:] * solved[:-1], axis=-1) > 0)  # same hemisphere


def test_ik_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(frames, 22, 3\)"):
        inverse_kinematics(np.zeros((4, 24, 3)))


def _globals(local):
    from retarget.skeleton import PARENTS

    out = local.copy()
    for joint in range(1, 22):
        out[:, joint] = R.quat_mul(out[:, PARENTS[joint]], local[:, joint])
    return out
