"""The README's main job writes what it says, and the .blend holds the animated clip."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from retarget.formats import read_motion
from tests.blender.run import RESULT_MARKER, run_in_blender

REPO = Path(__file__).resolve().parent.parent

CHECK = f"""
import json, sys
import bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
armature = bpy.data.objects["SMPL-22"]
scene = bpy.context.scene
scene.frame_set(60)
head = armature.matrix_world @ armature.pose.bones["head"].head
print("{RESULT_MARKER}" + json.dumps({{"frame_end": scene.frame_end, "bones": len(armature.pose.bones),
      "has_action": armature.animation_data.action is not None, "head": list(head)}}))
"""


def test_demo_writes_scene_and_files(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "demo" / "scene.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "not in this version yet" in result.stdout  # it says what it does not do
    for name in ("clip.bvh", "clip_smpl.npz", "clip_joints.npy", "scene.blend"):
        assert (tmp_path / name).stat().st_size > 0
    scene = run_in_blender(CHECK, str(tmp_path / "scene.blend"))
    assert scene["frame_end"] == 170 and scene["bones"] == 22 and scene["has_action"]
    joints = np.load(tmp_path / "clip_joints.npy")
    x, y, z = scene["head"]
    # Frame 60 in Blender is index 59; Blender (x, y, z) is ours (x, z, -y).
    assert np.linalg.norm(np.array([x, z, -y]) - joints[59, 15]) < 1e-3
    assert read_motion(tmp_path / "clip_smpl.npz", "smpl").frames == 170
