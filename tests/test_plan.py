"""The extension's task arithmetic (retarget/plan.py) on plain numpy inputs, without
Blender: which frames are read, what the model is asked for, and how its answer is
cut and bent onto the keys around it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.rigs import as_rig, humanoid
from retarget import plan, transfer
from retarget.contract import MAX_FRAMES, MIN_FRAMES, MODEL_FPS
from retarget.mapping import map_bones
from retarget.motion import Motion
from retarget.rotation import quat_about_axis
from retarget.skeleton import JOINT_COUNT
from retarget.transfer import Pose

REPO = Path(__file__).resolve().parent.parent
SCENE_RATES = (24, 25, 30, 60)
BONES = ("hips", "spine", "arm")


def turning_pose(frames: int, rate=(0.05, -0.03, 0.08), start: int = 0, offset_angle: float = 0.0,
                 offset_location=(0.0, 0.0, 0.0)) -> Pose:
    """Three bones turning steadily (bone k by rate[k] radians a frame about its own
    axis) and a root moving in a straight line, over frames start..start+frames-1; the
    offset turns every bone a little further and moves the root."""
    k = np.arange(start, start + frames, dtype=np.float64)
    axes = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
    angles = k[:, None] * np.asarray(rate)[None] + offset_angle
    rotations = quat_about_axis(np.broadcast_to(axes, (frames, 3, 3)), angles)
    location = np.stack([0.02 * k, 0.01 * k, 1.0 + 0.0 * k], axis=-1) + np.asarray(offset_location)
    return Pose(BONES, rotations, "hips", location, 24.0)


def angle_between(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The rotation angle from quaternions p to q (either sign)."""
    return 2 * np.arccos(np.clip(np.abs(np.sum(p * q, axis=-1)), 0.0, 1.0))


def test_plan_imports_without_blender():
    code = "import sys, retarget.plan; assert 'bpy' not in sys.modules, 'retarget.plan imported bpy'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_slice_pose_keeps_bones_root_and_rate():
    pose = turning_pose(10)
    part = plan.slice_pose(pose, 3, 7)
    assert part.frames == 4 and part.bones == BONES and part.root_bone == "hips" and part.fps == 24.0
    assert np.array_equal(part.rotations, pose.rotations[3:7])
    assert np.array_equal(part.root_location, pose.root_location[3:7])


# --- blending onto the keys ------------------------------------------------------------------

def test_a_fill_that_already_continues_the_keys_is_left_as_it_is():
    motion = turning_pose(40)
    before, fill, after = (plan.slice_pose(motion, *r) for r in ((8, 10), (10, 30), (30, 32)))
    joined = plan.blended(fill, before, after, fade=0)
    assert angle_between(joined.rotations, fill.rotations).max() < 1e-6
    assert np.abs(joined.root_location - fill.root_location).max() < 1e-9


@pytest.mark.parametrize("frames", [1, 2, 5, 25])
def test_blended_meets_the_keyed_frames_at_both_ends(frames):
    """A fill turned and moved away from the keyed motion comes back to it at both
    ends: from the key before it steps as the keys step, and it steps into the key after
    it the same way."""
    truth = turning_pose(frames + 4, start=8)
    before, after = plan.slice_pose(truth, 0, 2), plan.slice_pose(truth, frames + 2, frames + 4)
    fill = turning_pose(frames, start=10, offset_angle=0.6, offset_location=(0.3, -0.2, 0.1))
    joined = plan.blended(fill, before, after, fade=0)
    rate = np.array([0.05, 0.03, 0.08])
    # The steps across both joins are the keyed motion's own steps, give or take the
    # part of the offset the smooth blend still carries at the edge frames.
    edge = 1 - (1 / (frames + 1)) ** 2 * (3 - 2 / (frames + 1))  # blend weight on the first frame
    slack = (1 - edge) * 0.6 + 1e-6
    assert np.all(np.abs(angle_between(before.rotations[-1], joined.rotations[0]) - rate) <= slack)
    assert np.all(np.abs(angle_between(joined.rotations[-1], after.rotations[0]) - rate) <= slack)
    step = np.array([0.02, 0.01, 0.0])
    assert np.abs(joined.root_location[0] - before.root_location[-1] - step).max() <= (1 - edge) * 0.3 + 1e-9
    assert np.abs(after.root_location[0] - joined.root_location[-1] - step).max() <= (1 - edge) * 0.3 + 1e-9
    # In between it never strays further from the keyed motion than the fill was.
    assert angle_between(joined.rotations, truth.rotations[2:-2]).max() <= 0.6 + 1e-6


