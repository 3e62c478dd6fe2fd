"""Runs inside Blender (bpy): installs the built extension, then drives its operators
as a script would, against a real server, and reports what they did to the scene.

    python -c "<harness.rigs.BUILD_CODE>$(cat operators_scene.py)" ZIP SERVER_URL OUT_DIR RIG.json [STEPS]

RIG.json is a bone list (harness.rigs.to_json) or the string "metarig". STEPS is a
comma-separated subset of the steps below (default all). Prints RESULT-JSON.
"""

import importlib
import json
import os
import sys
import threading
import time
from types import SimpleNamespace

import bpy
import numpy as np

zip_path, server_url, out_dir, rig_path = sys.argv[1:5]
steps = set(sys.argv[5].split(",")) if len(sys.argv) > 5 else None
result = {"version": bpy.app.version_string}


def wanted(step):
    return steps is None or step in steps


bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
MODULE = "bl_ext.user_default.motiongpt"
jobs = importlib.import_module(MODULE + ".jobs")
tasks = importlib.import_module(MODULE + ".tasks")
operators = importlib.import_module(MODULE + ".operators")
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.server_url = server_url
prefs.request_timeout = 120.0

bpy.context.scene.render.fps = 24  # not the model's 20: every result is resampled
rig_spec = json.load(open(rig_path))
if rig_spec == "metarig":
    bpy.ops.preferences.addon_enable(module="rigify")
    bpy.ops.object.armature_human_metarig_add()
    obj = bpy.context.object
else:
    obj = build_armature(rig_spec, name="Mixamo")
bpy.ops.object.mode_set(mode="OBJECT")
obj.select_set(True)
bpy.context.view_layer.objects.active = obj
rig_name = obj.name
bpy.ops.ed.undo_push(message="rig")  # background mode starts with undo off until the first push


def rig():
    return bpy.data.objects[rig_name]


def curves(action):
    return tasks.object_fcurves(action, rig())


def keys_of(action):
    """{(data_path, index): [[frame, value, left x, left y, right x, right y], ...]}"""
    table = {}
    for curve in curves(action):
        n = len(curve.keyframe_points)
        values = {}
        for prop in ("co", "handle_left", "handle_right"):
            buffer = np.empty(2 * n, dtype=np.float32)
            curve.keyframe_points.foreach_get(prop, buffer)
            values[prop] = buffer.reshape(n, 2)
        table[f"{curve.data_path}[{curve.array_index}]"] = np.hstack(
            [values["co"], values["handle_left"], values["handle_right"]]).tolist()
    return table


def call(operator, *args, **kwargs):
    """Run an operator as a script does (with an undo step); the error text or None."""
    try:
        outcome = operator("EXEC_DEFAULT", True, *args, **kwargs)
        return None if outcome == {"FINISHED"} else f"returned {sorted(outcome)}"
    except RuntimeError as error:
        return str(error)


def scene_state():
    """Everything a failed operator must leave as it was."""
    anim = rig().animation_data
    return {
        "actions": sorted(a.name for a in bpy.data.actions),
        "active": anim.action.name if anim and anim.action else None,
        "keys": {a.name: keys_of(a) for a in bpy.data.actions if curves(a)},
        "frame_end": bpy.context.scene.frame_end,
        "nla_tracks": len(anim.nla_tracks) if anim else 0,
    }


if wanted("generate"):
    result["generate_error"] = call(bpy.ops.motiongpt.generate, prompt="a person walks forward", seconds=2.0,
                                    samples=2, seed=3)
    anim = rig().animation_data
    action = anim.action
    result["generate"] = {
        "actions": sorted(a.name for a in bpy.data.actions),
        "active": action.name,
        "fake_users": sorted(a.name for a in bpy.data.actions if a.use_fake_user),
        "prompt_property": action.get("motiongpt_prompt"),
        "keys": keys_of(action),
        "frame_end": bpy.context.scene.frame_end,
    }
    # The same seed again: the same keys (another action).
    call(bpy.ops.motiongpt.generate, prompt="a person walks forward", seconds=2.0, samples=1, seed=3)
    result["generate_again"] = {"active": rig().animation_data.action.name,
                                "keys": keys_of(rig().animation_data.action)}
    # Script values fall back to the panel's fields.
    bpy.context.scene.motiongpt.prompt = "a person jumps"
    bpy.context.scene.motiongpt.seconds = 1.0
    bpy.context.scene.frame_current = 11
    call(bpy.ops.motiongpt.generate)
    fallback = rig().animation_data.action
    first_frames = [c.keyframe_points[0].co[0] for c in curves(fallback)]
    result["generate_fallback"] = {"name": fallback.name, "first_frame": min(first_frames),
                                   "last_frame": max(c.keyframe_points[-1].co[0] for c in curves(fallback))}
    bpy.context.scene.frame_current = 1

