"""Runs inside Blender (bpy): installs the built extension, directs a shot with prompt
blocks as a script would, against a real server, and reports what it did to the scene.

    python -c "<harness.rigs.BUILD_CODE>$(cat shot_scene.py)" ZIP SERVER_URL OUT_DIR RIG.json

RIG.json is a bone list (harness.rigs.to_json). Prints RESULT-JSON.
"""

import importlib
import json
import math
import sys

import bpy
import numpy as np

zip_path, server_url, out_dir, rig_path = sys.argv[1:5]
result = {"version": bpy.app.version_string}

bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
MODULE = "bl_ext.user_default.motiongpt"
tasks = importlib.import_module(MODULE + ".tasks")
shot_module = importlib.import_module(MODULE + ".shot")
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.server_url = server_url
prefs.request_timeout = 300.0
bpy.context.scene.render.fps = 24  # not the model's 20
bpy.context.scene.frame_end = 250
bones = json.load(open(rig_path))


def make_rig(name):
    obj = build_armature(bones, name=name)  # harness.rigs.BUILD_CODE comes first
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj.name


def activate(name):
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    obj = bpy.data.objects[name]
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    return obj


def call(operator, **kwargs):
    """Run an operator as a script does (with an undo step); the error text or None."""
    try:
        outcome = operator("EXEC_DEFAULT", True, **kwargs)
        return None if outcome == {"FINISHED"} else f"returned {sorted(outcome)}"
    except RuntimeError as error:
        return str(error)


def keys_of(obj):
    """{"data_path[index]": [[frame, value, left x, left y, right x, right y], ...]} of the active action."""
    action = obj.animation_data.action
    table = {}
    for curve in tasks.object_fcurves(action, obj):
        n = len(curve.keyframe_points)
        values = {}
        for prop in ("co", "handle_left", "handle_right"):
            buffer = np.empty(2 * n, dtype=np.float32)
            curve.keyframe_points.foreach_get(prop, buffer)
            values[prop] = buffer.reshape(n, 2)
        table[f"{curve.data_path}[{curve.array_index}]"] = np.hstack(
            [values["co"], values["handle_left"], values["handle_right"]]).tolist()
    return table


def heads(obj, first, last):
    """{bone: (T, 3) world head positions} of every bone on frames first..last, as Blender evaluates them."""
    scene = bpy.context.scene
    out = {b.name: [] for b in obj.pose.bones}
    for frame in range(first, last + 1):
        scene.frame_set(frame)
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        matrix = evaluated.matrix_world
        for bone in evaluated.pose.bones:
            out[bone.name].append(list(matrix @ bone.head))
    scene.frame_set(1)
    return out


def blocks_of(obj):
    return [{"id": b.block_id, "text": b.text, "start": b.start, "length": b.length, "seed": b.seed,
             "path": b.path.name if b.path else None, "continued": b.continued} for b in obj.motiongpt_shot.blocks]


def state(obj):
    """What a failed build must leave as it was."""
    anim = obj.animation_data
    return {"actions": sorted(a.name for a in bpy.data.actions),
            "active": anim.action.name if anim and anim.action else None,
            "keys": keys_of(obj) if anim and anim.action else None,
            "blocks": blocks_of(obj), "built": obj.motiongpt_shot.built}


# --- three blocks on a rig the animator has keyed by hand outside them -----------------------------
shot_rig = make_rig("Actor")
obj = activate(shot_rig)
head = obj.pose.bones["mixamorig:Head"]
head.rotation_mode = "QUATERNION"
for frame, angle in ((1, 0.2), (5, -0.1), (230, 0.3)):  # hand keys before and after the blocks
    head.rotation_quaternion = (math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0)
    head.keyframe_insert("rotation_quaternion", frame=frame)
bpy.ops.ed.undo_push(message="hand keys")
hand = keys_of(obj)

ids = []
for text, start, length, seed in (("a person walks forward", 10, 60, 1), ("a person waves with the right hand", 70, 48, 2),
                                  ("a person walks forward", 128, 60, 3)):
    result.setdefault("add_errors", []).append(call(bpy.ops.motiongpt.shot_block_add, text=text, start=start,
                                                    length=length, seed=seed))
    ids.append(obj.motiongpt_shot.blocks[obj.motiongpt_shot.active_index].block_id)
result["ids"] = ids
result["blocks"] = blocks_of(obj)

result["build_error"] = call(bpy.ops.motiongpt.shot_build)
result["build_report"] = shot_module.last_build["report"]
result["hand"] = hand
result["built"] = keys_of(obj)
# One undo step takes the whole build back (keys and the record of what was built); redo returns it.
bpy.ops.ed.undo()
obj = bpy.data.objects[shot_rig]
result["undone"] = {"keys_are_hand": keys_of(obj) == hand, "built": obj.motiongpt_shot.built}
bpy.ops.ed.redo()
obj = bpy.data.objects[shot_rig]
result["redone"] = keys_of(obj) == result["built"]
result["action"] = obj.animation_data.action.name
result["actions"] = sorted(a.name for a in bpy.data.actions)
result["built_heads"] = heads(obj, 8, 190)
# What the timeline shows: a bar per block at 10 pixels a frame in a 1500-pixel-wide editor (no
# draw handler in background mode, where there are no editors to draw in).
result["bars"] = shot_module.block_bars([(b, False) for b in shot_module.ordered(obj.motiongpt_shot)],
                                        lambda frame: 10.0 * frame, 1500)
