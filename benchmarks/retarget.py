"""Throughput of retargeting against a per-frame, per-bone mathutils reference.

Retargets a 196-frame SMPL-22 motion onto Rigify's human metarig (built by Rigify in
a headless Blender, read by the extension's own rig_of) with the vectorized numpy code
(retarget/transfer.py), and with the same transfer written the way Blender add-ons
usually do it: one frame at a time, one bone at a time, with mathutils quaternions and
matrices. Both use the same precomputed reference rotations, get the same channels
(checked), and are timed in the same run; the goal is at least 20x.

    .venv/bin/python benchmarks/retarget.py
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/retarget.py must not shadow retarget/

from harness.motions import smooth_random_motion

FRAMES = 196


def metarig():
    """Rigify's human metarig, read by the staged extension's rig_of."""
    import bpy

    from harness.extension import stage_extension

    stage = Path(tempfile.mkdtemp()) / "motiongpt"
    stage_extension(stage)
    sys.path.insert(0, str(stage.parent))
    from motiongpt import rig as blender_rig

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module="rigify")
    bpy.ops.object.armature_human_metarig_add()
    obj = bpy.context.object
    return blender_rig.rig_of(obj), blender_rig.bone_map_of(obj)


def reference_transfer(motion, binding):
    """The same transfer, per frame and per bone, with mathutils: each bone's channel
    is [R^-1 Dp^-1 B] (SMPL local rotations from the bone above) [B^-1 D R], kept in
    the previous frame's hemisphere, and the root bone's location from the pelvis."""
    from mathutils import Matrix, Quaternion, Vector

    left = [Quaternion(q) for q in binding._left]
    right = [Quaternion(q) for q in binding._right]
    paths = binding.paths
    frame = Matrix(binding.frame.tolist())
    root_rest_t = Matrix(binding.root_rest.T.tolist())
    pelvis_head = Vector(binding.pelvis_head)
    lift = Vector(binding.up) * binding.lift
    rotations = np.empty((motion.frames, len(paths), 4))
    locations = np.empty((motion.frames, 3))
    previous = [None] * len(paths)
    for t in range(motion.frames):
        local = [Quaternion(q) for q in motion.rotations[t]]
        for k, path in enumerate(paths):
            product = local[path[0]]
            for joint in path[1:]:
                product = product @ local[joint]
            q = left[k] @ product @ right[k]
            if (previous[k] is None and q.w < 0) or (previous[k] is not None and q.dot(previous[k]) < 0):
                q.negate()
            previous[k] = q
            rotations[t, k] = q
        target = frame @ (Vector(motion.positions[t, 0]) * binding.scale) + lift
        locations[t] = root_rest_t @ (target - pelvis_head)
    return rotations, locations


def best_time(function, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    rig, bone_map = metarig()
    # The extension's own copy of the code, as it runs inside Blender.
    transfer = sys.modules["motiongpt.retarget.transfer"]
    rotations, root = smooth_random_motion(frames=FRAMES, seed=0, amplitude=0.4, turn_degrees=90, walk_speed=1.2)
    motion = sys.modules["motiongpt.retarget.motion"].Motion.from_rotations(rotations, root)

    cold = best_time(lambda: transfer.Binding(rig, bone_map, motion.offsets), repeats=3)
    binding = transfer.bind(rig, bone_map, motion.offsets)
    pose = transfer.pose_from_motion(motion, rig, bone_map)
    ref_rotations, ref_locations = reference_transfer(motion, binding)
    # mathutils computes in single precision.
    assert np.abs(pose.rotations - ref_rotations).max() < 1e-5, "the reference disagrees with the vectorized code"
    assert np.abs(pose.root_location - ref_locations).max() < 1e-5

    fast = best_time(lambda: transfer.pose_from_motion(motion, rig, bone_map), repeats=20)
    locked = best_time(lambda: transfer.pose_from_motion(motion, rig, bone_map, foot_lock=True), repeats=10)
    slow = best_time(lambda: reference_transfer(motion, binding), repeats=3)
    fps_fast, fps_slow = FRAMES / fast, FRAMES / slow
    ratio = fps_fast / fps_slow
    print(f"Rigify metarig: {len(pose.bones)} mapped bones of {rig.count}; {FRAMES}-frame motion")
    print(f"{'method':42s} {'frames/s':>10s} {'ms/clip':>9s}")
    print(f"{'vectorized numpy (pose_from_motion)':42s} {fps_fast:10.0f} {1000 * fast:9.2f}")
    print(f"{'vectorized numpy, with foot locking':42s} {FRAMES / locked:10.0f} {1000 * locked:9.2f}")
    print(f"{'per-frame, per-bone mathutils reference':42s} {fps_slow:10.0f} {1000 * slow:9.2f}")
    print(f"binding the rig (once per rig and map): {1000 * cold:.2f} ms")
    print(f"ratio {ratio:.0f}x   (goal >= 20x: {'met' if ratio >= 20 else 'NOT met'})")


if __name__ == "__main__":
    main()