if wanted("undo"):
    before = rig().animation_data.action.name if rig().animation_data and rig().animation_data.action else None
    call(bpy.ops.motiongpt.generate, prompt="a person waves", seconds=1.0, seed=1)
    after = rig().animation_data.action.name
    bpy.ops.ed.undo()
    anim = rig().animation_data
    result["undo"] = {"before": before, "after": after, "restored": anim.action.name if anim and anim.action else None,
                      "gone": after not in bpy.data.actions}

if wanted("inbetween"):
    bpy.context.scene.frame_current = 1  # undo may have brought back another current frame
    call(bpy.ops.motiongpt.generate, prompt="a person walks forward", seconds=3.0, seed=5)
    action = rig().animation_data.action
    for curve in curves(action):  # open a gap: frames 15..40 lose their keys
        for point in reversed([p for p in curve.keyframe_points if 15 <= p.co[0] <= 40]):
            curve.keyframe_points.remove(point)
        curve.update()
    bpy.ops.ed.undo_push(message="gap")
    before = keys_of(action)
    # The gap is found around the current frame (the keys at 14 and 41).
    bpy.context.scene.frame_current = 25
    error = call(bpy.ops.motiongpt.inbetween, seed=2)
    action = rig().animation_data.action
    result["inbetween"] = {"error": error, "name": action.name, "before": before, "after": keys_of(action)}
    # An explicit gap with a steering text, on a copy of the gapped state.
    bpy.ops.ed.undo()
    bpy.context.scene.frame_current = 1
    error = call(bpy.ops.motiongpt.inbetween, frame_start=14, frame_end=41, prompt="a person jumps", seed=2)
    result["inbetween_steered"] = {"error": error, "after": keys_of(rig().animation_data.action)}

if wanted("continue"):
    action = rig().animation_data.action
    before = keys_of(action)
    error = call(bpy.ops.motiongpt.continue_motion, seconds=1.0, seed=4)
    result["continue"] = {"error": error, "before": before, "after": keys_of(rig().animation_data.action),
                          "frame_end": bpy.context.scene.frame_end}

if wanted("caption"):
    error = call(bpy.ops.motiongpt.caption)
    action = rig().animation_data.action
    result["caption"] = {"error": error, "stored": action.get("motiongpt_caption"),
                         "panel": bpy.context.scene.motiongpt.last_caption}

if wanted("export"):
    result["export"] = {}
    for fmt, name in (("SMPL_BVH", "smpl.bvh"), ("SMPL_NPZ", "smpl.npz"), ("ARMATURE_BVH", "armature.bvh")):
        result["export"][fmt] = call(bpy.ops.motiongpt.export, filepath=f"{out_dir}/{name}", export_format=fmt)

