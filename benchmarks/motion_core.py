"""Throughput of the motion core against a straightforward per-frame reference.

Prints frames per second of features -> joints (HumanML3D recovery) and joints ->
rotations (inverse kinematics), each next to a per-frame Python loop measured in the
same run on the same data, and the ratio. The goal is at least 50x.

    .venv/bin/python benchmarks/motion_core.py
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retarget.humanml3d import joints_from_features
from retarget.kinematics import inverse_kinematics
from retarget.rotation import normalize, quat_between, quat_conj, quat_mul, quat_rotate
from retarget.skeleton import JOINT_COUNT, PARENTS, REST_OFFSETS

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "hml3d_012314_features.npy"


def per_frame_joints_from_features(features):
    """The recovery written the obvious way: one frame at a time, one joint at a time."""
    out = np.zeros((len(features), JOINT_COUNT, 3))
    angle = 0.0
    root = np.zeros(3)
    for t, row in enumerate(features):
        if t > 0:
            angle += features[t - 1, 0]
        facing_inverse = np.array([np.cos(angle), 0.0, -np.sin(angle), 0.0])
        if t > 0:
            root = root + quat_rotate(facing_inverse, np.array([features[t - 1, 1], 0.0, features[t - 1, 2]]))
        out[t, 0] = [root[0], row[3], root[2]]
        for j in range(1, JOINT_COUNT):
            p = quat_rotate(facing_inverse, row[4 + 3 * (j - 1) : 4 + 3 * j])
            out[t, j] = [p[0] + root[0], p[1], p[2] + root[2]]
    return out


def per_frame_inverse_kinematics(joints):
    """Swing-only IK, one frame and one joint at a time (less work than the real one)."""
    children = {0: 3, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12, 12: 15, 13: 16, 14: 17, 16: 18, 17: 19, 18: 20, 19: 21}
    out = np.zeros((len(joints), JOINT_COUNT, 4))
    for t in range(len(joints)):
        glob = [None] * JOINT_COUNT
        for j in range(JOINT_COUNT):
            parent_rot = glob[PARENTS[j]] if PARENTS[j] >= 0 else np.array([1.0, 0.0, 0.0, 0.0])
            if j in children:
                bone = normalize(joints[t, children[j]] - joints[t, j])
                swing = quat_between(quat_rotate(parent_rot, normalize(REST_OFFSETS[children[j]])), bone)
                glob[j] = quat_mul(swing, parent_rot)
            else:
                glob[j] = parent_rot
            out[t, j] = quat_mul(quat_conj(parent_rot), glob[j]) if j else glob[j]
    return out


def frames_per_second(function, data, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(data)
        best = min(best, time.perf_counter() - start)
    return len(data) / best


def main():
    features = np.load(DATA).astype(np.float64)
    # A long clip (the published one, 12 times) so the vectorized timing is not all overhead.
    long_features = np.concatenate([features] * 12)
    joints = joints_from_features(long_features)
    assert np.abs(per_frame_joints_from_features(features) - joints_from_features(features)).max() < 1e-6
    rows = []
    for name, fast, slow, data in (
        ("features -> joints", joints_from_features, per_frame_joints_from_features, long_features),
        ("joints -> rotations", lambda j: inverse_kinematics(j), per_frame_inverse_kinematics, joints),
    ):
        fast_fps = frames_per_second(fast, data, repeats=7)
        slow_fps = frames_per_second(slow, data[:200], repeats=2)
        rows.append((name, fast_fps, slow_fps, fast_fps / slow_fps))
    print(f"{'step':22s} {'vectorized fps':>15s} {'per-frame fps':>14s} {'ratio':>8s}")
    for name, fast_fps, slow_fps, ratio in rows:
        print(f"{name:22s} {fast_fps:15.0f} {slow_fps:14.0f} {ratio:7.0f}x   (goal >= 50x: {'met' if ratio >= 50 else 'NOT met'})")


if __name__ == "__main__":
    main()
