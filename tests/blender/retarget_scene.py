"""Runs inside Blender (bpy): builds armatures, retargets motions onto them with the
extension's own modules, lets Blender evaluate the result and reports what it shows.

    python -c "<harness.rigs.BUILD_CODE>$(cat retarget_scene.py)" STAGE_DIR JOBS.json

(the test puts harness.rigs.BUILD_CODE, which defines build_armature, before this text)

STAGE_DIR holds the staged extension package `motiongpt` (addon + its retarget copy).
JOBS.json: {"motions": {name: npz path}, "rigs": [job, ...]}. A job builds an armature
("bones": bone list, or "metarig": true for Rigify's, or "bvh": a file for Blender's
importer), retargets motion "motion" onto it (with "foot_lock"), keys it, evaluates
every frame and reports the mapped bones' world heads and tails, and, with
"round_trip", reads the keyed action back to SMPL-22.
"""

import json
import sys

import bpy
import numpy as np

sys.path.insert(0, sys.argv[1])  # the staged extension
from motiongpt import keys as blender_keys
from motiongpt import rig as blender_rig
from motiongpt.retarget.motion import Motion
from motiongpt.retarget.transfer import foot_contacts, motion_from_pose, pose_from_motion


jobs = json.load(open(sys.argv[2]))
motions = {}
for name, path in jobs["motions"].items():
    data = np.load(path)
    motions[name] = Motion.from_rotations(data["rotations"], data["root"], float(data["fps"]), data["offsets"])

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene


def evaluate(obj, names, frames):
    """World heads and tails (T, len(names), 3) of bones over frames 1..frames."""
    heads = np.empty((frames, len(names), 3))
    tails = np.empty_like(heads)
    world = np.array(obj.matrix_world)
    for t in range(frames):
        scene.frame_set(t + 1)
        for k, name in enumerate(names):
            bone = obj.pose.bones[name]
            heads[t, k] = (world @ np.r_[np.array(bone.head), 1.0])[:3]
            tails[t, k] = (world @ np.r_[np.array(bone.tail), 1.0])[:3]
    return heads, tails


def make_armature(job):
    if job.get("metarig"):
        bpy.ops.preferences.addon_enable(module="rigify")
        bpy.ops.object.armature_human_metarig_add()
        obj = bpy.context.object
        if job.get("generate"):
            before = set(bpy.data.objects)
            bpy.ops.pose.rigify_generate()
            obj = next(o for o in bpy.data.objects if o not in before and o.type == "ARMATURE")
        obj.name = job["name"]
        return obj
    if job.get("bvh"):
        before = set(bpy.data.objects)
        bpy.ops.import_anim.bvh(filepath=job["bvh"], axis_forward="-Z", axis_up="Y", global_scale=1.0,
                                frame_start=1, use_fps_scale=False, update_scene_fps=False,
                                update_scene_duration=False, rotate_mode="NATIVE")
        obj = next(o for o in bpy.data.objects if o not in before and o.type == "ARMATURE")
        obj.name = job["name"]
        return obj
    return build_armature(job["bones"], job["name"])


results = {}
for job in jobs["rigs"]:
    out = results[job["name"]] = {}
    obj = make_armature(job)
    bpy.context.view_layer.update()
    motion = motions[job["motion"]]
    frames = motion.frames
    if job.get("bvh"):
        # What Blender's own importer shows, before anything of ours touches the rig.
        names = [b.name for b in obj.data.bones]
        heads, _ = evaluate(obj, names, frames)
        out["importer_heads"] = {n: heads[:, k].tolist() for k, n in enumerate(names)}
        imported_action = obj.animation_data.action
        bone_map = blender_rig.bone_map_of(obj)
        sampled = blender_rig.sample_pose(obj, imported_action, 1, frames, bone_map)
        back = motion_from_pose(blender_rig.rig_of(obj), bone_map, sampled, motion.offsets)
        out["importer_read_back_positions"] = back.positions.tolist()
    try:
        rig = blender_rig.rig_of(obj)
        bone_map = blender_rig.bone_map_of(obj)
    except ValueError as error:
        out["error"] = str(error)
        continue
    blender_rig.store_bone_map(obj, bone_map)
    out["stored"] = json.loads(obj.data[blender_rig.BONE_MAP_PROPERTY])
    out["bone_map"] = blender_rig.bone_map_of(obj)
    out["world"] = np.array(obj.matrix_world).tolist()
    for lock in job.get("foot_lock", [False]):
        key = "locked" if lock else "free"
        pose = pose_from_motion(motion, rig, bone_map, foot_lock=lock)
        action = blender_keys.keyframe_pose(obj, pose, 1, action_name=f"{job['name']} {key}")
        names = [bone_map[j] for j in bone_map]
        heads, tails = evaluate(obj, names, frames)
        out[key] = {
            "joints": list(bone_map),
            "heads": heads.tolist(),
            "tails": tails.tolist(),
            "rotation_modes": sorted({obj.pose.bones[n].rotation_mode for n in pose.bones}),
            "fcurves": len(action.layers[0].strips[0].channelbags[0].fcurves) if hasattr(action, "layers")
            else len(action.fcurves),
        }
        if job.get("round_trip") and not lock:
            sampled = blender_rig.sample_pose(obj, action, 1, frames, bone_map)
            back = motion_from_pose(rig, bone_map, sampled, motion.offsets)
            out["round_trip"] = {"rotations": back.rotations.tolist(), "positions": back.positions.tolist(),
                                 "channels_max_difference": float(np.abs(np.abs(
                                     np.sum(sampled.rotations * pose.rotations, axis=-1)) - 1).max())}
    out["contacts"] = foot_contacts(motion.positions, motion.fps).tolist()

print("RESULT-JSON:" + json.dumps(results))