if wanted("modal"):
    # The panel's path (invoke outside background mode): the job on a worker thread and a
    # window timer that calls modal() until the job is done. Headless Blender has no event
    # loop (and no event, so "INVOKE_DEFAULT" runs execute), so this drives modal() with the
    # timer's event itself; the operator is one registered here whose execute starts that
    # path (start_modal, what invoke calls with a UI) and keeps its instance.
    started = {}

    class MOTIONGPT_OT_generate_modal(operators.ServerJobOperator, bpy.types.Operator):
        """Generate through the panel's (modal) path"""

        bl_idname = "motiongpt_test.generate_modal"
        bl_label = "Generate (modal path)"

        def request(self, context):
            settings = context.scene.motiongpt
            return tasks.prepare_generate(context, started["prompt"], 1.0, 1, 3, settings.foot_lock, settings.push_to_nla)

        def execute(self, context):
            started["operator"] = self
            return self.start_modal(context)

    bpy.utils.register_class(MOTIONGPT_OT_generate_modal)
    timer_event = SimpleNamespace(type="TIMER")  # stand-in for the window manager's timer event

    def drive(prompt, while_running=None):
        started["prompt"] = prompt
        invoked = bpy.ops.motiongpt_test.generate_modal("EXEC_DEFAULT")
        operator = started["operator"]
        running = jobs.current() is operator._job
        if while_running is not None:
            while_running(operator._job)
        while (answer := operator.modal(bpy.context, timer_event)) == {"PASS_THROUGH"}:
            time.sleep(0.02)
        return {"invoked": sorted(invoked), "running_while_modal": running, "answer": sorted(answer),
                "job_cleared": jobs.current() is None}

    bpy.context.scene.frame_current = 1
    state = scene_state()
    modal = drive("a person walks forward", while_running=lambda job: job.cancel())
    modal["unchanged"] = scene_state() == state
    result["modal_cancel"] = modal
    modal = drive("a person walks forward")
    modal["active"] = rig().animation_data.action.name
    modal["keys"] = keys_of(rig().animation_data.action)
    call(bpy.ops.motiongpt.generate, prompt="a person walks forward", seconds=1.0, samples=1, seed=3)
    modal["synchronous_keys"] = keys_of(rig().animation_data.action)
    prefs.server_url = "http://127.0.0.1:9"
    state = scene_state()
    failed = drive("a person walks forward")
    failed["unchanged"] = scene_state() == state
    prefs.server_url = server_url
    result["modal"], result["modal_server_down"] = modal, failed

if wanted("failures"):
    failures = {}
    state = scene_state()
    # Server down.
    prefs.server_url = "http://127.0.0.1:9"
    failures["server_down"] = call(bpy.ops.motiongpt.generate, prompt="a person walks", seconds=1.0)
    failures["server_down_unchanged"] = scene_state() == state
    prefs.server_url = server_url
    # Cancel mid-job: a watcher cancels once the server reports progress.
    def cancel_when_running():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = jobs.current()
            if job is not None and job.progress > 0:
                job.cancel()
                return
            time.sleep(0.005)
    watcher = threading.Thread(target=cancel_when_running)
    watcher.start()
    failures["cancel"] = call(bpy.ops.motiongpt.generate, prompt="a person walks in a circle", seconds=20.0, samples=8)
    watcher.join()
    failures["cancel_unchanged"] = scene_state() == state
    # Bad input.
    failures["empty_prompt"] = call(bpy.ops.motiongpt.generate, prompt="   ")
    failures["gap_without_inside"] = call(bpy.ops.motiongpt.inbetween, frame_start=10, frame_end=11)
    # An armature that is not a human.
    data = bpy.data.armatures.new("Stick")
    stick = bpy.data.objects.new("Stick", data)
    bpy.context.scene.collection.objects.link(stick)
    bpy.context.view_layer.objects.active = stick
    bpy.ops.object.mode_set(mode="EDIT")
    bone = data.edit_bones.new("Bone")
    bone.head, bone.tail = (0, 0, 0), (0, 0, 1)
    bpy.ops.object.mode_set(mode="OBJECT")
    state = scene_state()
    failures["unmappable"] = call(bpy.ops.motiongpt.generate, prompt="a person walks", seconds=1.0)
    failures["unmappable_unchanged"] = scene_state() == state
    failures["poll_without_armature"] = None
    bpy.context.view_layer.objects.active = None
    failures["poll_without_armature"] = call(bpy.ops.motiongpt.generate, prompt="a person walks")
    bpy.context.view_layer.objects.active = rig()
    result["failures"] = failures

bpy.ops.wm.save_as_mainfile(filepath=f"{out_dir}/scene.blend")
print("RESULT-JSON:" + json.dumps(result), flush=True)
if wanted("modal"):
    # bpy 4.5's module deadlocks in its own exit handlers after a modal operator ran
    # (GlobalState's destructor waits on its delayed-close thread; seen with gdb), so
    # this process leaves without them; everything it reports is printed above.
    sys.stderr.flush()
    os._exit(0)
