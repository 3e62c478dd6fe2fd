"""The motion synthesizer checked by physics, not shapes: feet on the floor, planted feet
still, bones rigid, jumps in the air, turns by the requested angle, captions that match
what the body does, and the corpus on disk in HumanML3D's layout."""

import json

import numpy as np
import pytest

from retarget.humanml3d import FPS, joints_from_features
from retarget.skeleton import JOINT_INDEX, bone_lengths_of
from server.cli import main as cli
from server.data import actions
from server.data.actions import rotations
from server.data.captions import PHRASES, caption
from server.data.synth import make_clip, place_on_ground
from server.train.corpus import load_clips

FEET = [JOINT_INDEX[n] for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]


def perform(name: str, seed: int = 0, seconds: float = 5.0):
    rng = np.random.default_rng(seed)
    segment = actions.ACTIONS[name](rng, seconds)
    _, root, joints = place_on_ground(rotations(segment.angles), segment, 0.0)
    return segment, joints


def planted_slide(joints: np.ndarray) -> float:
    """Mean horizontal speed (m/s) of foot joints that are planted: within 2 cm of the
    floor and slower than 0.5 m/s (faster is a swinging foot grazing the floor)."""
    feet = joints[:, FEET]
    speed = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * FPS
    planted = (feet[1:, :, 1] < 0.02) & (feet[:-1, :, 1] < 0.02) & (speed < 0.5)
    return float(speed[planted].mean()) if planted.any() else 0.0


# Actions with both feet on the floor while the legs move (no two-foot solver yet): the
# foot that is not the anchor slides 2.5-3 cm/s. Known gap; strict, so a fix must
# remove the mark.
_SLIDING = {"jumping_jacks", "kneel"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="double support slides 2.5-3 cm/s"))
                                  if n in _SLIDING else n for n in sorted(actions.ACTIONS)])
def test_every_action_stands_on_the_floor_without_sliding(name):
    for seed in range(3):
        segment, joints = perform(name, seed)
        lowest = joints[:, FEET, 1].min(axis=1)
        grounded = segment.lift == 0
        assert np.abs(lowest[grounded]).max() < 0.02, f"{name}: feet off the floor while not jumping"
        assert lowest.min() > -0.02
        assert planted_slide(joints) < 0.02, f"{name}: planted feet slide at {planted_slide(joints):.3f} m/s"
        lengths = bone_lengths_of(joints)
        assert np.ptp(lengths, axis=0).max() < 1e-9  # rigid bones
        assert np.abs(np.diff(joints, axis=0)).max() < 0.7  # no glitches (a sprinter's swinging foot: ~12 m/s)


def test_walking_travels_forward_and_backward_at_walking_speed():
    for seed in range(12):
        segment, joints = perform("walk", seed, 6.0)
        travel = joints[-1, 0] - joints[0, 0]
        speed = np.linalg.norm(travel[[0, 2]]) / (len(joints) / FPS)
        forward = 1 if segment.params["direction"] == "forward" else -1
        assert forward * travel[2] > 0.8 * np.linalg.norm(travel[[0, 2]])  # along the facing (+Z) direction
        low, high = {"walk": (0.5, 2.0), "jog": (1.2, 3.5), "run": (1.8, 5.0), "walk_backward": (0.3, 1.5)}[segment.action]
        assert low < speed < high, f"{segment.action} {segment.params} at {speed:.2f} m/s"


def test_jumps_leave_the_ground_and_land():
    for seed in range(5):
        segment, joints = perform("jump", seed)
        lowest = joints[:, FEET, 1].min(axis=1)
        peak = segment.params["height"]
        assert lowest.max() == pytest.approx(peak, abs=0.03)
        assert (lowest > 0.05).sum() >= 0.2 * FPS * segment.params["count"]  # airborne frames
        assert lowest[-1] < 0.01
        if segment.params["direction"] == "forward":
            assert joints[-1, 0, 2] - joints[0, 0, 2] > 0.4 * segment.params["count"]


def test_turns_change_heading_by_the_requested_angle():
    for seed in range(6):
        segment, joints = perform("turn", seed)
        hips = joints[:, JOINT_INDEX["left_hip"]] - joints[:, JOINT_INDEX["right_hip"]]
        facing = np.arctan2(-hips[:, 2], hips[:, 0])  # the hip line's angle about Y
        turned = np.degrees(np.unwrap(facing)[-1] - np.unwrap(facing)[0])
        side = 1 if segment.params["side"] == "left" else -1
        assert turned == pytest.approx(side * segment.params["degrees"], abs=8)


def test_the_named_hand_waves_and_the_named_leg_kicks():
    wrist = {"left": JOINT_INDEX["left_wrist"], "right": JOINT_INDEX["right_wrist"]}
    for seed in range(8):
        segment, joints = perform("wave", seed)
        head = joints[:, JOINT_INDEX["head"], 1]
        for side, index in wrist.items():
            raised = (joints[:, index, 1] > head - 0.1).mean()
            if segment.params["hand"] in (side, "both"):
                assert raised > 0.3 and np.ptp(joints[:, index, 0] - joints[:, 0, 0]) > 0.05
            else:
                assert raised == 0.0
        segment, joints = perform("kick", seed)
        ankle = {"left": JOINT_INDEX["left_ankle"], "right": JOINT_INDEX["right_ankle"]}
        kicking, standing = (ankle["left"], ankle["right"]) if segment.params["leg"] == "left" else (ankle["right"], ankle["left"])
        assert joints[:, kicking, 1].max() > 0.3 and joints[:, standing, 1].max() < 0.12