def test_blended_with_only_the_keys_before_fades_out_over_fade_frames():
    truth = turning_pose(32)
    before = plan.slice_pose(truth, 0, 2)
    fill = turning_pose(30, start=2, offset_angle=-0.4, offset_location=(0.0, 0.5, 0.0))
    joined = plan.blended(fill, before, None, fade=12)
    # Frame k carries 1 - smoothstep((k + 1) / 12) of the correction: none from k = 11 on.
    assert angle_between(joined.rotations[11:], fill.rotations[11:]).max() < 1e-6
    assert np.array_equal(joined.root_location[11:], fill.root_location[11:])
    first_weight = 1 - (1 / 12) ** 2 * (3 - 2 / 12)
    error = angle_between(joined.rotations[0], truth.rotations[2])
    assert np.all(error <= (1 - first_weight) * 0.4 + 1e-6)


def test_a_one_frame_neighbour_holds_its_pose():
    """With one keyed frame before (a gap right at the action's first key) the motion
    is not carried on: the fill starts from that pose."""
    held = turning_pose(1, start=5)
    fill = turning_pose(20, start=6, offset_angle=0.5)
    joined = plan.blended(fill, held, None, fade=10)
    first_weight = 1 - (1 / 10) ** 2 * (3 - 2 / 10)
    drift = angle_between(held.rotations[0], fill.rotations[0])  # the fill's first frame, unbent
    assert np.all(angle_between(held.rotations[0], joined.rotations[0]) <= (1 - first_weight) * drift + 1e-6)
    # One frame on each side of a gap works too.
    tail = turning_pose(1, start=26)
    both = plan.blended(fill, held, tail, fade=0)
    assert np.isfinite(both.rotations).all() and np.allclose(np.linalg.norm(both.rotations, axis=-1), 1.0)


def test_the_correction_takes_the_short_way_round():
    """q and -q are one rotation: a fill given with flipped signs is bent as little."""
    motion = turning_pose(30)
    before, fill, after = (plan.slice_pose(motion, *r) for r in ((0, 2), (2, 28), (28, 30)))
    flipped = Pose(fill.bones, -fill.rotations, fill.root_bone, fill.root_location, fill.fps)
    joined = plan.blended(flipped, before, after, fade=0)
    assert angle_between(joined.rotations, fill.rotations).max() < 1e-6


# --- in-between ------------------------------------------------------------------------------

def test_choose_gap_takes_the_given_range_else_the_keys_around_the_playhead():
    keys = np.array([1, 14, 41, 60])
    assert plan.choose_gap(None, 25, chosen=(14, 41)) == (14, 41)
    assert plan.choose_gap(keys, 25) == (14, 41)
    assert plan.choose_gap(keys, 14) == (14, 41)  # on a key: the gap after it
    with pytest.raises(ValueError, match="put the playhead between two keyframes"):
        plan.choose_gap(keys, 60)
    with pytest.raises(ValueError, match="no frame inside it"):
        plan.choose_gap(keys, 0, chosen=(10, 11))


