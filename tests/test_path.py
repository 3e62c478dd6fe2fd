"""Locomotion along a path (retarget/path.py), on the synthesizer's walks: pure numpy, fast."""

import numpy as np
import pytest

from retarget.path import (
    Path,
    blender_to_model,
    facing_yaw,
    follow_path,
    foot_sliding,
    model_to_blender,
    path_error,
    travel,
)
from retarget.skeleton import bone_lengths_of
from server.data import actions, synth


def synthesized(action: str, seconds: float, seed: int = 0) -> np.ndarray:
    """Joints (T, 22, 3) of one synthesizer action at 20 fps, starting at the origin
    facing +Z; "walk" is a plain forward walk (the synthesizer's own walk may jog or go
    backwards)."""
    rng = np.random.default_rng(seed)
    if action == "walk":
        segment, t = actions.new_segment("walk", {}, seconds)
        actions.gait(segment, t, "walk", rng)
    else:
        segment = actions.ACTIONS[action](rng, seconds)
    return synth.place_on_ground(actions.rotations(segment.angles), segment, 0.0)[2]


@pytest.fixture(scope="module")
def walk():
    return synthesized("walk", 6.0)


def s_curve(length: float, width: float = 0.8, points: int = 300) -> np.ndarray:
    """An S along +Z: one full sine period across `width` metres either side."""
    s = np.linspace(0.0, 1.0, points)
    return np.stack([width * np.sin(2 * np.pi * s), np.zeros_like(s), length * s], axis=-1)


def test_a_walk_bent_along_an_s_curve_stays_on_it_and_faces_along_it(walk):
    curve = s_curve(travel(walk)[-1] + 1.0)
    # The straight walk itself is far from the S and faces across it at the bends.
    distance, angle = path_error(walk, curve)
    assert distance > 0.5 and angle > 25
    followed = follow_path(walk, curve)
    distance, angle = path_error(followed.joints, curve)
    assert distance < 0.10
    assert angle < 15
    # It went as far along the curve as the walk travels (its own pace).
    assert followed.distance[-1] == pytest.approx(travel(walk)[-1])


def test_planted_feet_stay_planted_along_the_bends(walk):
    curve = s_curve(travel(walk)[-1] + 1.0, width=1.2)
    held = follow_path(walk, curve)
    assert held.sliding_before == pytest.approx(foot_sliding(walk))
    assert held.sliding_after <= held.sliding_before + 0.5
    # Without holding them, the bends drag the planted feet round: what holding removes.
    dragged = follow_path(walk, curve, hold_feet=False)
    assert dragged.sliding_after > held.sliding_after + 2.0
    # Every bone keeps its length (the legs by IK, the rest by a rigid turn per frame).
    np.testing.assert_allclose(bone_lengths_of(held.joints), bone_lengths_of(walk), atol=1e-9)
    # Heights are the motion's own.
    np.testing.assert_allclose(np.delete(held.joints[..., 1], [4, 5, 7, 8, 10, 11], axis=1),
                               np.delete(walk[..., 1], [4, 5, 7, 8, 10, 11], axis=1), atol=1e-12)


def test_a_straight_path_elsewhere_moves_and_turns_the_walk_rigidly(walk):
    # A straight path from (2, 0, 1) heading along +X: the walk turned a quarter left.
    line = np.array([[2.0, 0.0, 1.0], [20.0, 0.0, 1.0]])
    followed = follow_path(walk, line)
    assert path_error(followed.joints, line)[0] < 0.02
    np.testing.assert_allclose(np.median(facing_yaw(followed.joints) - facing_yaw(walk)), np.pi / 2, atol=0.02)
    assert followed.sliding_after == pytest.approx(followed.sliding_before, abs=0.05)


def test_past_the_end_the_walk_runs_straight_on(walk):
    short = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 2.0]])  # ends heading 45 degrees left
    followed = follow_path(walk, short)
    assert followed.distance[-1] > Path.from_points(short).length + 3
    root = followed.joints[-40:, 0][:, [0, 2]]
    heading = np.degrees(np.arctan2(*(root[-1] - root[0])))
    assert heading == pytest.approx(45, abs=3)


def test_a_motion_that_does_not_travel_stands_at_the_start_facing_along_the_path():
    standing = synthesized("wave", 3.0)
    line = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, -5.0]])  # heading -Z
    followed = follow_path(standing, line)
    root = followed.joints[:, 0][:, [0, 2]]
    assert np.abs(root - [1.0, 1.0]).max() < 0.1
    yaw = np.degrees(np.angle(np.exp(1j * facing_yaw(followed.joints))))
    assert np.all(np.abs(np.abs(yaw) - 180) < 15)


def test_blender_and_model_frames():
    # Blender's character faces -Y with Z up; the model's faces +Z with Y up.
    np.testing.assert_allclose(blender_to_model([0.0, -1.0, 0.0]), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(blender_to_model([0.0, 0.0, 2.0]), [0.0, 2.0, 0.0])
    np.testing.assert_allclose(blender_to_model([1.0, 0.0, 0.0]), [1.0, 0.0, 0.0])
    points = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(model_to_blender(blender_to_model(points)), points)


def test_nearest_point_and_tangent_of_a_path():
    corner = Path.from_points([[0, 0, 0], [0, 0, 0], [0, 5, 2], [2, 0, 2]])  # a duplicate point, heights ignored
    assert len(corner.points) == 3 and corner.length == pytest.approx(4.0)
    distance, arc = corner.nearest(np.array([[0.5, 1.0], [1.0, 2.5], [-1.0, -1.0]]))
    np.testing.assert_allclose(distance, [0.5, 0.5, np.sqrt(2)])
    np.testing.assert_allclose(arc, [1.0, 3.0, 0.0])
    np.testing.assert_allclose(np.degrees(corner.yaw_at([0.5, 3.5])), [0.0, 90.0])
    np.testing.assert_allclose(corner.point_at([-1.0, 5.0]), [[0.0, -1.0], [3.0, 2.0]])


@pytest.mark.parametrize("points, message", [
    (np.zeros((3, 2)), "shape"),
    ([[0, 0, 0]], "at least 2 points"),
    ([[0, 0, 0], [np.nan, 0, 1]], "finite"),
    ([[0, 0, 0], [0, 3, 0.001]], "at least 1 cm"),
    ([["a", "b", "c"], ["d", "e", "f"]], "finite numbers"),
])
def test_bad_paths_are_refused_in_one_line(walk, points, message):
    with pytest.raises(ValueError, match=message) as error:
        follow_path(walk, points)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_the_embedded_models_walks_follow_an_s_curve():
    """On real model output (its walks curve a little and slide their feet by themselves):
    on the curve within 10 cm and 15 degrees, no sliding added."""
    from server.model.store import load_any

    model = load_any()
    for seed in (0, 1):
        walk = model.generate("a person walks forward", frames=120, seed=seed)[0]
        curve = s_curve(travel(walk)[-1] + 1.0)
        followed = follow_path(walk, curve)
        distance, angle = path_error(followed.joints, curve)
        assert distance < 0.10 and angle < 15, (seed, distance, angle)
        assert followed.sliding_after <= followed.sliding_before + 0.5
