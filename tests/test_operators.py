"""The extension's operators end to end: the extension built and validated with
Blender's own tool and installed into a fresh user folder, real Blender (the bpy
wheels of 5.0 and 4.2 LTS), a Rigify metarig and a Mixamo-named rig, and a real model
server on loopback (a small model the tests build; its motions are random, so these
tests check what the extension does with them, not their quality).

The main environment's Blender (5.0) runs every step on both rigs; every other version
users run (harness/blender_versions.txt) runs every step on the Mixamo-named rig."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retarget.formats import read_motion
from server.model.store import save_model_dir
from harness.blender import BLENDERS, read_result
from harness.models import small_model
from harness.rigs import BUILD_CODE, humanoid, to_json
from harness.server import Server

SCENE = (Path(__file__).parent / "blender" / "operators_scene.py").read_text()
GAP = (15, 40)  # frames the scene script clears and asks In-between to fill
# Bones keyed in Euler rotation (the metarig's shoulders are YXZ bones; the rest of
# both rigs are quaternion bones). Each rig has 22 keyed bones.
EULER_BONES = {"metarig": {"shoulder.L", "shoulder.R"}, "mixamo": set()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("operators-server")
    running = Server(save_model_dir(small_model(folder), folder / "model")).wait_ready()
    yield running
    running.stop()


def run_scene(python, extension_zip, server, folder: Path, rig, steps=None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "user").mkdir(exist_ok=True)
    rig_path = folder / "rig.json"
    rig_path.write_text(json.dumps("metarig") if rig == "metarig" else to_json(humanoid("mixamo", seed=1)))
    args = [str(python), "-c", BUILD_CODE + SCENE, str(extension_zip), server.url, str(folder), str(rig_path)]
    if steps:
        args.append(",".join(steps))
    process = subprocess.run(args, capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, BLENDER_USER_RESOURCES=str(folder / "user")))
    return read_result(process)


@pytest.fixture(scope="module", params=["metarig", "mixamo"])
def scene(request, extension_zip, server, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"operators-{request.param}")
    result = run_scene(sys.executable, extension_zip, server, folder, request.param)
    result["_folder"], result["_rig"] = folder, request.param
    return result


def keys(table: dict) -> dict:
    return {name: np.array(rows) for name, rows in table.items()}


def frames_of(rows: np.ndarray) -> list:
    return rows[:, 0].astype(int).tolist()


def tracks(table: dict) -> dict:
    """{property path: (frames, values (T, channels))} from per-channel key rows (every
    channel of a property is keyed on the same frames here)."""
    grouped = {}
    for name, rows in table.items():
        path, index = name.rsplit("[", 1)
        grouped.setdefault(path, {})[int(index[:-1])] = rows
    return {path: (parts[0][:, 0], np.stack([parts[i][:, 1] for i in sorted(parts)], axis=-1))
            for path, parts in grouped.items()}


def steps(path: str, values: np.ndarray) -> np.ndarray:
    """How far the property moves from each frame to the next: the rotation angle for
    quaternions (q and -q are one rotation), the largest channel change otherwise."""
    if path.endswith("rotation_quaternion"):
        unit = values / np.linalg.norm(values, axis=-1, keepdims=True)
        return 2 * np.arccos(np.clip(np.abs(np.sum(unit[1:] * unit[:-1], axis=-1)), 0, 1))
    return np.abs(np.diff(values, axis=0)).max(axis=-1)


def check_joins(table: dict, joins, around: int = 4) -> None:
    """At each join (the last keyed frame, the first new one) the motion steps no
    further than the keyed motion's own largest step next to it, twice over, plus a
    little: new keys run on from the old ones."""
    for path, (frames, values) in tracks(table).items():
        step = steps(path, values)  # step[k]: frames[k] -> frames[k + 1]
        for old, new in joins:
            k = int(np.flatnonzero(frames == min(old, new))[0])
            side = np.arange(k - around, k) if old < new else np.arange(k + 1, k + 1 + around)
            keyed = step[side[(side >= 0) & (side < len(step))]].max()
            assert step[k] <= 2 * keyed + 0.02, (path, old, new, step[k], keyed)


def check_unchanged_outside(before: dict, after: dict, first: int, last: int) -> int:
    """Keys outside first..last are identical, every float; returns the curves checked."""
    assert set(after) == set(before)
    for name, rows in before.items():
        new = after[name]
        outside = new[(new[:, 0] < first) | (new[:, 0] > last)]
        assert np.array_equal(outside, rows[(rows[:, 0] < first) | (rows[:, 0] > last)]), name
    return len(before)


def test_generate_makes_one_action_per_sample_at_the_scene_rate(scene):
    assert scene["generate_error"] is None
    generated = scene["generate"]
    assert generated["actions"] == ["a person walks forward #1", "a person walks forward #2"]
    assert generated["active"] == "a person walks forward #1"
    assert generated["fake_users"] == ["a person walks forward #2"]  # kept in the file for the user
    assert generated["prompt_property"] == "a person walks forward"
    table = keys(generated["keys"])
    # 2 s at the model's 20 fps is 40 frames (39 steps); at the scene's 24 fps that
    # covers 1.95 s, i.e. 47 steps: keys on frames 1..48, one per frame, on every channel.
    assert {tuple(frames_of(rows)) for rows in table.values()} == {tuple(range(1, 49))}
    # Rotations are keyed in each bone's own rotation mode.
    quaternion = {n.split('"')[1] for n in table if ".rotation_quaternion" in n}
    euler = {n.split('"')[1] for n in table if ".rotation_euler" in n}
    assert euler == EULER_BONES[scene["_rig"]] and len(quaternion | euler) == 22
    assert len(table) == 4 * len(quaternion) + 3 * len(euler) + 3
    # Values are finite and change over time (a motion, not a held pose).
    assert all(np.isfinite(rows).all() for rows in table.values())
    assert max(np.ptp(rows[:, 1]) for rows in table.values()) > 0.05


def test_same_seed_gives_the_same_keys(scene):
    assert scene["generate_again"]["active"] == "a person walks forward"
    again = keys(scene["generate_again"]["keys"])
    first = keys(scene["generate"]["keys"])
    assert set(again) == set(first)
    assert all(np.array_equal(again[n], first[n]) for n in first)


def test_operator_values_fall_back_to_the_panel(scene):
    """Called without properties, Generate takes the panel's prompt and length and
    starts at the current frame (11); 1 s at 20 fps covers 0.95 s -> 24 keys."""
    assert scene["generate_fallback"] == {"name": "a person jumps", "first_frame": 11.0, "last_frame": 34.0}


def test_undo_after_generate_restores_the_previous_action(scene):
    undo = scene["undo"]
    assert undo["after"] == "a person waves" and undo["before"] == "a person jumps"
    assert undo["restored"] == "a person jumps"
    assert undo["gone"]


@pytest.mark.parametrize("run", ["inbetween", "inbetween_steered"])
def test_inbetween_fills_the_gap_and_leaves_every_other_key_alone(scene, run):
    assert scene[run]["error"] is None
    before, after = keys(scene["inbetween"]["before"]), keys(scene[run]["after"])
    first, last = GAP
    assert check_unchanged_outside(before, after, first, last) == len(scene["generate"]["keys"])
    for name, rows in after.items():
        assert frames_of(rows[(rows[:, 0] >= first - 1) & (rows[:, 0] <= last + 1)]) == list(range(first - 1, last + 2)), name
    check_joins(after, [(first - 1, first), (last + 1, last)])


def test_continue_adds_keys_after_the_last_and_keeps_the_rest(scene):
    result = scene["continue"]
    assert result["error"] is None
    before, after = keys(result["before"]), keys(result["after"])
    last = max(int(rows[:, 0].max()) for rows in before.values())
    check_unchanged_outside(before, after, last + 1, 10**6)
    # 1 s at 20 fps is 20 new frames = 0.95 s after the last key: 24 frames at 24 fps.
    assert {int(rows[:, 0].max()) for rows in after.values()} == {last + 24}
    assert result["frame_end"] >= last + 24
    check_joins(after, [(last, last + 1)])


def test_caption_is_shown_and_stored_on_the_action(scene):
    caption = scene["caption"]
    assert caption["error"] is None
    assert isinstance(caption["stored"], str) and caption["stored"].strip()
    assert caption["panel"] == caption["stored"]


def test_export_writes_bvh_and_smpl_files(scene):
    assert scene["export"] == {"SMPL_BVH": None, "SMPL_NPZ": None, "ARMATURE_BVH": None}
    folder = scene["_folder"]
    bvh, npz = read_motion(folder / "smpl.bvh", "bvh"), read_motion(folder / "smpl.npz", "smpl")
    table = keys(scene["continue"]["after"]).values()
    frames = max(int(rows[:, 0].max()) for rows in table) - min(int(rows[:, 0].min()) for rows in table) + 1
    assert bvh.frames == npz.frames == frames and bvh.fps == pytest.approx(24.0)
    assert np.abs(bvh.positions - npz.positions).max() < 1e-3
    own = (folder / "armature.bvh").read_text()
    assert own.startswith("HIERARCHY") and f"Frames: {frames}" in own


def test_failures_report_plainly_and_change_nothing(scene):
    failures = scene["failures"]
    assert "not reachable" in failures["server_down"] and failures["server_down_unchanged"]
    assert failures["cancel"] == "returned ['CANCELLED']" and failures["cancel_unchanged"]
    assert "type a prompt first" in failures["empty_prompt"]
    assert "no frame inside it" in failures["gap_without_inside"]
    assert "no bone found for pelvis" in failures["unmappable"] and failures["unmappable_unchanged"]
    assert "Select an armature" in failures["poll_without_armature"]


def check_modal_path(result) -> None:
    """The panel's path (worker thread, timer, modal()) ends as the synchronous one does:
    the same keys for the same seed, and cancelled or failed jobs change nothing."""
    modal = result["modal"]
    assert modal["invoked"] == ["RUNNING_MODAL"] and modal["running_while_modal"]
    assert modal["answer"] == ["FINISHED"] and modal["job_cleared"]
    written, synchronous = keys(modal["keys"]), keys(modal["synchronous_keys"])
    assert set(written) == set(synchronous) == set(result["generate"]["keys"])  # every keyed channel
    assert all(np.array_equal(written[n], synchronous[n]) for n in written)
    for failed in (result["modal_cancel"], result["modal_server_down"]):
        assert failed["invoked"] == ["RUNNING_MODAL"] and failed["answer"] == ["CANCELLED"]
        assert failed["job_cleared"] and failed["unchanged"]


def test_the_modal_path_completes_like_the_synchronous_one(scene):
    check_modal_path(scene)


@pytest.mark.parametrize("blender", [b for b in BLENDERS if not b.is_main], ids=lambda b: b.version)
def test_every_blender_runs_the_operators(blender, extension_zip, server, tmp_path):
    """The same extension zip on the other Blenders users run: 4.2 LTS keeps F-curves on
    the action (no slots), 4.5 LTS has slotted actions beside the legacy API, 5.x only
    slots and channelbags."""
    blender.require()
    result = run_scene(blender.python, extension_zip, server, tmp_path, "mixamo")
    assert result["version"].startswith(blender.version + ".")
    assert result["generate_error"] is None
    generated = keys(result["generate"]["keys"])
    assert len(generated) == 4 * 22 + 3
    assert {tuple(frames_of(rows)) for rows in generated.values()} == {tuple(range(1, 49))}
    assert all(np.array_equal(keys(result["generate_again"]["keys"])[n], rows) for n, rows in generated.items())
    assert result["generate_fallback"] == {"name": "a person jumps", "first_frame": 11.0, "last_frame": 34.0}
    assert result["undo"]["restored"] == "a person jumps" and result["undo"]["gone"]
    for run in ("inbetween", "inbetween_steered"):
        assert result[run]["error"] is None
        check_unchanged_outside(keys(result["inbetween"]["before"]), keys(result[run]["after"]), *GAP)
    assert result["continue"]["error"] is None
    assert result["caption"]["stored"] and result["caption"]["panel"] == result["caption"]["stored"]
    assert result["export"] == {"SMPL_BVH": None, "SMPL_NPZ": None, "ARMATURE_BVH": None}
    failures = result["failures"]
    assert failures["server_down_unchanged"] and failures["cancel"] == "returned ['CANCELLED']"
    assert failures["cancel_unchanged"] and failures["unmappable_unchanged"]
    check_modal_path(result)
