"""Directing a shot in real Blender: prompt blocks on an armature built into one action,
one block rebuilt alone, a walk along an S curve, refusals that change nothing, blocks
that survive save and reload. The extension is built and validated with Blender's own
tool and installed into a fresh user folder; the embedded default model answers from a
real server on loopback (tests/blender/shot_scene.py drives Blender; the pure plan is
tests/test_shot.py's)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.blender import BLENDERS, read_result
from harness.rigs import BUILD_CODE, humanoid, to_json
from harness.server import Server

pytestmark = [pytest.mark.blender, pytest.mark.server, pytest.mark.slow]

SCENE = (Path(__file__).parent / "blender" / "shot_scene.py").read_text()
BLOCKS = [(10, 69), (70, 117), (128, 187)]  # the scene's three blocks: first..last frame
HAND_KEYED = 'pose.bones["mixamorig:Head"].rotation_quaternion'
# The bones the shot keys (the Mixamo rig's 22 mapped bones; fingers and toe ends follow them).
MAPPED = [f"mixamorig:{name}" for name in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head")] + [
    f"mixamorig:{side}{name}" for side in ("Left", "Right")
    for name in ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot", "ToeBase")]
PATH_TOLERANCE = 0.10  # metres from the curve
FACING_TOLERANCE = 15.0  # degrees from the curve's tangent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shot-server")
    running = Server(None, log_path=folder / "server.log").wait_ready(timeout=600)
    yield running
    running.stop()


def run_shot_scene(python, extension_zip, server, folder: Path) -> dict:
    (folder / "user").mkdir(parents=True)
    rig_path = folder / "rig.json"
    rig_path.write_text(to_json(humanoid("mixamo", seed=1)))
    process = subprocess.run([python, "-c", BUILD_CODE + SCENE, str(extension_zip), server.url, str(folder),
                              str(rig_path)], capture_output=True, text=True, timeout=1800,
                             env=dict(os.environ, BLENDER_USER_RESOURCES=str(folder / "user")))
    return read_result(process)


@pytest.fixture(scope="module")
def shot(extension_zip, server, tmp_path_factory):
    return run_shot_scene(sys.executable, extension_zip, server, tmp_path_factory.mktemp("shot"))


def keys(table: dict) -> dict:
    return {name: np.array(rows) for name, rows in table.items()}


def heads(table: dict, first: int) -> tuple:
    """(frames (T,), positions (T, 22, 3)) of the mapped bones' world heads (the root first)."""
    positions = np.stack([np.array(table[name]) for name in MAPPED], axis=1)
    return np.arange(first, first + len(positions)), positions


def largest_steps(positions: np.ndarray) -> np.ndarray:
    """(T - 1,) the largest distance any bone's head moves from each frame to the next."""
    return np.linalg.norm(np.diff(positions, axis=0), axis=-1).max(axis=-1)


def check_joins_continuous(table: dict, joins, first: int) -> list:
    """At every join (frames a..b) the body moves no further from one frame to the next
    than it does somewhere inside the two blocks' own frames; returns (largest step at
    the join, largest step of the motion) per join, for the report."""
    frames, positions = heads(table, first)
    steps = largest_steps(positions)  # steps[k]: frames[k] -> frames[k] + 1
    hips = np.linalg.norm(np.diff(positions[:, 0], axis=0), axis=-1)
    measured = []
    for k, (a, b, _) in enumerate(joins):
        (first_a, _), (_, last_b) = BLOCKS[k], BLOCKS[k + 1]
        join = (frames[:-1] >= a) & (frames[:-1] < b)
        own = ((frames[:-1] >= first_a) & (frames[:-1] < a)) | ((frames[:-1] >= b) & (frames[:-1] < last_b))
        assert steps[join].max() <= steps[own].max() + 1e-6, (a, b, steps[join].max(), steps[own].max())
        assert hips[join].max() <= hips[own].max() + 1e-6, (a, b, hips[join].max(), hips[own].max())
        measured.append((float(steps[join].max()), float(steps[own].max())))
    return measured


