"""The SMPL body: a synthetic model file in SMPL's own format, loaded by smplx (the
real path) and by the extension's numpy reader, `motiongpt convert --to smpl-mesh`,
and the body built in real Blender from the same file."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retarget.smpl_model import load_smpl_model, shaped
from retarget.formats import read_motion, write_motion
from harness import extension as addon_build
from harness.blender import RESULT_MARKER, run_in_blender
from tests.smpl_model import synthetic_smpl, write_npz, write_pkl

REPO = Path(__file__).resolve().parent.parent
FEATURES = REPO / "tests" / "data" / "hml3d_012314_features.npy"
BETAS = [1.5, -0.8, 0.4]


def motiongpt(*args):
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smpl")
    model = synthetic_smpl(seed=3)
    motion = read_motion(FEATURES, "hml3d")
    clip = folder / "clip.bvh"
    write_motion(motion, clip, "bvh")
    return {
        "model": model,
        "pkl": write_pkl(folder / "SMPL_NEUTRAL.pkl", model),
        "pkl_py2": write_pkl(folder / "model_protocol0.pkl", model, protocol=0),
        "npz": write_npz(folder / "model.npz", model),
        "clip": clip,
        "motion": read_motion(clip, "bvh"),
        "folder": folder,
    }


@pytest.mark.parametrize("kind", ["pkl", "pkl_py2", "npz"])
def test_model_files_are_read_without_scipy_or_torch(files, kind):
    model = load_smpl_model(files[kind])
    source = files["model"]
    assert np.array_equal(model.J_regressor, source["J_regressor"])  # rebuilt from the sparse matrix
    assert np.array_equal(model.v_template, source["v_template"])
    assert np.array_equal(model.weights, source["weights"])
    assert model.parents.tolist() == [-1] + source["kintree_table"][0, 1:].tolist()
    assert model.faces.shape == (24 * 12, 3)


def test_smplx_loads_the_synthetic_model_like_our_reader(files):
    import smplx
    import torch

    body = smplx.SMPL(model_path=str(files["pkl"]), num_betas=3, vertex_ids={k: 0 for k in ("nose", "reye", "leye",
                                                                                          "rear", "lear")},
                      use_hands=False, use_feet_keypoints=False)
    with torch.inference_mode():
        out = body(betas=torch.tensor([BETAS], dtype=torch.float32))
    vertices, joints = shaped(load_smpl_model(files["pkl"]), BETAS)
    assert np.abs(out.vertices[0].numpy() - vertices).max() < 1e-5
    assert np.abs(out.joints[0, :24].numpy() - joints).max() < 1e-5


def test_bad_model_files_get_one_line_errors(files, tmp_path):
    model = dict(files["model"])
    del model["weights"]
    with pytest.raises(ValueError, match="the SMPL model has no weights"):
        load_smpl_model(write_pkl(tmp_path / "no_weights.pkl", model))
    # A pickle that would run code is refused, naming what it holds.
    (tmp_path / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(ValueError, match="holds os.system, which is not model data"):
        load_smpl_model(tmp_path / "evil.pkl")
    # Official files still holding chumpy objects: told how to convert them.
    # (a dict {"shapedirs": chumpy.ch.Ch()}, written out opcode by opcode)
    payload = b"\x80\x02}q\x00X\t\x00\x00\x00shapedirsq\x01cchumpy.ch\nCh\nq\x02)\x81q\x03}q\x04bs."
    (tmp_path / "chumpy.pkl").write_bytes(payload)
    with pytest.raises(ValueError, match="chumpy objects: convert"):
        load_smpl_model(tmp_path / "chumpy.pkl")
    with pytest.raises(ValueError, match="no such SMPL model file"):
        load_smpl_model(tmp_path / "missing.pkl")
    with pytest.raises(ValueError, match="4 betas given; the model has 3"):
        shaped(load_smpl_model(write_pkl(tmp_path / "three.pkl", synthetic_smpl(betas=3))), [0, 0, 0, 1])


@pytest.fixture(scope="module")
def mesh(files):
    out = files["folder"] / "body.npz"
    result = motiongpt("convert", "--to", "smpl-mesh", "--smpl-model", str(files["folder"]), "--betas",
                       ",".join(map(str, BETAS)), str(files["clip"]), str(out))
    assert result.returncode == 0, result.stderr
    assert "192-vertex SMPL body" in result.stdout
    return dict(np.load(out))


def test_convert_writes_per_frame_vertices(mesh, files):
    motion = files["motion"]
    assert mesh["vertices"].shape == (motion.frames, 192, 3)
    assert mesh["faces"].shape == (288, 3)
    assert mesh["body_pose"].shape == (motion.frames, 69)
    assert np.allclose(mesh["betas"], BETAS)
    # The body performs the motion with its own proportions: limbs point the same way.
    joints, source = mesh["joints"].astype(np.float64), motion.positions
    worst = 0.0
    for child, parent in ((4, 1), (7, 4), (10, 7), (18, 16), (20, 18), (15, 12), (5, 2), (19, 17)):
        a, b = joints[:, child] - joints[:, parent], source[:, child] - source[:, parent]
        cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        worst = max(worst, float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max()))
    print(f"smpl-mesh: body limbs within {worst:.5f} deg of the motion's")
    assert worst < 0.01


def test_convert_smpl_mesh_needs_a_model_and_leaves_nothing_on_error(files, tmp_path):
    out = tmp_path / "body.npz"
    result = motiongpt("convert", "--to", "smpl-mesh", str(files["clip"]), str(out))
    assert result.returncode == 1 and "needs --smpl-model" in result.stderr and len(result.stderr.splitlines()) == 1
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"not a pickle")
    result = motiongpt("convert", "--to", "smpl-mesh", "--smpl-model", str(broken), str(files["clip"]), str(out))
    assert result.returncode == 1 and "not a readable SMPL model file" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".body.npz*"))
    result = motiongpt("convert", "--smpl-model", str(files["pkl"]), str(files["clip"]), str(tmp_path / "x.npz"))
    assert result.returncode == 1 and "are for --to smpl-mesh" in result.stderr


BODY_SCRIPT = f"""
import json, sys
import bpy
import numpy as np
stage, model_path, motion_path, betas = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path.insert(0, stage)
from motiongpt import smpl_body as body
from motiongpt.retarget.formats import read_motion
bpy.ops.wm.read_factory_settings(use_empty=True)
motion = read_motion(motion_path, "bvh")
result = {{}}
before = len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.armatures)
try:
    body.create_body(model_path + ".missing", motion, betas)
