"""The CMU motion capture in the corpus (server/data/cmu/): every trial loads as SMPL-22
joints standing on HumanML3D's floor, at a human size, with rigid bones; every segment
lies inside its trial with captions; the corpus gets training and held-out test clips."""

from pathlib import Path

import numpy as np
import pytest

from retarget.humanml3d import FPS
from retarget.skeleton import JOINT_COUNT, JOINT_INDEX, bone_lengths_of
from server.data.cmu import (ASF_TO_SMPL, CC_STRETCHING_BONES, CC_TO_SMPL, FOLDER, convert_asf_amc, convert_cc_bvh, corpus_items,
                             on_floor, trials)

TRIALS = trials()
# Ankle up to the head joint along the bones: the head joint's height over the ankle
# when the body stands straight.
STANDING_CHAIN = ("left_ankle", "left_knee", "left_hip", "pelvis", "spine1", "spine2", "spine3", "neck", "head")
# Character Creator's rig has five spine joints (Hip, Waist, Spine01, Spine02, the neck)
# that do not sit where SMPL's do: the SMPL points placed between them (CC_TO_SMPL) lie on
# different CC bones, so these bones stretch a little as the back bends.
CC_SPINE_BONES = [JOINT_INDEX[name] for name in CC_STRETCHING_BONES]


def _load(trial):
    return np.load(FOLDER / trial["file"])


def test_the_corpus_holds_the_cmu_subjects_trials():
    names = {t["trial"] for t in TRIALS}
    assert {f"01_{n:02d}" for n in range(1, 15)} <= names
    assert {f"02_{n:02d}" for n in range(1, 11)} <= names
    assert {"03_01", "03_02", "03_03", "03_04", "05_06"} <= names
    # Subjects 5-7 from the Character Creator conversions (006_13 is missing there).
    assert {f"05_{n:02d}" for n in range(1, 21)} | {f"06_{n:02d}" for n in range(1, 16) if n != 13} <= names
    assert {f"07_{n:02d}" for n in range(1, 13)} <= names
    assert len({t["file"] for t in TRIALS}) == len(TRIALS)
    assert sum((FOLDER / t["file"]).stat().st_size for t in TRIALS) < 15e6
    splits = [t["split"] for t in TRIALS]
    assert set(splits) == {"train", "test"}
    assert 0.1 <= splits.count("test") / len(splits) <= 0.25


@pytest.mark.parametrize("trial", TRIALS, ids=[t["trial"] for t in TRIALS])
def test_every_trial_is_smpl22_on_the_floor_at_human_size(trial):
    joints = _load(trial)
    assert joints.dtype == np.float16 and joints.shape == (trial["frames"], JOINT_COUNT, 3)
    joints = joints.astype(np.float64)
    assert np.isfinite(joints).all()
    assert abs(joints[..., 1].min()) < 0.01  # the lowest joint of the clip is on the floor
    # Rigid bones (float16 rounding moves a joint by at most 1 mm).
    stretch = np.ptp(bone_lengths_of(joints), axis=0)
    if "convert_cc_bvh" in trial["source"]:
        assert stretch[CC_SPINE_BONES].max() < 0.025
        stretch[CC_SPINE_BONES] = 0.0
    assert stretch.max() < 0.005
    chain = [JOINT_INDEX[name] for name in STANDING_CHAIN]
    along_bones = np.linalg.norm(np.diff(joints[:, chain], axis=1), axis=-1).sum(axis=1).mean()
    lowest_ankle = joints[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], 1].min(axis=1)
    standing_head = along_bones + np.percentile(lowest_ankle, 10)
    assert 1.4 < standing_head < 2.0
    # Y is up: the head is above the pelvis and the pelvis above the ankles most of the time
    # (the playground trials hang from bars with the legs up now and then).
    assert np.mean(joints[:, JOINT_INDEX["head"], 1] > joints[:, 0, 1]) > 0.85  # 05_06 opens with a cartwheel
    assert np.mean(joints[:, 0, 1] > lowest_ankle) > 0.8  # 01_14 hangs with the legs up 13% of it