def test_three_blocks_build_into_one_action_with_continuous_joins(shot):
    assert shot["add_errors"] == [None, None, None]
    assert shot["build_error"] is None
    # One action: the one the animator keyed by hand, now with the shot in it.
    assert shot["actions"] == [shot["action"]]
    table = keys(shot["built"])
    assert len(table) == 22 * 4 + 3  # every mapped bone's rotation and the root's location
    for name, rows in table.items():
        inside = rows[(rows[:, 0] >= BLOCKS[0][0]) & (rows[:, 0] <= BLOCKS[-1][1])]
        assert inside[:, 0].astype(int).tolist() == list(range(BLOCKS[0][0], BLOCKS[-1][1] + 1)), name
        assert np.isfinite(rows).all()
    joins = shot["build_report"]["joins"]
    assert [(a < b) for a, b, _ in joins] == [True, True]
    assert [gap for _, _, gap in joins] == [False, True]  # blocks 1 and 2 abut; a gap before block 3
    check_joins_continuous(shot["built_heads"], joins, 8)


def test_one_undo_step_takes_the_whole_build_back(shot):
    assert shot["undone"] == {"keys_are_hand": True, "built": ""}
    assert shot["redone"]


def test_blocks_show_as_bars_over_the_timeline(shot):
    assert shot["bars"] == [[95.0, 695.0, "a person walks forward", False],
                            [695.0, 1175.0, "a person waves with the right hand", False],
                            [1275.0, 1501.0, "a person walks forward", False]]  # clipped at the editor's edge
    assert shot["draw_handlers"] == 0  # background mode: nothing to draw in


def test_keys_set_by_hand_outside_the_blocks_stay_bit_identical(shot):
    hand = keys(shot["hand"])
    for table in (shot["built"], shot["rebuilt"]):
        for index in range(4):
            name = f"{HAND_KEYED}[{index}]"
            rows = keys(table)[name]
            outside = rows[(rows[:, 0] < BLOCKS[0][0]) | (rows[:, 0] > BLOCKS[-1][1])]
            assert np.array_equal(outside, hand[name]), name


def test_editing_the_middle_block_changes_only_its_frames_and_joins(shot):
    assert shot["edit_error"] is None and shot["rebuild_error"] is None
    assert shot["stale_after_build"] == [False, False, False]
    assert shot["stale_after_edit"] == [False, True, False]
    joins = shot["build_report"]["joins"]
    allowed = (joins[0][0] + 1, joins[1][1] - 1)  # from the join before it to the join after it
    written = shot["rebuild_report"]["frames"]
    assert all(allowed[0] <= a <= b <= allowed[1] for a, b in written), (written, allowed)
    before, after = keys(shot["built"]), keys(shot["rebuilt"])
    assert set(before) == set(after)
    changed = 0
    for name, rows in before.items():
        new = after[name]
        outside = (rows[:, 0] < allowed[0]) | (rows[:, 0] > allowed[1])
        assert np.array_equal(new[(new[:, 0] < allowed[0]) | (new[:, 0] > allowed[1])], rows[outside]), name
        changed += not np.array_equal(new, rows)
    assert changed > 0  # the middle block did change
    check_joins_continuous(shot["rebuilt_heads"], shot["rebuild_report"]["joins"], 8)


def test_reorder_swaps_blocks_on_the_timeline_keeping_the_gap(shot):
    assert shot["move_error"] is None
    by_id = {b["id"]: b for b in shot["moved"]}
    first, middle = by_id[shot["ids"][0]], by_id[shot["ids"][1]]
    assert (middle["start"], first["start"]) == (10, 10 + 48)  # the 48-frame block now first, no gap between
    assert shot["moved_back"] == shot["blocks"][:1] + [dict(shot["blocks"][1], text="a person squats down", seed=7)] \
        + shot["blocks"][2:]


def test_overlapping_blocks_are_refused_and_nothing_is_written(shot):
    assert shot["overlap_add_error"] is None  # blocks may overlap while the animator arranges them
    assert ('block "a person sits down" (frames 100-139) overlaps block "a person squats down" '
            '(frames 70-117)') in shot["overlap_error"]
    assert shot["overlap_unchanged"]
    assert shot["removed_back"]