def test_side_steps_go_to_the_named_side():
    for seed in range(6):
        segment, joints = perform("side_step", seed)
        travel = joints[-1, 0] - joints[0, 0]
        side = 1 if segment.params["side"] == "left" else -1  # +X is the body's left
        assert side * travel[0] > 0.5 and abs(travel[2]) < 0.2 * abs(travel[0])


def test_squats_lower_the_pelvis():
    segment, joints = perform("squat", 1)
    assert joints[0, 0, 1] - joints[:, 0, 1].min() > 0.25


def test_captions_name_their_parameters_and_hold_out_phrasings():
    rng = np.random.default_rng(0)
    for _ in range(50):
        text = caption([("wave", {"hand": "left", "count": 3})], rng, held_out=False)
        assert "left" in text and ("three" in text or "wave" in text)
        held = caption([("wave", {"hand": "left", "count": 3})], rng, held_out=True)
        assert "left" in held
    for action, (train, held_out) in PHRASES.items():
        assert train and held_out and not set(train) & set(held_out), action


def test_clips_are_deterministic_and_consistent_with_their_features():
    first, again = make_clip(5, seed=3), make_clip(5, seed=3)
    assert np.array_equal(first["features"], again["features"]) and first["captions"] == again["captions"]
    assert not np.array_equal(first["features"], make_clip(5, seed=4)["features"])
    assert 40 <= len(first["joints"]) <= 200
    recovered = joints_from_features(first["features"])
    heights = recovered[:, 0, 1]
    assert np.abs(heights - first["joints"][1:, 0, 1]).max() < 1e-3  # root height survives the features


def test_data_synth_writes_humanml3d_layout(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert cli(["data", "synth", "--out", str(out), "--clips", "60", "--seed", "1", "--workers", "1", "--no-mocap"]) == 0
    assert "60 clips" in capsys.readouterr().out
    ids = {s: (out / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sum(map(len, ids.values())) == 60 and not set(ids["train"]) & set(ids["test"])
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert mean.shape == std.shape == (263,) and np.all(std > 0)
    assert len(np.unique(std[4:67])) == 1  # HumanML3D's per-block standard deviation
    records = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)
    corpus = json.loads((out / "corpus.json").read_text())
    test_lines = [line for name in ids["test"] for line in (out / "texts" / f"{name}.txt").read_text().splitlines()]
    train_lines = [line for name in ids["train"] for line in (out / "texts" / f"{name}.txt").read_text().splitlines()]
    held = [p for phrases in corpus["held_out_phrasings"].values() for p in phrases]
    assert all(line.count("#") == 3 and line.endswith("#0.0#0.0") for line in test_lines + train_lines)
    assert not {line.split("#")[0] for line in test_lines} & {line.split("#")[0] for line in train_lines}
    assert held
    clips = load_clips(out, "train")  # the training code reads it
    assert len(clips) == len(ids["train"])
    assert cli(["data", "synth", "--out", str(out), "--clips", "60"]) == 1
    assert "not empty" in capsys.readouterr().err
    assert cli(["data", "synth", "--out", str(tmp_path / "x"), "--clips", "5"]) == 1


def test_motion_capture_clips_are_real_jumps_and_turns():
    from server.data.cmu import FOLDER, trials

    for trial in trials():
        joints = np.load(FOLDER / trial["file"]).astype(np.float64)
        assert np.ptp(bone_lengths_of(joints), axis=0).max() < 1e-3  # rigid: it is FK of the BVH
        for segment in trial["segments"]:
            part = joints[int(segment["start"] * FPS):int(segment["end"] * FPS)]
            toes = part[:, [JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]], 1].min(axis=1)
            hips = part[:, JOINT_INDEX["left_hip"]] - part[:, JOINT_INDEX["right_hip"]]
            turned = np.degrees(np.ptp(np.unwrap(np.arctan2(-hips[:, 2], hips[:, 0]))))
            if segment["action"] == "jump":
                assert toes.max() - toes.min() > 0.1  # both feet leave the floor
            else:
                assert turned > 150 and toes.max() - toes.min() < 0.1


def test_bvh_conversion_maps_joints_by_name(tmp_path):
    from retarget.formats import write_motion
    from retarget.motion import Motion
    from server.data.cmu import convert_bvh
    from tests.motions import smooth_random_joints

    joints = smooth_random_joints(frames=40, seed=2)
    motion = Motion.from_positions(joints, fps=20.0)
    write_motion(motion, tmp_path / "clip.bvh", "bvh")
    assert np.abs(convert_bvh(tmp_path / "clip.bvh", unit=1.0) - motion.positions).max() < 1e-4


def test_corpus_holds_the_motion_capture_clips_in_training(tmp_path):
    out = tmp_path / "corpus"
    assert cli(["data", "synth", "--out", str(out), "--clips", "20", "--workers", "1"]) == 0
    records = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    mocap = [r for r in records if r["source"].startswith("cmu:")]
    assert mocap and all(r["split"] == "train" for r in mocap)
    assert {r["id"] for r in mocap} <= set((out / "train.txt").read_text().split())