result["draw_handlers"] = len(shot_module._draw_handlers)
result["stale_after_build"] = [shot_module.is_stale(obj.motiongpt_shot, b) for b in obj.motiongpt_shot.blocks]

# --- edit the middle block and rebuild it alone ---------------------------------------------------------
result["edit_error"] = call(bpy.ops.motiongpt.shot_block_edit, block_id=ids[1], text="a person squats down", seed=7)
result["stale_after_edit"] = [shot_module.is_stale(obj.motiongpt_shot, b) for b in obj.motiongpt_shot.blocks]
result["rebuild_error"] = call(bpy.ops.motiongpt.shot_build_block, block_id=ids[1])
result["rebuild_report"] = shot_module.last_build["report"]
result["rebuilt"] = keys_of(obj)
result["rebuilt_heads"] = heads(obj, 8, 190)

# --- reordering swaps places on the timeline --------------------------------------------------------------
result["move_error"] = call(bpy.ops.motiongpt.shot_block_move, block_id=ids[1], direction="EARLIER")
result["moved"] = blocks_of(obj)
call(bpy.ops.motiongpt.shot_block_move, block_id=ids[1], direction="LATER")
result["moved_back"] = blocks_of(obj)

# --- failures change nothing ------------------------------------------------------------------------------
before = state(obj)
result["overlap_add_error"] = call(bpy.ops.motiongpt.shot_block_add, text="a person sits down", start=100, length=40)
overlapping = obj.motiongpt_shot.blocks[obj.motiongpt_shot.active_index].block_id
after_add = state(obj)
result["overlap_error"] = call(bpy.ops.motiongpt.shot_build)
result["overlap_unchanged"] = state(obj) == after_add
call(bpy.ops.motiongpt.shot_block_remove, block_id=overlapping)
result["removed_back"] = state(obj) == before
prefs.server_url = "http://127.0.0.1:9"
result["server_down_error"] = call(bpy.ops.motiongpt.shot_build)
result["server_down_unchanged"] = state(obj) == before
prefs.server_url = server_url
result["empty_text_error"] = call(bpy.ops.motiongpt.shot_block_edit, block_id=ids[0], text="  ")
result["empty_text_build_error"] = call(bpy.ops.motiongpt.shot_build)
call(bpy.ops.motiongpt.shot_block_edit, block_id=ids[0], text="a person walks forward")

# --- a walk along an S curve ---------------------------------------------------------------------------
walker = make_rig("Walker")
t = np.linspace(0.0, 1.0, 9)
points = [(0.8 * math.sin(2 * math.pi * u), -10.0 * u, 0.0) for u in t]  # 10 m, one S (the rig faces -Y)
curve_data = bpy.data.curves.new("S", "CURVE")
curve_data.dimensions = "3D"
spline = curve_data.splines.new("BEZIER")
spline.bezier_points.add(len(points) - 1)
for point, co in zip(spline.bezier_points, points):
    point.co = co
    point.handle_left_type = point.handle_right_type = "AUTO"
curve_data.resolution_u = 24
curve = bpy.data.objects.new("S path", curve_data)
bpy.context.scene.collection.objects.link(curve)
curve.location = (0.5, 0.3, 0.0)  # world space, not the curve's own
obj = activate(walker)
result["path_add_error"] = call(bpy.ops.motiongpt.shot_block_add, text="a person walks forward", start=1, length=120,
                                seed=0, path="S path")
result["path_build_error"] = call(bpy.ops.motiongpt.shot_build)
result["path_report"] = shot_module.last_build["report"]
result["path_heads"] = heads(obj, 1, 120)
depsgraph = bpy.context.evaluated_depsgraph_get()
result["path_points"] = shot_module.curve_points(curve, depsgraph).tolist()
result["not_a_curve_error"] = call(bpy.ops.motiongpt.shot_block_add, text="a person walks", start=200, length=30,
                                   path="Actor")

# --- a block that continues the one before -------------------------------------------------------------
continuer = make_rig("Continuer")
obj = activate(continuer)
call(bpy.ops.motiongpt.shot_block_add, text="a person walks forward", start=1, length=48, seed=1)
call(bpy.ops.motiongpt.shot_block_add, text="a person walks forward", start=49, length=48, seed=2, continued=True)
first = obj.motiongpt_shot.blocks[0].block_id
result["continued_build_error"] = call(bpy.ops.motiongpt.shot_build)
call(bpy.ops.motiongpt.shot_block_edit, block_id=first, seed=5)
result["continued_rebuild_error"] = call(bpy.ops.motiongpt.shot_build_block, block_id=first)
result["continued_rebuild_frames"] = shot_module.last_build["report"]["frames"]
call(bpy.ops.motiongpt.shot_block_edit, block_id=first, continued=True)
result["first_continued_error"] = call(bpy.ops.motiongpt.shot_build)

# --- blocks survive save and reload -------------------------------------------------------------------------
saved = {name: {"blocks": blocks_of(bpy.data.objects[name]), "built": bpy.data.objects[name].motiongpt_shot.built}
         for name in (shot_rig, walker)}
path = f"{out_dir}/shot.blend"
bpy.ops.wm.save_as_mainfile(filepath=path)
bpy.ops.wm.read_homefile(use_empty=True)
result["cleared"] = shot_rig not in bpy.data.objects
bpy.ops.wm.open_mainfile(filepath=path)
result["reloaded"] = {name: {"blocks": blocks_of(bpy.data.objects[name]),
                             "built": bpy.data.objects[name].motiongpt_shot.built} for name in (shot_rig, walker)}
result["saved"] = saved

print("RESULT-JSON:" + json.dumps(result))