def test_a_failed_build_changes_nothing(shot):
    assert "not reachable" in shot["server_down_error"]
    assert shot["server_down_unchanged"]
    assert shot["empty_text_error"] is None and shot["empty_text_build_error"]
    assert "not a curve object" in shot["not_a_curve_error"]


def _distance_to_polyline(points: np.ndarray, line: np.ndarray) -> tuple:
    """For points (T, 2): distance to the polyline (N, 2) and the unit tangent there."""
    a, b = line[:-1], line[1:]
    d = b - a
    t = np.clip(np.einsum("tnk,nk->tn", points[:, None] - a, d) / np.einsum("nk,nk->n", d, d), 0, 1)
    nearest = a + t[..., None] * d
    distance = np.linalg.norm(points[:, None] - nearest, axis=-1)
    segment = distance.argmin(axis=1)
    tangent = d[segment] / np.linalg.norm(d[segment], axis=-1, keepdims=True)
    return distance.min(axis=1), tangent


def test_a_walk_follows_an_s_curve(shot):
    assert shot["path_add_error"] is None and shot["path_build_error"] is None
    line = np.array(shot["path_points"])[:, :2]
    table = shot["path_heads"]
    pelvis = np.array(table["mixamorig:Hips"])[:, :2]
    travelled = np.linalg.norm(np.diff(pelvis, axis=0), axis=-1).sum()
    assert travelled > 1.5  # it walks: the check below is about a real walk
    distance, tangent = _distance_to_polyline(pelvis, line)
    assert distance.max() <= PATH_TOLERANCE, distance.max()
    across = sum(np.array(table[f"mixamorig:{side}"])[:, :2] * sign
                 for side, sign in (("LeftUpLeg", 1), ("RightUpLeg", -1), ("LeftArm", 1), ("RightArm", -1)))
    facing = np.stack([across[:, 1], -across[:, 0]], axis=-1)  # across x up: the way the body faces (Z up)
    facing /= np.linalg.norm(facing, axis=-1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(np.sum(facing * tangent, axis=-1), -1, 1)))
    assert angle.max() <= FACING_TOLERANCE, angle.max()
    assert np.linalg.norm(pelvis[0] - line[0]) <= PATH_TOLERANCE  # it starts where the path starts


def test_a_block_can_continue_the_one_before(shot):
    """A continued block is the model's prediction from the block before; rebuilding that
    block regenerates the continuation too; the first block has nothing to continue."""
    assert shot["continued_build_error"] is None and shot["continued_rebuild_error"] is None
    assert shot["continued_rebuild_frames"] == [[1, 96]]
    assert "is the first block: it has nothing to continue" in shot["first_continued_error"]


def test_blocks_survive_save_and_reload(shot):
    assert shot["cleared"]
    assert shot["reloaded"] == shot["saved"]
    walker = shot["reloaded"]["Walker"]["blocks"]
    assert [b["path"] for b in walker] == ["S path"]
    assert json.loads(shot["reloaded"]["Actor"]["built"])["settings"]


@pytest.mark.parametrize("blender", [b for b in BLENDERS if not b.is_main], ids=lambda b: b.version)
def test_every_blender_directs_the_shot(blender, extension_zip, server, tmp_path):
    """The same scene on the other Blenders users run (4.2 keeps F-curves on the action,
    no slots; 4.5 has both; 5.x only slots and channelbags)."""
    result = run_shot_scene(blender.require().python, extension_zip, server, tmp_path)
    assert result["version"].startswith(blender.version + ".")
    assert result["build_error"] is None and result["rebuild_error"] is None and result["path_build_error"] is None
    check_joins_continuous(result["built_heads"], result["build_report"]["joins"], 8)
    before, after = keys(result["built"]), keys(result["rebuilt"])
    joins = result["build_report"]["joins"]
    for name, rows in before.items():
        outside = (rows[:, 0] <= joins[0][0]) | (rows[:, 0] >= joins[1][1])
        assert np.array_equal(after[name][(after[name][:, 0] <= joins[0][0]) | (after[name][:, 0] >= joins[1][1])],
                              rows[outside]), name
    assert result["overlap_unchanged"] and result["server_down_unchanged"]
    assert result["reloaded"] == result["saved"]