except ValueError as error:
    result["bad_model"] = str(error)
result["left_nothing"] = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.armatures)) == before
armature, mesh = body.create_body(model_path, motion, betas)
result["bones"] = len(armature.data.bones)
result["groups"] = len(mesh.vertex_groups)
result["stored_map"] = "motiongpt_bone_map" in armature.data
frames = [1, 40, 90, motion.frames]
vertices = []
for frame in frames:
    bpy.context.scene.frame_set(frame)
    evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
    world = np.array(mesh.matrix_world)
    points = np.array([list(v.co) for v in evaluated.data.vertices])
    vertices.append((points @ world[:3, :3].T + world[:3, 3]).tolist())
result["frames"] = frames
result["vertices"] = vertices
print("{RESULT_MARKER}" + json.dumps(result))
"""


def test_blender_body_matches_smplx(mesh, files, tmp_path):
    """The body built in Blender (armature + skin weights) moves its vertices where
    smplx puts them (the synthetic model has no pose correctives, which Blender's
    armature skinning does not apply)."""
    stage = tmp_path / "stage"
    stage.mkdir()
    addon_build.stage_extension(stage / "motiongpt")
    result = run_in_blender(BODY_SCRIPT, str(stage), str(files["pkl"]), str(files["clip"]), json.dumps(BETAS))
    assert "no such SMPL model file" in result["bad_model"] and result["left_nothing"]
    assert result["bones"] == 24 and result["groups"] == 24 and result["stored_map"]
    blender = np.array(result["vertices"])
    smplx_vertices = mesh["vertices"][np.array(result["frames"]) - 1].astype(np.float64)
    expected = np.stack([smplx_vertices[..., 0], -smplx_vertices[..., 2], smplx_vertices[..., 1]], axis=-1)
    error = np.linalg.norm(blender - expected, axis=-1).max()
    print(f"Blender SMPL body vs smplx: vertices within {1000 * error:.4f} mm")
    assert error < 1e-3