def test_inbetween_shows_the_model_up_to_three_seconds_either_side():
    keys = np.arange(1, 400)
    gap = plan.InbetweenPlan.around(100, 130, keys, 24)
    assert (gap.first, gap.last) == (100 - 72, 130 + 72)
    near_the_ends = plan.InbetweenPlan.around(10, 380, keys, 24)
    assert (near_the_ends.first, near_the_ends.last) == (1, 399)  # no further than the keys


def model_frames(first: int, last: int, fps: float) -> int:
    """How many frames the model is shown for scene frames first..last: the motion
    resampled to MODEL_FPS as the extension does (covering the last frame)."""
    frames = last - first + 1
    rotations = np.broadcast_to(np.array([1.0, 0, 0, 0]), (frames, JOINT_COUNT, 4))
    return Motion.from_rotations(rotations, np.zeros((frames, 3)), fps).resampled(MODEL_FPS, cover_end=True).frames


@pytest.mark.parametrize("fps", SCENE_RATES)
def test_the_mask_covers_every_scene_frame_of_the_gap(fps):
    """Each scene frame inside the gap falls between two model frames the model writes,
    whatever the scene rate, for short and long gaps at any phase of the 20 fps grid."""
    keys = np.arange(1, 500)
    for a in range(60, 60 + fps // 4):  # every phase against the model's grid
        for length in (2, 3, 5, 7, 16, 41, 100):
            gap = plan.InbetweenPlan.around(a, a + length, keys, fps)
            shown = model_frames(gap.first, gap.last, fps)
            start, end = gap.mask(fps, shown)
            assert 1 <= start < end <= shown - 1
            inside = (np.arange(a + 1, a + length) - gap.first) * MODEL_FPS / fps  # in model frames
            assert np.all(np.floor(inside + 1e-9) >= start), (fps, a, length, start)
            assert np.all(np.ceil(inside - 1e-9) <= end - 1), (fps, a, length, end)


@pytest.mark.parametrize("fps", SCENE_RATES)
def test_a_gap_at_the_actions_first_key_keeps_the_first_given_frame(fps):
    keys = np.array([1, 2, 3, 30, 31, 32])
    gap = plan.InbetweenPlan.around(3, 30, keys, fps)
    assert gap.first == 1
    start, end = gap.mask(fps, model_frames(gap.first, gap.last, fps))
    assert start == 1  # model frame 0 stays the given pose


def test_a_gap_the_model_grid_cannot_hold_is_refused():
    keys = np.array([0, 2])
    gap = plan.InbetweenPlan.around(0, 2, keys, 60)
    with pytest.raises(ValueError, match="too short for the model's 20 fps"):
        gap.mask(60, model_frames(gap.first, gap.last, 60))


def test_inbetween_fill_takes_the_gap_frames_and_joins_them():
    truth = turning_pose(60)  # scene frames 0..59
    gap = plan.InbetweenPlan(a=20, b=40, first=5, last=50)
    existing = plan.slice_pose(truth, 5, 51)
    ends = gap.keyed_ends(existing)
    assert np.array_equal(ends[0].rotations, truth.rotations[19:21])
    assert np.array_equal(ends[1].rotations, truth.rotations[40:42])
    answer = turning_pose(46, start=5, offset_angle=0.3)
    inside = gap.fill(answer, ends)
    assert inside.frames == 19  # frames 21..39
    assert angle_between(inside.rotations, truth.rotations[21:40]).max() <= 0.3 + 1e-6
    with pytest.raises(ValueError, match="shorter than the gap"):
        gap.fill(plan.slice_pose(answer, 0, 30), ends)


def test_keyed_ends_at_the_first_frame_are_one_frame():
    gap = plan.InbetweenPlan(a=5, b=20, first=5, last=21)
    before, after = gap.keyed_ends(turning_pose(17, start=5))
    assert before.frames == 1 and after.frames == 2
    assert gap.fill(turning_pose(17, start=5, offset_angle=0.2), (before, after)).frames == 14


# --- continue, caption, generate ------------------------------------------------------------

@pytest.mark.parametrize("fps", SCENE_RATES)
def test_continue_adds_the_scene_frames_the_new_model_frames_cover(fps):
    keys = np.arange(1, 200)
    continuation = plan.ContinuePlan.after(keys, 1.0, fps, "walk")
    assert continuation.last == 199 and continuation.first == 199 - 3 * fps
    assert continuation.model_frames == 20
    # 20 new frames at 20 fps end 1 s after the last key: that many scene frames.
    assert continuation.added == fps
    assert continuation.fade == round(0.5 * fps)


def test_continue_asks_for_whole_tokens_within_the_models_limits():
    keys = np.arange(1, 100)
    assert plan.ContinuePlan.after(keys, 1.12, 24, "walk").model_frames == 20  # 22 frames -> 5 tokens
    assert plan.ContinuePlan.after(keys, 1.0, 24, "walk").added == 24
    assert plan.ContinuePlan.after(np.array([1, 2]), 1.0, 24, "walk").first == 1
    with pytest.raises(ValueError, match="the length must be between"):
        plan.ContinuePlan.after(keys, MAX_FRAMES / MODEL_FPS + 1, 24, "walk")
    with pytest.raises(ValueError, match="'walk' needs keys on at least two frames to be continued"):
        plan.ContinuePlan.after(np.array([7]), 1.0, 24, "walk")


def test_continue_takes_the_new_frames_after_the_last_key_and_runs_on_from_it():
    truth = turning_pose(80)
    continuation = plan.ContinuePlan(first=10, last=49, model_frames=20, added=24, fade=12)
    keyed_end = continuation.keyed_end(plan.slice_pose(truth, 10, 50))
    assert np.array_equal(keyed_end.rotations, truth.rotations[48:50])
    answer = turning_pose(70, start=10, offset_angle=0.25)  # the given motion, then the new one
    new = continuation.new_part(answer, keyed_end)
    assert new.frames == 24
    assert np.all(angle_between(truth.rotations[50], new.rotations[0]) < 0.25 * 0.05)
    assert angle_between(new.rotations[11:], answer.rotations[51:64]).max() < 1e-6
    with pytest.raises(ValueError, match="no new frames"):
        continuation.new_part(plan.slice_pose(answer, 0, 40), keyed_end)


def test_whole_action_and_generation_lengths():
    assert plan.whole_action(np.array([3, 9, 40]), "walk") == plan.FrameRange(3, 40)
    with pytest.raises(ValueError, match="'pose' needs keys on at least two frames to be captioned"):
        plan.whole_action(np.array([3]), "pose", "captioned")
    assert plan.whole_action(np.array([3]), "pose") == plan.FrameRange(3, 3)
    assert plan.generation_frames(2.0) == 40
    assert plan.generation_frames(MIN_FRAMES / MODEL_FPS) == MIN_FRAMES
    for seconds in (0.1, MAX_FRAMES / MODEL_FPS + 0.5):
        with pytest.raises(ValueError, match="the length must be between"):
            plan.generation_frames(seconds)


def test_one_rig_read_binds_once_there_and_back():
    """The model motion and the answer's pose on the same Rig object share one binding
    (the extension reads the rig once per request for this)."""
    rig = as_rig(humanoid("mixamo", seed=1))
    bone_map = map_bones(rig)
    transfer._BINDINGS.clear()
    rotations = np.broadcast_to(np.array([1.0, 0, 0, 0]), (30, JOINT_COUNT, 4))
    pose = plan.scene_pose(Motion.from_rotations(rotations, np.zeros((30, 3))), 24, rig, bone_map, foot_lock=False)
    assert pose.frames == 36  # 29 steps at 20 fps cover 1.45 s: 34.8 steps at 24 fps, the end covered
    motion = plan.model_motion(rig, bone_map, pose)
    assert motion.fps == MODEL_FPS and motion.frames == 31  # 35 steps at 24 fps take 29.2 at 20: covered by 30
    assert len(transfer._BINDINGS) == 1
