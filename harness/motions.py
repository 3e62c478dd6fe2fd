"""Motions the tests build: smooth random rotations on the reference skeleton."""

import numpy as np

from retarget.kinematics import forward_kinematics
from retarget.rotation import axis_angle_to_quat, quat_about_axis, quat_mul
from retarget.skeleton import JOINT_COUNT


def smooth_random_motion(frames=120, seed=0, amplitude=0.35, turn_degrees=0.0, walk_speed=0.0):
    """Local rotations (T, 22, 4) and root translation (T, 3): smooth joint wiggles, a
    yaw turn of `turn_degrees` over the clip and walking along the facing direction."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, frames)[:, None, None]
    phases = rng.uniform(0, 2 * np.pi, (1, JOINT_COUNT, 3))
    speeds = rng.uniform(1.0, 4.0, (1, JOINT_COUNT, 3))
    axis_angle = amplitude * np.sin(2 * np.pi * speeds * t + phases)
    rotations = axis_angle_to_quat(axis_angle)
    yaw = np.radians(turn_degrees) * t[:, 0, 0]
    turn = quat_about_axis(np.array([0.0, 1.0, 0.0]), yaw)
    rotations[:, 0] = quat_mul(turn, rotations[:, 0])
    step = walk_speed / 20.0
    root = np.zeros((frames, 3))
    root[:, 0] = np.cumsum(step * np.sin(yaw))
    root[:, 2] = np.cumsum(step * np.cos(yaw))
    root[:, 1] = 0.95
    return rotations, root


def smooth_random_joints(**kwargs):
    rotations, root = smooth_random_motion(**kwargs)
    return forward_kinematics(rotations, root)
