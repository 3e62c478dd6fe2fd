"""Writing a 196-frame motion onto Rigify's human metarig: the extension's bulk writer
against keyframe_insert per bone per frame, and against Blender's own BVH importer
loading the same frames, all in one run of headless Blender.

    bulk      keys.keyframe_pose: one keyframe_points.add + foreach_set per channel
    insert    set each pose bone's rotation and location, keyframe_insert, every frame
    bvh       bpy.ops.import_anim.bvh of the motion written as BVH (a new armature and
              its action: the work a user would otherwise do to bring the motion in)

Goals: bulk at least 15x faster than insert; retargeting plus bulk writing together
in at most half the BVH importer's time. Both write the same keys (checked).

    .venv/bin/python benchmarks/keyframes.py
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/retarget.py must not shadow retarget/

from benchmarks.retarget import best_time, metarig
from harness.motions import smooth_random_motion

FRAMES = 196


def insert_keys(obj, pose, frame_start=1):
    """The usual add-on way: pose the bones, keyframe_insert each channel, per frame."""
    import bpy

    action = bpy.data.actions.new("inserted")
    obj.animation_data_create().action = action
    bones = [obj.pose.bones[name] for name in pose.bones]
    for bone in bones:
        bone.rotation_mode = "QUATERNION"
    root = obj.pose.bones[pose.root_bone]
    for t in range(pose.frames):
        frame = frame_start + t
        for k, bone in enumerate(bones):
            bone.rotation_quaternion = pose.rotations[t, k]
            bone.keyframe_insert("rotation_quaternion", frame=frame)
        root.location = pose.root_location[t]
        root.keyframe_insert("location", frame=frame)
    return action


def action_keys(action, obj):
    tasks = sys.modules["motiongpt.tasks"]
    table = {}
    for curve in tasks.object_fcurves(action, obj):
        co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
        curve.keyframe_points.foreach_get("co", co)
        table[(curve.data_path, curve.array_index)] = co
    return table


def main():
    import bpy

    rig, bone_map = metarig()
    obj = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    keys = sys.modules["motiongpt.keys"]
    transfer = sys.modules["motiongpt.retarget.transfer"]
    Motion = sys.modules["motiongpt.retarget.motion"].Motion
    write_motion = sys.modules["motiongpt.retarget.formats"].write_motion
    for bone in obj.pose.bones:  # one rotation mode for both writers (the shoulders are Euler)
        bone.rotation_mode = "QUATERNION"

    rotations, root = smooth_random_motion(frames=FRAMES, seed=0, amplitude=0.4, turn_degrees=90, walk_speed=1.2)
    motion = Motion.from_rotations(rotations, root)
    pose = transfer.pose_from_motion(motion, rig, bone_map)

    written = []

    def bulk():
        written.append(keys.keyframe_pose(obj, pose, 1, action_name="bulk"))

    def insert():
        written.append(insert_keys(obj, pose))

    def retarget_and_bulk():
        written.append(keys.keyframe_pose(obj, transfer.pose_from_motion(motion, rig, bone_map), 1, action_name="both"))

    bvh = Path(tempfile.mkdtemp()) / "motion.bvh"
    write_motion(motion, bvh, "bvh")

    def importer():
        bpy.ops.import_anim.bvh(filepath=str(bvh), axis_forward="-Z", axis_up="Y", frame_start=1,
                                use_fps_scale=False, update_scene_fps=False, update_scene_duration=False)

    t_bulk = best_time(bulk, repeats=10)
    t_insert = best_time(insert, repeats=3)
    t_both = best_time(retarget_and_bulk, repeats=10)
    t_bvh = best_time(importer, repeats=3)

    fast, slow = action_keys(written[0], obj), action_keys(written[10], obj)
    assert fast.keys() == slow.keys(), "the two writers keyed different channels"
    worst = max(float(np.abs(fast[k] - slow[k]).max()) for k in fast)
    assert worst < 1e-6, f"the two writers disagree by {worst}"

    channels = len(fast)
    print(f"Rigify metarig, {len(pose.bones)} keyed bones, {channels} channels x {FRAMES} frames "
          f"({channels * FRAMES} keys); Blender {bpy.app.version_string}")
    print(f"{'method':52s} {'ms':>8s}")
    print(f"{'bulk writer (keys.keyframe_pose)':52s} {1000 * t_bulk:8.2f}")
    print(f"{'keyframe_insert per bone per frame':52s} {1000 * t_insert:8.2f}")
    print(f"{'retarget (pose_from_motion) + bulk writer':52s} {1000 * t_both:8.2f}")
    print(f"{'Blender BVH importer, same frames':52s} {1000 * t_bvh:8.2f}")
    ratio = t_insert / t_bulk
    share = t_both / t_bvh
    print(f"bulk vs keyframe_insert: {ratio:.1f}x   (goal >= 15x: {'met' if ratio >= 15 else 'NOT met'})")
    print(f"retarget + bulk vs BVH importer: {share:.2f} of its time   "
          f"(goal <= 0.5: {'met' if share <= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
