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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from filmstrip import add_figure, render_filmstrip

from harness.rigs import BUILD_CODE, humanoid, to_json

zip_path, server_url, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
PROMPTS = {"Rigify": "a person walks forward", "Mixamo": "a person jumps forward twice"}
GAP = (20, 45)  # frames of the Mixamo rig's action cleared and filled by In-between


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

    scene = bpy.context.scene
    scene.render.fps = 24
    bpy.ops.ed.undo_push(message="demo start")

    bpy.ops.preferences.addon_enable(module="rigify")
    bpy.ops.object.armature_human_metarig_add()
    rigify = bpy.context.object
    rigify.name = "Rigify"
    rigify.location = (-1.0, 0.0, 0.0)
    # A Mixamo-named rig ("mixamorig:" prefix, fingers) with the SMPL rest proportions.
    builder = {}
    exec(BUILD_CODE, builder)
    mixamo = builder["build_armature"](json.loads(to_json(humanoid("mixamo"))), name="Mixamo")
    mixamo.location = (1.0, 0.0, 0.0)

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
