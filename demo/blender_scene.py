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
# A directed shot on a third rig: (prompt, first frame, frames, seed, on the path).
SHOT = (("a person walks forward", 1, 96, 1, True),
        ("a person waves with the right hand", 97, 48, 2, False),
        ("a person jumps", 157, 48, 3, False))
# The walk's path (world metres): from where the rig stands, curving away from the others,
# longer than the walk goes (past its end a path runs on straight).
SHOT_PATH = ((0.0, 4.0, 0.0), (0.0, 5.5, 0.0), (0.8, 6.8, 0.0), (2.2, 7.6, 0.0), (3.8, 7.9, 0.0), (5.5, 8.0, 0.0))


def select(obj):
    for other in bpy.context.view_layer.objects:
        other.select_set(other is obj)
    bpy.context.view_layer.objects.active = obj


def run(operator, **properties):
    """Call an operator as a script does; a failure stops the demo with its message."""
    outcome = operator("EXEC_DEFAULT", True, **properties)
    if outcome != {"FINISHED"}:
        raise SystemExit(f"demo: {operator.idname_py()} returned {outcome}")


def direct_shot(builder, shot_module):
    """Three prompt blocks on a third rig, the first along a curve, built into one action."""
    director = builder["build_armature"](json.loads(to_json(humanoid("mixamo"))), name="Director")
    director.location = SHOT_PATH[0]
    data = bpy.data.curves.new("Walk path", "CURVE")
    data.dimensions = "3D"
    spline = data.splines.new("BEZIER")
    spline.bezier_points.add(len(SHOT_PATH) - 1)
    for point, co in zip(spline.bezier_points, SHOT_PATH):
        point.co = co
        point.handle_left_type = point.handle_right_type = "AUTO"
    path = bpy.data.objects.new("Walk path", data)
    bpy.context.scene.collection.objects.link(path)
    select(director)
    for text, start, length, seed, on_path in SHOT:
        run(bpy.ops.motiongpt.shot_block_add, text=text, start=start, length=length, seed=seed,
            path=path.name if on_path else "")
    run(bpy.ops.motiongpt.shot_build)
    report = shot_module.last_build["report"]
    return director, {
        "blocks": [f"{text!r} on frames {start}..{start + length - 1}" + (" along 'Walk path'" if on_path else "")
                   for text, start, length, seed, on_path in SHOT],
        "action": director.animation_data.action.name,
        "joins": [f"frames {a}..{b}: largest step {largest * 100:.1f} cm/frame (the motion's own: {own * 100:.1f})"
                  for (a, b, _), (_, largest, _, own) in zip(report["joins"], report["continuity"])],
        "path_error": [f"at most {error[0] * 100:.1f} cm and {error[1]:.1f} degrees off; foot sliding {before:.1f} cm/s before, "
                       f"{after:.1f} after" for error, (before, after) in zip(report["path_error"].values(),
                                                                               report["sliding"].values())],
    }


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

    director, shot = direct_shot(builder, __import__(module + ".shot", fromlist=["shot"]))

    # Pictures: a figure on each rig (Workbench renders meshes, not bones), one
    # filmstrip per rig with the other figures hidden.
    rigs = (rigify, mixamo, director)
    figures = {obj.name: add_figure(obj, sorted(set(tasks.mapping_of(obj)[1].values()))) for obj in rigs}
    strips = ((rigify, "spine", "filmstrip.png", 6), (mixamo, "mixamorig:Hips", "filmstrip_mixamo.png", 6),
              (director, "mixamorig:Hips", "filmstrip_shot.png", 8))
    for obj, centre, name, panels in strips:
        for other, figure in figures.items():
            figure.hide_render = other != obj.name
        keyed = tasks.key_frames(obj.animation_data.action, obj)
        frames = [int(round(keyed[0] + (keyed[-1] - keyed[0]) * k / (panels - 1))) for k in range(panels)]
        render_filmstrip(obj, centre, frames, out / name)
        (shot if obj is director else result[obj.name])["filmstrip"] = str(out / name)
    result = {"rigs": result, "shot": shot}
    for figure in figures.values():
        figure.hide_render = False

    scene.frame_current = 1
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "scene.blend"))
    print("DEMO-RESULT:" + json.dumps(result))


main()