@pytest.mark.parametrize("trial", TRIALS, ids=[t["trial"] for t in TRIALS])
def test_segments_lie_inside_their_trial_and_are_captioned(trial):
    duration = trial["frames"] / FPS
    assert trial["cmu_description"] and trial["source"] and trial["segments"]
    for segment in trial["segments"]:
        assert 0 <= segment["start"] < segment["end"] <= duration + 1e-6
        assert segment["end"] - segment["start"] >= 1.0
        assert segment["action"] and segment["action"].replace("_", "").isalpha()
        assert 2 <= len(segment["captions"]) <= 4
        assert all(c.strip() and c == c.strip() for c in segment["captions"])
        assert len(set(segment["captions"])) == len(segment["captions"])


def test_segments_labelled_as_actions_show_them():
    """Spot checks of labels against the motion: walks travel, jumps leave the floor, the
    'walk' trials of subject 2 go forward in a straight line, the dance spins."""
    by_name = {t["trial"]: t for t in TRIALS}
    for trial in TRIALS:
        joints = _load(trial).astype(np.float64)
        for segment in trial["segments"]:
            part = joints[int(segment["start"] * FPS):int(segment["end"] * FPS)]
            path = np.linalg.norm(np.diff(part[:, 0, [0, 2]], axis=0), axis=-1).sum()  # loops count too
            feet = part[:, [JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]], 1].min(axis=1)
            if segment["action"] in ("walk", "jog"):
                assert path / (len(part) / FPS) > 0.4, (trial["trial"], segment)
            if segment["action"] == "jump":
                assert np.ptp(feet) > 0.1, (trial["trial"], segment)  # both feet off the floor
            if segment["action"] == "climb":
                assert feet.max() > 0.4, (trial["trial"], segment)  # stands on something high
    for name in ("02_01", "02_02"):
        joints = _load(by_name[name]).astype(np.float64)
        hips = joints[:, JOINT_INDEX["left_hip"]] - joints[:, JOINT_INDEX["right_hip"]]
        forward = np.stack([-hips[:, 2], hips[:, 0]], axis=-1)  # the hip line turned 90 degrees
        step = joints[-1, 0, [0, 2]] - joints[0, 0, [0, 2]]
        assert np.linalg.norm(step) > 2.0 and (forward @ step > 0).all()
    for trial in TRIALS:
        joints = _load(trial).astype(np.float64)
        for segment in trial["segments"]:
            part = joints[int(segment["start"] * FPS):int(segment["end"] * FPS)]
            text = " ".join(segment["captions"])
            # The dribbling hand named is the one that bounces (moves up and down) more.
            bounce = {side: np.std(np.diff(part[:, JOINT_INDEX[f"{side}_wrist"], 1])) for side in ("left", "right")}
            for side, other in (("left", "right"), ("right", "left")):
                if segment["action"] == "dribble" and f"{side} hand" in text:
                    assert bounce[side] > 2 * bounce[other], (trial["trial"], segment["captions"][0])
            # A turn or spin named to one side turns more than 90 degrees that way from the
            # segment's start (seen from above, the hip line turning from +X towards -Z is a
            # turn to the left; 02_08's sword swings turn right and back again and again).
            hips = part[:, JOINT_INDEX["left_hip"]] - part[:, JOINT_INDEX["right_hip"]]
            turned = np.degrees(np.unwrap(np.arctan2(hips[:, 2], hips[:, 0])))
            for side, sign in (("left", -1), ("right", 1)):
                if any(("turn" in c or "spin" in c) and f"to the {side}" in c for c in segment["captions"]):
                    assert (sign * (turned - turned[0])).max() > 90, (trial["trial"], segment["captions"][0])
    dance = _load(by_name["05_06"]).astype(np.float64)
    hips = dance[:, JOINT_INDEX["left_hip"]] - dance[:, JOINT_INDEX["right_hip"]]
    turned = np.degrees(np.ptp(np.unwrap(np.arctan2(hips[:, 2], hips[:, 0]))))
    assert turned > 720  # pirouettes: more than two full turns


