"""The README's main job: the whole product against the embedded default model, and
what it writes is what it says."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from retarget.formats import read_motion
from harness.blender import RESULT_MARKER, run_in_blender

REPO = Path(__file__).resolve().parent.parent

CHECK = f"""
import json, sys
import bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
found = {{}}
for name in ("Rigify", "Mixamo"):
    obj = bpy.data.objects[name]
    action = obj.animation_data.action
    found[name] = {{"action": action.name, "caption": action.get("motiongpt_caption"),
                   "figure": (name + " figure") in bpy.data.objects}}
image = bpy.data.images.load(sys.argv[2])
found["filmstrip"] = list(image.size)
print("{RESULT_MARKER}" + json.dumps(found))
"""


def test_demo_generates_fills_captions_and_writes_everything(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "demo" / "scene.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("scene.blend", "rigify_smpl.bvh", "mixamo.bvh", "filmstrip.png", "filmstrip_mixamo.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "model 'motiongpt-default'" in result.stdout  # the embedded model, not a test one
    scene = run_in_blender(CHECK, str(tmp_path / "scene.blend"), str(tmp_path / "filmstrip.png"))
    assert scene["Rigify"]["action"] == "a person walks forward"
    assert scene["Mixamo"]["action"] == "a person jumps forward twice"
    for rig in ("Rigify", "Mixamo"):
        caption = scene[rig]["caption"]
        assert caption and f"{rig}: caption of its action: {caption!r}" in result.stdout
        assert scene[rig]["figure"]
    assert scene["filmstrip"] == [6 * 220 + 5 * 4, 300]
    # The generated walk, exported on the SMPL skeleton, travels.
    walk = read_motion(tmp_path / "rigify_smpl.bvh", "bvh")
    assert abs(walk.fps - 24) < 1e-3 and walk.frames > 80  # BVH stores the frame time (0.0416667)
    assert np.linalg.norm(walk.positions[-1, 0, [0, 2]] - walk.positions[0, 0, [0, 2]]) > 1.0
    assert (tmp_path / "mixamo.bvh").read_text().startswith("HIERARCHY")
