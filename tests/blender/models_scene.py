"""Runs inside Blender (bpy), after panel_scene.py's stand-in layout (RecordingLayout):
installs the built extension and goes through the preferences' Models box: listing the
models the server program has, the licence, a download cancelled and continued, choosing
a model, and the server this Blender started restarting with it. Prints RESULT-JSON.

    python -c "<panel_scene.py up to its install step>$(cat models_scene.py)" ZIP URL - PROGRAM

MOTIONGPT_HOME and HF_ENDPOINT come from the environment (a stand-in hub's address).
"""

import os
import time

# zip_path, server_url, result, RecordingLayout, sys, json, importlib and bpy come from panel_scene.py's part.
program = sys.argv[4]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
MODULE = "bl_ext.user_default.motiongpt"
models = importlib.import_module(MODULE + ".models")
server_process = importlib.import_module(MODULE + ".server_process")
jobs = importlib.import_module(MODULE + ".jobs")
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.server_program = program
prefs.server_url = server_url


class PreferencesDrawn:
    """The preferences as their draw() sees them, drawing into the stand-in layout."""

    def __init__(self, layout):
        self.layout = layout

    def __getattr__(self, name):
        return getattr(prefs, name)


def draw():
    calls = []
    type(prefs).draw(PreferencesDrawn(RecordingLayout(calls)), bpy.context)
    return calls


def call(operator, **kwargs):
    try:
        outcome = operator("EXEC_DEFAULT", **kwargs)
        return None if outcome == {"FINISHED"} else f"returned {sorted(outcome)}"
    except RuntimeError as error:
        return str(error)


def on_disk(folder):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder) for f in files)


def health():
    return server_process.wait_until_ready(importlib.import_module(MODULE + ".operators").server_client())


states = result["states"] = {}
states["before_refresh"] = {"calls": draw()}
states["refreshed"] = {"error": call(bpy.ops.motiongpt.models_refresh), "catalog": dict(models.catalog),
                       "calls": draw()}
states["licence"] = server_process.model_licence(program, "motiongpt-release")
# The button's dialog: this Blender's invoke_props_dialog takes the title and button text
# the operator gives it, and the licence draws as labels.
dialog = bpy.types.WindowManager.bl_rna.functions["invoke_props_dialog"].parameters.keys()
licence_calls = []
models.MOTIONGPT_OT_model_download.draw(SimpleNamespace(layout=RecordingLayout(licence_calls),
                                                        licence=states["licence"]), bpy.context)
states["dialog"] = {"parameters": list(dialog), "calls": licence_calls}
states["not_accepted"] = call(bpy.ops.motiongpt.model_download, name="motiongpt-release")
bpy.context.preferences.system.use_online_access = False
states["offline"] = call(bpy.ops.motiongpt.model_download, name="motiongpt-release", accept_licence=True)
bpy.context.preferences.system.use_online_access = True

# The panel's path without its timer: the download on a worker thread, cancelled once
# some of it has arrived (the stand-in hub sends the checkpoint slowly this once).
job = jobs.Job("download", lambda report, cancel: server_process.download_model(program, "motiongpt-release", report, cancel))
models.download.update(job=job, name="motiongpt-release")
job.start()
deadline = time.monotonic() + 300
while job.progress == 0.0 and not job.done and time.monotonic() < deadline:
    time.sleep(0.2)
downloading = {"progress": job.progress, "calls": draw(),
               "download_poll": bpy.ops.motiongpt.model_download.poll()}
job.cancel()
job.wait(60)
downloading.update(done=job.done, cancelled=job.cancelled, error=str(job.error) if job.error else None,
                   kept_bytes=on_disk(os.path.join(os.environ["MOTIONGPT_HOME"], "downloads")))
states["cancelled"] = downloading
models.download.update(job=None, name="")

states["downloaded"] = {"error": call(bpy.ops.motiongpt.model_download, name="motiongpt-release", accept_licence=True),
                        "catalog": dict(models.catalog), "calls": draw()}

# Choosing a model: with no server running, the preference changes; with the server this
# Blender started, the server restarts with the chosen model.
states["chosen"] = {"error": call(bpy.ops.motiongpt.model_use, name="small-test"), "server_model": prefs.server_model,
                    "command": server_process.server_command(program, server_url, prefs.server_model)}
states["started"] = {"error": call(bpy.ops.motiongpt.server_start), "model": health().get("model"),
                     "pid": server_process._started["process"].pid}
states["switched"] = {"error": call(bpy.ops.motiongpt.model_use, name="motiongpt-release"), "model": health().get("model"),
                      "pid": server_process._started["process"].pid, "server_model": prefs.server_model}
states["stopped"] = call(bpy.ops.motiongpt.server_stop)

print("RESULT-JSON:" + json.dumps(result))
