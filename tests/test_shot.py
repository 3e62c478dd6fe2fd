"""A directed shot's pure part (retarget/shot.py): validation, build and edit plans,
placing, stitching and join continuity, on the synthesizer's motions. Pure numpy, fast."""

import numpy as np
import pytest

from retarget.contract import MAX_FRAMES, MIN_INBETWEEN_FRAMES, MODEL_FPS
from retarget.path import facing_yaw, path_error
from retarget.shot import (
    PACE_MARGIN,
    Block,
    Placement,
    blend_fill,
    build_plan,
    calmed_fill,
    edit_plan,
    end_of,
    fill_from_answer,
    fill_pace,
    join_continuity,
    join_request,
    model_frames,
    place_blocks,
    resample_joints,
    stitch,
    validate,
)
from retarget.skeleton import JOINT_INDEX
from tests.test_path import s_curve, synthesized

FPS = 24.0


def three_blocks(path=None):
    """Walk, wave, walk: abutting, then a gap of half a second."""
    return [Block("walk", "a person walks forward", 1, 96, seed=1),
            Block("wave", "a person waves with the right hand", 97, 72, seed=2),
            Block("walk on", "a person walks forward", 181, 96, seed=3, path=path)]


@pytest.fixture(scope="module")
def motions():
    """The model's answers stood in for by the synthesizer, at MODEL_FPS, each from the
    origin facing +Z as the model writes them."""
    return [synthesized("walk", 4.0, seed=1), synthesized("wave", 3.0, seed=2), synthesized("walk", 4.0, seed=3)]


# --- validation ------------------------------------------------------------------------

def test_blocks_come_back_sorted_and_overlaps_are_refused_naming_both():
    blocks = three_blocks()
    assert [b.name for b in validate(blocks[::-1], FPS)] == ["walk", "wave", "walk on"]
    overlapping = [blocks[0], Block("sit", "a person sits down", 90, 48)]
    with pytest.raises(ValueError) as error:
        validate(overlapping, FPS)
    message = str(error.value)
    assert "'sit' (frames 90-137)" in message and "'walk' (frames 1-96)" in message and "overlaps" in message
    assert "\n" not in message