def test_stored_trial_is_the_conversion_of_cmus_files():
    source = FOLDER / "source"
    joints = convert_asf_amc(source / "02.asf", source / "02_01.amc")
    stored = np.load(FOLDER / "02_01.npy").astype(np.float64)
    assert joints.shape == stored.shape == (58, JOINT_COUNT, 3)  # 343 frames at 120 fps -> 58 at 20
    assert np.abs(joints - stored).max() < 2e-3
    assert joints[..., 1].min() == 0.0
    # Joint centres: the knee is where the femur ends, so thigh and shin keep CMU's lengths.
    unit = 0.0254 / 0.45
    thigh = np.linalg.norm(joints[:, JOINT_INDEX["left_knee"]] - joints[:, JOINT_INDEX["left_hip"]], axis=-1)
    assert np.allclose(thigh, 7.59371 * unit, atol=1e-9)
    assert set(ASF_TO_SMPL) == set(JOINT_INDEX)


def test_character_creator_trial_is_the_conversion_of_its_bvh():
    """007_12_start.bvh is the first 31 frames (60 fps) of the Character Creator conversion
    of CMU's 07_12, whose first frame is the T-pose the repository's script prepends."""
    joints = convert_cc_bvh(FOLDER / "source" / "007_12_start.bvh")
    assert joints.shape == (10, JOINT_COUNT, 3)  # the T-pose dropped, 30 frames at 60 fps -> 10 at 20
    stored = np.load(FOLDER / "07_12.npy").astype(np.float64)[:10]
    # The stored trial is centred and on the whole trial's floor: compare around the pelvis.
    assert np.abs((joints - joints[:, :1]) - (stored - stored[:, :1])).max() < 2e-3
    assert np.allclose(np.diff(joints[:, 0], axis=0), np.diff(stored[:, 0], axis=0), atol=2e-3)
    # CMU's "brisk walk" along +Z (HumanML3D's forward): 1.5-3 m/s over these 0.45 s (0.97 m),
    # with the left hip at +X.
    assert 1.5 * 0.45 < joints[-1, 0, 2] - joints[0, 0, 2] < 3.0 * 0.45
    assert (joints[:, JOINT_INDEX["left_hip"], 0] > joints[:, JOINT_INDEX["right_hip"], 0]).all()
    assert set(CC_TO_SMPL) == set(JOINT_INDEX)
    with pytest.raises(ValueError, match="not a Character Creator rig"):
        convert_cc_bvh(Path(__file__).parent / "data" / "rigs" / "freebvh_mixamo.bvh")


def test_on_floor_puts_the_lowest_joint_of_the_whole_clip_at_zero():
    joints = np.zeros((3, JOINT_COUNT, 3))
    joints[..., 1] = np.arange(3)[:, None] + 0.05 + np.arange(JOINT_COUNT) * 0.01
    floored = on_floor(joints)
    assert floored[..., 1].min() == 0.0 and floored[0, 0, 1] == 0.0
    assert np.allclose(floored[..., 1] - joints[..., 1], -0.05)


def test_corpus_items_keep_the_trials_splits_and_stand_on_the_floor():
    items = corpus_items(seed=0)
    assert {item["split"] for item in items} == {"train", "test"}
    held_out = {t["trial"] for t in TRIALS if t["split"] == "test"}
    for item in items:
        trial = item["source"].removeprefix("cmu:")
        assert item["split"] == ("test" if trial in held_out else "train")
        assert abs(item["joints"][..., 1].min()) < 1e-6  # each clip on its own floor
        # HumanML3D's features have one frame fewer than the joints (velocities).
        assert item["features"].shape == (len(item["joints"]) - 1, 263) and np.isfinite(item["features"]).all()
        assert item["captions"] and item["actions"][0]["end"] == len(item["joints"])
    # Training segments come three times with shifted ends; test segments once, as cut.
    test_segments = sum(len(t["segments"]) for t in TRIALS if t["split"] == "test")
    train_segments = sum(len(t["segments"]) for t in TRIALS if t["split"] == "train")
    assert sum(item["split"] == "test" for item in items) == test_segments
    assert sum(item["split"] == "train" for item in items) == 3 * train_segments
    assert [i["joints"].shape for i in corpus_items(seed=0)] == [i["joints"].shape for i in items]
