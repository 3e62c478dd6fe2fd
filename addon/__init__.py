"""MotionGPT for Blender: the extension's package root.

    preferences.py   server address, timeout, the local server to start; scene settings
    models.py        the preferences' Models box: installed models, downloading the release
    panel.py         the sidebar panel, server status, bone-map box
    operators.py     motiongpt.generate / inbetween / continue_motion / caption / export /
                     cancel / server_start / server_stop
    tasks.py         what each operator does: read the scene once (a snapshot), plan in
                     pure code (retarget/plan.py), write once
    actions.py       actions, slots, layers and channelbags, for every Blender version
    jobs.py          a server job on a worker thread; client.py its HTTP calls
    keys.py          bulk keyframe writing; rig.py reads armatures and their bone maps
    body.py          an SMPL body mesh in the scene
    server_process.py  starting and stopping a local model server
    shot.py          a shot's prompt blocks on the timeline, built into one action

The motion core (`retarget`, pure numpy) is copied into this package when the
extension is built (see harness/extension.py), so it is imported relatively and the
extension needs nothing outside its own folder.
"""

import bpy

from . import jobs, models, operators, panel, preferences, server_process, shot

_CLASSES = (preferences.MotionGPTPreferences, preferences.MotionGPTSettings, *operators.CLASSES, *models.CLASSES,
            *panel.CLASSES, *shot.CLASSES)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.motiongpt = bpy.props.PointerProperty(type=preferences.MotionGPTSettings)
    shot.register()
    if not bpy.app.background:
        bpy.app.timers.register(panel.poll_status, first_interval=0.5, persistent=True)


def unregister():
    if bpy.app.timers.is_registered(panel.poll_status):
        bpy.app.timers.unregister(panel.poll_status)
    job = jobs.current()
    if job is not None:
        job.cancel()
    if models.download["job"] is not None:
        models.download["job"].cancel()
    server_process.stop()
    shot.unregister()
    del bpy.types.Scene.motiongpt
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