def test_a_path_that_is_not_points_is_refused():
    with pytest.raises(ValueError, match="block 'a': its path must be points"):
        Block("a", "walk", 1, 48, path=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="of numbers"):
        Block("a", "walk", 1, 48, path=[["x", 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("blocks, message", [
    ([], "no prompt blocks"),
    ([Block("a", "walk", 1, 4)], "0.17 s long"),  # under one token (0.2 s)
    ([Block("a", "walk", 1, int(20.5 * FPS))], "from 0.2 to 20 s"),
    ([Block("a", "  ", 1, 48)], "has no text"),
    ([Block("a", "walk", 1, 48), Block("a", "wave", 60, 48)], "two prompt blocks are named 'a'"),
    ([Block("a", "walk", 1, 48, continues=True)], "nothing to continue"),
    ([Block("a", "walk", 1.5, 48)], "whole number"),
    ([Block("a", "walk", 1, 48), Block("b", "wave", 49, 10), Block("c", "walk", 59, 48)], "too short to join"),
    ([Block("a", "walk", 1, 48), Block("b", "wave", 49 + 25 * 24, 48)], "at most 19.4 s can be filled"),
    ([Block("a", "walk", 1, 48, path=[[0, 0, 0], [0, 0, np.inf]])], "block 'a' .*finite"),
    ([Block("a", "walk", 1, 48, path=[[0, 0, 0], [0, 2, 0]])], "block 'a' .*at least 1 cm"),
])
def test_bad_blocks_are_refused_in_one_line(blocks, message):
    with pytest.raises(ValueError, match=message) as error:
        build_plan(blocks, FPS)
    assert "\n" not in str(error.value)


def test_the_longest_and_shortest_blocks_fit_the_model():
    assert model_frames(Block("a", "walk", 1, 20 * 24), 24.0) == MAX_FRAMES
    assert model_frames(Block("a", "walk", 1, 5), 24.0) == 8  # 0.21 s: two tokens
    assert model_frames(Block("a", "walk", 1, 96), 24.0) == 80
    build_plan([Block("a", "walk", 1, 20 * 24)], 24.0)


# --- the build plan ----------------------------------------------------------------------

def test_joins_fill_the_seams_and_gaps_with_context_from_their_own_blocks():
    plan = build_plan(three_blocks(), FPS)
    assert plan.generate == (0, 1, 2) and plan.continued == ()
    assert (plan.first, plan.last) == (1, 276)
    seam, gap = plan.joins
    # Abutting blocks: 0.2 s either side of the seam rewritten.
    assert not seam.gap and (seam.a, seam.b) == (96 - 5, 97 + 5)
    # The gap 169..180 (12 frames, more than two tokens) is filled as it is.
    assert gap.gap and (gap.a, gap.b) == (168, 181)
    for join in plan.joins:
        before, after = plan.kept(join.before), plan.kept(join.after)
        assert before.start <= join.first <= join.a == before[-1]
        assert after[0] == join.b <= join.last <= after[-1]
        model_window, mask_start, mask_end = join_request(np.zeros((plan.last - plan.first + 1, 22, 3)), plan, join)
        assert MIN_INBETWEEN_FRAMES <= len(model_window) <= MAX_FRAMES
        assert 0 < mask_start < mask_end < len(model_window)
    # The wave's context for both joins stays inside its own kept frames.
    assert plan.kept(1) == range(102, 169)


def test_a_short_gap_is_widened_into_its_blocks():
    plan = build_plan([Block("a", "walk", 1, 48), Block("b", "wave", 51, 48)], FPS)
    (join,) = plan.joins
    assert len(join.fill) >= 0.4 * FPS - 1 and join.a < 48 and join.b > 51


def test_continued_blocks_follow_the_block_before():
    blocks = three_blocks()
    blocks[1] = Block("wave", blocks[1].text, 97, 72, seed=2, continues=True)
    plan = build_plan(blocks, FPS)
    assert plan.generate == (0, 2) and plan.continued == (1,)


# --- edits -------------------------------------------------------------------------------

def test_editing_the_middle_block_redoes_only_it_and_its_two_joins():
    old = three_blocks()
    new = [old[0], Block("wave", "a person waves with both hands", 97, 72, seed=2), old[2]]
    edit = edit_plan(old, new, FPS)
    assert edit.regenerate == (1,) and edit.joins == (0, 1)
    assert edit.frames == ((92, 180),)  # the seam's fill from 92, the wave, the gap to 180
    assert edit.moved == (2,)  # the last walk starts where the wave ends: moved, not regenerated
    with_path = three_blocks(path=s_curve(4.0))
    assert edit_plan(with_path, [with_path[0], new[1], with_path[2]], FPS).moved == ()


def test_edits_of_one_end_or_a_neighbour_touch_only_what_they_change():
    old = three_blocks()
    reseeded = edit_plan(old, [old[0], old[1], Block("walk on", old[2].text, 181, 96, seed=9)], FPS)
    assert reseeded.regenerate == (2,) and reseeded.joins == (1,) and reseeded.moved == ()
    assert reseeded.frames == ((169, 276),)
    deleted = edit_plan(old, old[:2], FPS)
    assert deleted.regenerate == () and deleted.joins == () and deleted.removed == ((169, 276),)
    assert edit_plan(old, old, FPS).frames == ()
    chained = [old[0], Block("wave", old[1].text, 97, 72, seed=2, continues=True), old[2]]
    first_edited = [Block("walk", "a person runs forward", 1, 96, seed=1), *chained[1:]]
    assert edit_plan(chained, first_edited, FPS).regenerate == (0, 1)


def test_frames_a_join_gives_back_to_its_blocks_are_rewritten_too():
    old = [Block("a", "walk", 1, 48), Block("b", "wave", 51, 48)]  # a 2-frame gap, widened into both blocks
    new = [old[0], Block("b", "wave", 61, 48)]
    edit = edit_plan(old, new, FPS)
    old_join = build_plan(old, FPS).joins[0]
    assert edit.regenerate == (1,) and edit.joins == (0,)
    # Frame 47 was the old fill's, and is block a's own again: rewritten.
    assert old_join.a < 47 < old_join.b and edit.frames == ((old_join.a + 1, 108),)


def test_deleting_the_middle_block_fills_its_frames_from_the_new_join():
    old = three_blocks()
    edit = edit_plan(old, [old[0], old[2]], FPS)
    assert edit.regenerate == () and edit.joins == (0,) and edit.removed == ()
    join = edit.plan.joins[0]
    assert join.gap and (join.a, join.b) == (96, 181)
    assert edit.frames == ((92, 180),)  # the old seam's fill into block a, and the gap


# --- placing and stitching ---------------------------------------------------------------

def test_each_block_starts_where_the_previous_one_ended(motions):
    plan = build_plan(three_blocks(), FPS)
    placed = place_blocks(plan, motions)
    assert placed[0].placement == Placement(0.0, (0.0, 0.0))
    for before, after in zip(placed[:-1], placed[1:]):
        end_root, end_yaw = end_of(before.joints, FPS)
        start_root = after.joints[0, 0][[0, 2]]
        assert np.linalg.norm(start_root - end_root) < 1e-9
        start_yaw = np.arctan2(np.sin(facing_yaw(after.joints[:12])), np.cos(facing_yaw(after.joints[:12])))
        assert abs(np.angle(np.exp(1j * (np.arctan2(np.sin(start_yaw).mean(), np.cos(start_yaw).mean()) - end_yaw)))) < 1e-6
    # The second walk carries on in the first walk's direction (+Z), not back from the origin.
    assert placed[2].joints[-1, 0, 2] > placed[0].joints[-1, 0, 2] + 3.0


def test_a_block_with_a_path_follows_it(motions):
    curve = s_curve(6.0) + [5.0, 0.0, 0.0]
    plan = build_plan(three_blocks(path=curve), FPS)
    placed = place_blocks(plan, motions)
    assert placed[2].placement is None
    distance, angle = path_error(placed[2].joints, curve, FPS)
    assert distance < 0.10 and angle < 15
    assert placed[2].path_error[0] < 0.10 and placed[2].sliding[1] <= placed[2].sliding[0] + 0.5
    # Kept (an edit elsewhere), the block is taken as it is: already on its path.
    on_path = resample_joints(placed[2].joints, FPS, MODEL_FPS, model_frames(plan.blocks[2], FPS))
    kept = place_blocks(plan, [motions[0], motions[1], on_path], keep={2: Placement(0.0, (0.0, 0.0))})
    assert kept[2].path_error is None
    np.testing.assert_array_equal(kept[2].joints[0], placed[2].joints[0])


def test_stitched_joins_are_continuous(motions):
    plan = build_plan(three_blocks(), FPS)
    shot = stitch(plan, place_blocks(plan, motions))
    assert shot.shape == (plan.last - plan.first + 1, 22, 3)
    for continuity in join_continuity(shot, plan):
        assert continuity.ratio <= 1.0 and continuity.root_ratio <= 1.0, continuity
    # The same motions each left where the model put them (at the origin) jump back there.
    unplaced = [resample_joints(m, MODEL_FPS, FPS, b.length) for m, b in zip(motions, plan.blocks)]
    assert max(c.root_ratio for c in join_continuity(stitch(plan, unplaced), plan)) > 3.0


def test_an_edit_with_kept_placements_changes_only_the_planned_frames(motions):
    old_blocks = three_blocks()
    new_blocks = [old_blocks[0], Block("wave", "a person waves with both hands", 97, 72, seed=5), old_blocks[2]]
    old_plan = build_plan(old_blocks, FPS)
    old_placed = place_blocks(old_plan, motions)
    before = stitch(old_plan, old_placed)
    edit = edit_plan(old_blocks, new_blocks, FPS)
    new_motions = [motions[0], synthesized("wave", 3.0, seed=5), motions[2]]
    keep = {k: old_placed[k].placement for k in edit.moved}
    after = stitch(edit.plan, place_blocks(edit.plan, new_motions, keep=keep))
    changed = np.flatnonzero(np.any(before != after, axis=(1, 2))) + edit.plan.first
    assert len(changed)
    inside = np.zeros(len(changed), dtype=bool)
    for first, last in edit.frames:
        inside |= (changed >= first) & (changed <= last)
    assert inside.all(), changed[~inside]
    # Untouched frames are bit-identical.
    outside = np.ones(len(before), dtype=bool)
    for first, last in edit.frames:
        outside[first - edit.plan.first : last - edit.plan.first + 1] = False
    assert np.array_equal(before[outside], after[outside])


def test_a_model_fill_is_bent_onto_both_ends(motions):
    plan = build_plan(three_blocks(), FPS)
    placed = place_blocks(plan, motions)
    shot = stitch(plan, placed)
    join = plan.joins[1]
    window, mask_start, mask_end = join_request(shot, plan, join)
    # An answer that keeps the given frames and puts something else in the mask, a
    # little off at the ends, as a model's fill is.
    answer = window.copy()
    answer[mask_start:mask_end] += [0.05, 0.0, -0.03]
    fill = fill_from_answer(answer, plan, join)
    assert len(fill) == join.b - join.a + 1
    filled = stitch(plan, placed, fills={1: fill})
    assert not np.allclose(filled, shot)
    a, b = join.a - plan.first, join.b - plan.first
    np.testing.assert_array_equal(filled[: a + 1], shot[: a + 1])
    np.testing.assert_array_equal(filled[b:], shot[b:])
    assert join_continuity(filled, plan)[1].ratio <= 1.0
    with pytest.raises(ValueError, match="must cover the join's frames"):
        stitch(plan, placed, fills={1: fill[1:]})


def test_the_pace_of_a_fill_tells_a_jerk_from_a_calm_one(motions):
    plan = build_plan(three_blocks(), FPS)
    shot = stitch(plan, place_blocks(plan, motions))  # every join the stand-in blend
    join = plan.joins[1]
    window, mask_start, mask_end = join_request(shot, plan, join)
    jerky = window.copy()
    jerky[(mask_start + mask_end) // 2, :, 0] += 0.6  # the whole body 60 cm aside for one frame
    assert fill_pace(shot, plan, join, fill_from_answer(jerky, plan, join)) > 2.0
    # The stand-in's own frames through the model's rate and back: calm.
    assert fill_pace(shot, plan, join, fill_from_answer(window, plan, join)) <= PACE_MARGIN
    with pytest.raises(ValueError, match="must cover the join's frames"):
        fill_pace(shot, plan, join, window[:3])


def test_bending_a_fill_turns_its_bones_and_never_shrinks_them(motions):
    plan = build_plan(three_blocks(), FPS)
    placed = place_blocks(plan, motions)
    shot = stitch(plan, placed)
    join = plan.joins[1]
    fill = fill_from_answer(join_request(shot, plan, join)[0], plan, join)
    shoulder, elbow, wrist = (JOINT_INDEX[f"right_{name}"] for name in ("shoulder", "elbow", "wrist"))
    flipped = fill.copy()  # the right arm pointing the opposite way all through the fill
    flipped[:, elbow] = 2 * fill[:, shoulder] - fill[:, elbow]
    flipped[:, wrist] = flipped[:, elbow] - (fill[:, wrist] - fill[:, elbow])
    bent = stitch(plan, placed, fills={1: flipped})[join.a - plan.first:join.b - plan.first + 1]
    length = np.linalg.norm(bent[:, elbow] - bent[:, shoulder], axis=-1)
    ends = np.linalg.norm(fill[[0, -1], elbow] - fill[[0, -1], shoulder], axis=-1)
    # Faded as positions, the bone would pass through a few centimetres mid-gap.
    assert length.min() > 0.95 * ends.min() and length.max() < 1.05 * ends.max()
    np.testing.assert_allclose(bent[[0, -1]], shot[[join.a - plan.first, join.b - plan.first]], atol=1e-9)


def test_a_rushed_fill_is_calmed_to_the_blocks_pace_and_a_calm_one_kept(motions):
    plan = build_plan(three_blocks(), FPS)
    shot = stitch(plan, place_blocks(plan, motions))
    join = plan.joins[1]
    window, mask_start, mask_end = join_request(shot, plan, join)
    rushed = window.copy()
    middle = (mask_start + mask_end) // 2
    rushed[middle:mask_end, :, 1] += 0.3  # the whole body 30 cm up from one frame to the next, mid-gap
    rushed = fill_from_answer(rushed, plan, join)
    assert fill_pace(shot, plan, join, rushed) > 1.5
    calm = calmed_fill(shot, plan, join, rushed)
    assert fill_pace(shot, plan, join, calm) <= PACE_MARGIN
    a, b = join.a - plan.first, join.b - plan.first
    np.testing.assert_allclose(calm[0], shot[a], atol=1e-9)  # the ends meet the blocks
    np.testing.assert_allclose(calm[-1], shot[b], atol=1e-9)
    # Smoothed only as far as needed: nearer the model's fill than the straight line between the ends is.
    bent = stitch(plan, place_blocks(plan, motions), fills={1: rushed})[a:b + 1]
    straight = shot[a] + (shot[b] - shot[a]) * np.linspace(0, 1, b - a + 1)[:, None, None]
    assert np.abs(calm - bent).mean() < 0.5 * np.abs(straight - bent).mean()
    kept = fill_from_answer(window, plan, join)
    np.testing.assert_allclose(calmed_fill(shot, plan, join, kept), stitch(plan, place_blocks(plan, motions),
                                                                           fills={1: kept})[a:b + 1], atol=1e-9)


def test_the_stand_in_fill_meets_both_ends_with_their_velocities(motions):
    plan = build_plan(three_blocks(), FPS)
    shot = stitch(plan, place_blocks(plan, motions))
    join = plan.joins[0]
    fill = blend_fill(shot, plan, join)
    a, b = join.a - plan.first, join.b - plan.first
    np.testing.assert_allclose(fill[0], shot[a])
    np.testing.assert_allclose(fill[-1], shot[b])
    # It leaves frame a at the block's own velocity (a straight line between the ends would not).
    own_step = shot[a] - shot[a - 1]
    assert np.abs((fill[1] - fill[0]) - own_step).max() < 0.025
    straight_step = (shot[b] - shot[a]) / (b - a)
    assert np.abs(straight_step - own_step).max() > 0.05


def test_the_model_frames_of_a_join_match_the_server_contract():
    plan = build_plan(three_blocks(), FPS)
    shot = np.zeros((plan.last - plan.first + 1, 22, 3))
    window, mask_start, mask_end = join_request(shot, plan, plan.joins[0])
    first, last = plan.joins[0].first, plan.joins[0].last
    assert len(window) == int(np.ceil((last - first) * MODEL_FPS / FPS - 1e-6)) + 1
