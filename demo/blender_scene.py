"""The Blender half of the demo (run by demo/scene.py in its own Python, so Blender
starts with the demo's user folder): install the extension, build a Rigify human and a
Mixamo-named rig, and drive the extension's operators against the running server.

    python demo/blender_scene.py EXTENSION.zip SERVER_URL OUT_DIR

Prints one line "DEMO-RESULT:" + JSON for demo/scene.py.
"""

import json
import sys
from pathlib import Path

import bpy
from mathutils import Vector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from filmstrip import add_figure, render_filmstrip  # noqa: E402

zip_path, server_url, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
PROMPTS = {"Rigify": "a person walks forward", "Mixamo": "a person jumps forward twice"}
GAP = (20, 45)  # frames of the Mixamo rig's action cleared and filled by In-between

# SMPL-22 joints -> Mixamo bone names, with each bone's parent.
MIXAMO = {
    "pelvis": ("Hips", None), "spine1": ("Spine", "pelvis"), "spine2": ("Spine1", "spine1"),
    "spine3": ("Spine2", "spine2"), "neck": ("Neck", "spine3"), "head": ("Head", "neck"),
    "left_collar": ("LeftShoulder", "spine3"), "left_shoulder": ("LeftArm", "left_collar"),
    "left_elbow": ("LeftForeArm", "left_shoulder"), "left_wrist": ("LeftHand", "left_elbow"),
    "right_collar": ("RightShoulder", "spine3"), "right_shoulder": ("RightArm", "right_collar"),
    "right_elbow": ("RightForeArm", "right_shoulder"), "right_wrist": ("RightHand", "right_elbow"),
    "left_hip": ("LeftUpLeg", "pelvis"), "left_knee": ("LeftLeg", "left_hip"),
    "left_ankle": ("LeftFoot", "left_knee"), "left_foot": ("LeftToeBase", "left_ankle"),
    "right_hip": ("RightUpLeg", "pelvis"), "right_knee": ("RightLeg", "right_hip"),
    "right_ankle": ("RightFoot", "right_knee"), "right_foot": ("RightToeBase", "right_ankle"),
}
TAIL_CHILD = {"pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
              "left_collar": "left_shoulder", "left_shoulder": "left_elbow", "left_elbow": "left_wrist",
              "right_collar": "right_shoulder", "right_shoulder": "right_elbow", "right_elbow": "right_wrist",
              "left_hip": "left_knee", "left_knee": "left_ankle", "left_ankle": "left_foot",
              "right_hip": "right_knee", "right_knee": "right_ankle", "right_ankle": "right_foot"}


def mixamo_rig(joints: dict, location):
    """A Mixamo-named armature ("mixamorig:" prefix) standing on the floor at `location`."""
    data = bpy.data.armatures.new("Mixamo")
    obj = bpy.data.objects.new("Mixamo", data)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = location
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for joint, (name, _) in MIXAMO.items():
        bone = data.edit_bones.new("mixamorig:" + name)
        bone.head = joints[joint]
        if joint in TAIL_CHILD:
            bone.tail = joints[TAIL_CHILD[joint]]
        elif joint == "head":
            bone.tail = joints["head"] + Vector((0, 0, 0.18))
        elif joint.endswith("wrist"):
            bone.tail = joints[joint] + (joints[joint] - joints[joint.replace("wrist", "elbow")]) * 0.35
        else:  # toes
            bone.tail = joints[joint] + Vector((0, -0.08, 0))
    for joint, (name, parent) in MIXAMO.items():
        if parent is not None:
            data.edit_bones["mixamorig:" + name].parent = data.edit_bones["mixamorig:" + MIXAMO[parent][0]]
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def select(obj):
    for other in bpy.context.view_layer.objects:
        other.select_set(other is obj)
    bpy.context.view_layer.objects.active = obj


def run(operator, **properties):
    """Call an operator as a script does; a failure stops the demo with its message."""
    outcome = operator("EXEC_DEFAULT", True, **properties)
    if outcome != {"FINISHED"}:
        raise SystemExit(f"demo: {operator.idname_py()} returned {outcome}")


def main():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    module = "bl_ext.user_default.motiongpt"
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.server_url = server_url
    prefs.request_timeout = 300.0
    tasks = __import__(module + ".tasks", fromlist=["tasks"])
    skeleton = __import__(module + ".retarget.skeleton", fromlist=["skeleton"])

    scene = bpy.context.scene
    scene.render.fps = 24
    bpy.ops.ed.undo_push(message="demo start")

    bpy.ops.preferences.addon_enable(module="rigify")
    bpy.ops.object.armature_human_metarig_add()
    rigify = bpy.context.object
    rigify.name = "Rigify"
    rigify.location = (-1.0, 0.0, 0.0)
    # The Mixamo rig stands on the SMPL rest skeleton, converted to Blender axes.
    rest = skeleton.rest_positions(skeleton.REST_OFFSETS)
    lift = -rest[:, 1].min()
    joints = {name: Vector((p[0], -p[2], p[1] + lift)) for name, p in zip(skeleton.JOINT_NAMES, rest)}
    mixamo = mixamo_rig(joints, (1.0, 0.0, 0.0))

    result = {}
    for obj in (rigify, mixamo):
        select(obj)
        scene.frame_current = 1
        run(bpy.ops.motiongpt.generate, prompt=PROMPTS[obj.name], seconds=4.0, samples=1, seed=1)
        result[obj.name] = {"prompt": PROMPTS[obj.name], "action": obj.animation_data.action.name}

    # In-between on the Mixamo rig: clear a gap in its action, keep the poses around it.
    select(mixamo)
    action = mixamo.animation_data.action
    for curve in tasks.object_fcurves(action, mixamo):
        for point in reversed([p for p in curve.keyframe_points if GAP[0] <= p.co[0] <= GAP[1]]):
            curve.keyframe_points.remove(point)
        curve.update()
    run(bpy.ops.motiongpt.inbetween, frame_start=GAP[0] - 1, frame_end=GAP[1] + 1, seed=2)
    result["Mixamo"]["inbetween"] = f"frames {GAP[0]}..{GAP[1]} filled"

    for obj in (rigify, mixamo):
        select(obj)
        run(bpy.ops.motiongpt.caption)
        result[obj.name]["caption"] = obj.animation_data.action.get(tasks.CAPTION_PROPERTY)

    select(rigify)
    run(bpy.ops.motiongpt.export, filepath=str(out / "rigify_smpl.bvh"), export_format="SMPL_BVH")
    select(mixamo)
    run(bpy.ops.motiongpt.export, filepath=str(out / "mixamo.bvh"), export_format="ARMATURE_BVH")

    # Pictures: a figure on each rig (Workbench renders meshes, not bones), one
    # filmstrip per rig with the other figure hidden.
    figures = {obj.name: add_figure(obj, sorted(set(tasks.mapping_of(obj)[1].values()))) for obj in (rigify, mixamo)}
    for obj, centre, name in ((rigify, "spine", "filmstrip.png"), (mixamo, "mixamorig:Hips", "filmstrip_mixamo.png")):
        for other, figure in figures.items():
            figure.hide_render = other != obj.name
        keyed = tasks.key_frames(obj.animation_data.action, obj)
        frames = [int(round(keyed[0] + (keyed[-1] - keyed[0]) * k / 5)) for k in range(6)]
        render_filmstrip(obj, centre, frames, out / name)
        result[obj.name]["filmstrip"] = str(out / name)
    for figure in figures.values():
        figure.hide_render = False

    scene.frame_current = 1
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "scene.blend"))
    print("DEMO-RESULT:" + json.dumps(result))


main()
