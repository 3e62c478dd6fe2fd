"""Motion files: every conversion of `motiongpt convert`, Blender's own BVH importer,
and bad input."""

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retarget.formats import read_motion, write_motion
from retarget.formats.bvh import parse_bvh
from retarget.humanml3d import joints_from_features
from retarget.motion import Motion
from retarget.rotation import quat_rotate
from harness.blender import RESULT_MARKER, run_in_blender
from harness.motions import smooth_random_joints, smooth_random_motion

DATA = Path(__file__).parent / "data"
FEATURES = DATA / "hml3d_012314_features.npy"
SUFFIX = {"hml3d": ".npy", "joints": ".npy", "smpl": ".npz", "bvh": ".bvh", "wire": ".json"}


def motiongpt(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def reference_joints():
    return joints_from_features(np.load(FEATURES))


@pytest.fixture(scope="module")
def sources(tmp_path_factory, reference_joints):
    """The published clip written in every format."""
    folder = tmp_path_factory.mktemp("sources")
    motion = read_motion(FEATURES, "hml3d")
    paths = {}
    for fmt in ("joints", "smpl", "bvh", "wire"):
        paths[fmt] = folder / f"clip_{fmt}{SUFFIX[fmt]}"
        write_motion(motion, paths[fmt], fmt)
    paths["hml3d"] = FEATURES
    return paths


@pytest.mark.parametrize("source,target", list(itertools.product(("hml3d", "joints", "smpl", "bvh", "wire"), repeat=2)))
def test_cli_converts_between_every_pair(source, target, sources, reference_joints, tmp_path):
    out = tmp_path / f"out{SUFFIX[target]}"
    result = motiongpt("convert", "--from", source, "--to", target, str(sources[source]), str(out))
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    expected = reference_joints
    if target == "hml3d":
        features = np.load(out)
        assert features.shape == (169, 263)
        # Features lose the last frame; compare the joints they recover.
        assert np.abs(joints_from_features(features) - expected[:169]).max() < 1e-4
        return
    joints = read_motion(out, target).positions
    assert joints.shape == expected.shape
    assert np.linalg.norm(joints - expected, axis=-1).max() < 1e-4


def test_convert_does_not_import_torch(sources, tmp_path):
    code = (
        "import sys; from server.cli import main; "
        f"rc = main(['convert', r'{sources['bvh']}', r'{tmp_path / 'x.npz'}']); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _write_text(path, text):
    path.write_text(text)
    return path


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _write_npy(path, array):
    with open(path, "wb") as stream:
        np.save(stream, array)
    return path


@pytest.mark.parametrize(
    "make_input,args,message",
    [
        (lambda d: _write_npy(d / "a.npy", np.zeros((10, 21, 3))), ["--from", "joints", "--to", "bvh"], "(frames, 22, 3)"),
        (lambda d: _write_npy(d / "a.npy", np.full((10, 22, 3), np.nan)), ["--from", "joints", "--to", "bvh"], "NaN"),
        (lambda d: _write_npy(d / "a.npy", np.zeros((10, 200))), ["--from", "hml3d", "--to", "smpl"], "(frames, 263)"),
        (lambda d: _write_text(d / "a.npy", ""), ["--from", "joints", "--to", "bvh"], "empty"),
        (lambda d: _write_text(d / "a.npy", "hello"), ["--from", "joints", "--to", "bvh"], "not a readable"),
        (lambda d: _write_text(d / "a.bvh", "HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Zrotation Xrotation Yrotation\n}\n"
                                            "MOTION\nFrames: 1\nFrame Time: 0.05\n0 0 0\n"), ["--to", "joints"], "left_hip"),
        (lambda d: _write_text(d / "a.bvh", "not a bvh"), ["--to", "joints"], "HIERARCHY"),
        (lambda d: _write_text(d / "a.npz", "junk"), ["--to", "bvh"], "npz"),
        (lambda d: _write_npy(d / "a.npy", smooth_random_joints(frames=1)), ["--from", "joints", "--to", "hml3d"], "at least 2 frames"),
        (lambda d: _write_npy(d / "a.npy", np.zeros((5, 22, 3))), ["--from", "joints", "--to", "bvh"], "zero-length bones"),
        (lambda d: _write_npz(d / "a.npz", poses=np.full((4, 66), np.nan), trans=np.zeros((4, 3))), ["--to", "bvh"], "NaN"),
        (lambda d: _write_npz(d / "a.npz", poses=np.zeros((4, 60)), trans=np.zeros((4, 3))), ["--to", "bvh"], "66 or more"),
        (lambda d: _write_npz(d / "a.npz", trans=np.zeros((4, 3))), ["--to", "bvh"], "no 'poses'"),
        (lambda d: _write_text(d / "a.json", '{"format": "motion/9", "positions": []}'), ["--to", "bvh"], "motion/1"),
        (lambda d: _write_text(d / "a.json", "{nope"), ["--to", "bvh"], "not valid JSON"),
        (lambda d: d / "missing.npy", ["--from", "joints", "--to", "bvh"], "no such file"),
    ],
)
def test_bad_input_gets_one_line_error_and_no_output(make_input, args, message, tmp_path):
    source = make_input(tmp_path)
    out = tmp_path / "out" / "result.bin"
    result = motiongpt("convert", *args, str(source), str(out))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_unknown_format_is_refused(tmp_path):
    result = motiongpt("convert", "--from", "fbx", "--to", "bvh", "a", "b")
    assert result.returncode != 0 and "invalid choice" in result.stderr
    result = motiongpt("convert", str(FEATURES), str(tmp_path / "x.npy"))
    assert result.returncode != 0 and "--from" in result.stderr


def test_bvh_round_trip_keeps_rotations_and_frame_rate(tmp_path):
    rotations, root = smooth_random_motion(frames=50, seed=21, amplitude=0.5, turn_degrees=200, walk_speed=1.0)
    motion = Motion.from_rotations(rotations, root, fps=30.0)
    write_motion(motion, tmp_path / "m.bvh", "bvh")
    back = read_motion(tmp_path / "m.bvh", "bvh")
    assert back.fps == pytest.approx(30.0)
    assert np.abs(back.positions - motion.positions).max() < 1e-5
    dots = np.abs(np.sum(back.rotations * motion.rotations, axis=-1))
    assert dots.min() > 1 - 1e-9
    bvh = parse_bvh((tmp_path / "m.bvh").read_text())
    assert bvh.names[0] == "pelvis" and len(bvh.names) == 22


def test_bvh_in_centimetres_is_recognised(tmp_path):
    motion = read_motion(FEATURES, "hml3d")
    from retarget.formats.bvh import write_bvh

    with open(tmp_path / "cm.bvh", "w") as stream:
        write_bvh(motion, stream, scale=100.0)
    back = read_motion(tmp_path / "cm.bvh", "bvh")
    assert np.abs(back.positions - motion.positions).max() < 1e-5


def test_smpl_npz_layout_and_amass_z_up(tmp_path):
    motion = read_motion(FEATURES, "hml3d")
    write_motion(motion, tmp_path / "m.npz", "smpl")
    data = np.load(tmp_path / "m.npz")
    assert data["poses"].shape == (170, 66) and data["trans"].shape == (170, 3)
    assert data["betas"].shape == (10,) and float(data["mocap_framerate"]) == 20.0
    # The same clip as AMASS stores it: Z up, 156 pose values (SMPL-H), no up_axis.
    z_up = np.array([0.0, 0.0, -np.sqrt(0.5), -np.sqrt(0.5)])  # inverse of AMASS -> Y up
    from retarget.rotation import axis_angle_to_quat, quat_mul, quat_to_axis_angle

    root = quat_mul(z_up, axis_angle_to_quat(data["poses"][:, :3]))
    poses = np.concatenate([quat_to_axis_angle(root), data["poses"][:, 3:], np.zeros((170, 90))], axis=1)
    np.savez(tmp_path / "amass.npz", poses=poses, trans=quat_rotate(z_up, data["trans"]), betas=np.zeros(16),
             mocap_framerate=20.0, rest_offsets=data["rest_offsets"])
    back = read_motion(tmp_path / "amass.npz", "smpl")
    assert np.abs(back.positions - read_motion(tmp_path / "m.npz", "smpl").positions).max() < 1e-9
    assert np.abs(back.positions - motion.positions).max() < 1e-5


def test_resampling_keeps_the_path(tmp_path):
    motion = Motion.from_positions(smooth_random_joints(frames=61, seed=8), fps=30.0)
    write_motion(motion, tmp_path / "j.npy", "joints")
    joints = np.load(tmp_path / "j.npy")
    assert joints.shape == (41, 22, 3)  # 2 s at 20 fps
    assert np.abs(joints[-1] - motion.positions[-1]).max() < 1e-5
    assert np.abs(joints[0] - motion.positions[0]).max() < 1e-5


BLENDER_IMPORT = f"""
import json, sys
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_anim.bvh(filepath=sys.argv[1], axis_forward="-Z", axis_up="Y", global_scale=1.0,
                        frame_start=1, use_fps_scale=False, rotate_mode="NATIVE")
armature = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
frames = int(sys.argv[2])
names = sys.argv[3].split(",")
heads = []
for frame in range(1, frames + 1):
    bpy.context.scene.frame_set(frame)
    heads.append([list(armature.matrix_world @ armature.pose.bones[n].head) for n in names])
print("{RESULT_MARKER}" + json.dumps({{"heads": heads}}))
"""


def test_bvh_opens_in_blender_importer_at_the_same_positions(tmp_path):
    from retarget.skeleton import JOINT_NAMES

    motion = read_motion(FEATURES, "hml3d")
    motion = Motion(motion.positions[:40], motion.rotations[:40], motion.root_translation[:40], motion.fps, motion.offsets)
    # Turn the clip so the test also covers rotations far from the rest pose.
    path = tmp_path / "clip.bvh"
    write_motion(motion, path, "bvh")
    result = run_in_blender(BLENDER_IMPORT, str(path), str(motion.frames), ",".join(JOINT_NAMES))
    blender = np.array(result["heads"])  # Blender Z up: (x, -z, y) of ours
    ours = np.stack([blender[..., 0], blender[..., 2], -blender[..., 1]], axis=-1)
    error = np.linalg.norm(ours - motion.positions, axis=-1)
    assert error.max() < 1e-3, f"max {error.max() * 1000:.3f} mm"
