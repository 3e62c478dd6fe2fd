"""The sidebar panel (3D View > N > MotionGPT), the server status it shows, and the
bone-map box with its two small operators.

Drawing never waits on the network: a timer asks the server for /health on a worker
thread every few seconds and the panel shows the last answer.
"""

import threading

import bpy

from . import jobs, server_process
from .client import Client, ServerError
from .operators import server_client
from .preferences import preferences
from .retarget.mapping import MappingError
from .retarget.skeleton import JOINT_NAMES
from .rig import BONE_MAP_PROPERTY, bone_map_of, store_bone_map

STATUS_SECONDS = 3.0
STATUS_TIMEOUT = 2.0  # seconds a /health request may take; the answer is for a label
status = {"state": "unknown", "detail": "", "checking": False}
STATE_ICONS = {"ready": "CHECKMARK", "starting": "SORTTIME", "unreachable": "ERROR", "offline": "INTERNET_OFFLINE"}


def check_status(client: Client) -> None:
    """Ask the server for /health and keep the answer in `status` (worker thread, no bpy)."""
    try:
        health = client.health(timeout=STATUS_TIMEOUT)
        if health.get("ready"):
            status.update(state="ready", detail=str(health.get("model") or ""))
        else:
            status.update(state="starting", detail=str(health.get("error") or "loading the model"))
    except ServerError as error:
        starting = server_process.running()
        status.update(state="starting" if starting else "unreachable", detail="" if starting else str(error))
    finally:
        status["checking"] = False


def refresh_status(context=None):
    """Start a status check on a worker thread with the operators' client; returns the
    thread, or None when the client refuses the address (Blender's online access is off
    and the server is elsewhere: nothing is contacted) or a check is still running."""
    if status["checking"]:
        return None
    try:
        client = server_client(context)
    except ServerError as error:
        status.update(state="offline", detail=str(error))
        return None
    status["checking"] = True
    thread = threading.Thread(target=check_status, args=(client,), daemon=True)
    thread.start()
    return thread


def poll_status():
    """Timer: refresh the status in the background (never on the UI's time)."""
    try:
        preferences()
    except KeyError:  # the extension is being disabled
        return None
    refresh_status()
    return STATUS_SECONDS


# --- bone map ----------------------------------------------------------------------------

_map_cache = {}


def mapping_for_panel(obj):
    """(bone map, error) for drawing, cached per armature state so redraws stay cheap."""
    key = (obj.data.name_full, len(obj.data.bones), obj.data.get(BONE_MAP_PROPERTY))
    if key not in _map_cache:
        _map_cache.clear()
        try:
            _map_cache[key] = (bone_map_of(obj), "")
        except (MappingError, ValueError) as error:
            _map_cache[key] = ({}, str(error))
    return _map_cache[key]


class MOTIONGPT_OT_map_bone(bpy.types.Operator):
    """Choose which bone of the armature plays this joint of the human skeleton"""

    bl_idname = "motiongpt.map_bone"
    bl_label = "Map Bone"
    bl_options = {"REGISTER", "UNDO"}

    joint: bpy.props.EnumProperty(name="Joint", items=[(j, j.replace("_", " ").title(), "") for j in JOINT_NAMES])
    bone: bpy.props.StringProperty(name="Bone")

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE":
            cls.poll_message_set("Select an armature")
            return False
        return True

    def invoke(self, context, event):
        bone_map, _ = mapping_for_panel(context.active_object)
        self.bone = bone_map.get(self.joint, "")
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context):
        self.layout.prop(self, "joint")
        self.layout.prop_search(self, "bone", context.active_object.data, "bones")

    def execute(self, context):
        obj = context.active_object
        bone_map, error = mapping_for_panel(obj)
        if error:
            self.report({"ERROR"}, f"MotionGPT: the armature is not mapped yet: {error}")
            return {"CANCELLED"}
        try:
            store_bone_map(obj, dict(bone_map, **{self.joint: self.bone}))
        except (MappingError, ValueError) as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return {"CANCELLED"}
        return {"FINISHED"}


class MOTIONGPT_OT_bone_map_detect(bpy.types.Operator):
    """Forget the stored bone map and detect it again from the bone names and shape"""

    bl_idname = "motiongpt.bone_map_detect"
    bl_label = "Detect Again"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "ARMATURE" and BONE_MAP_PROPERTY in obj.data

    def execute(self, context):
        del context.active_object.data[BONE_MAP_PROPERTY]
        return {"FINISHED"}


# --- the panel ---------------------------------------------------------------------------

class MOTIONGPT_PT_panel(bpy.types.Panel):
    bl_label = "MotionGPT"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MotionGPT"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.motiongpt
        draw_server(layout)

        job = jobs.current()
        if job is not None:
            row = layout.row(align=True)
            text = f"{job.label}: {round(100 * job.progress)}%"
            if hasattr(row, "progress"):
                row.progress(factor=job.progress, type="BAR", text=text)
            else:
                row.label(text=text)
            row.operator("motiongpt.cancel", text="", icon="X")

        column = layout.column(align=True)
        column.prop(settings, "prompt", text="")
        row = column.row(align=True)
        row.prop(settings, "seconds")
        fps = context.scene.render.fps / context.scene.render.fps_base
        row.label(text=f"{round(settings.seconds * fps)} frames")
        row = column.row(align=True)
        row.prop(settings, "samples")
        row.prop(settings, "seed")
        row = layout.row(align=True)
        row.prop(settings, "foot_lock")
        row.prop(settings, "push_to_nla")
        layout.operator("motiongpt.generate", icon="PLAY")

        column = layout.column(align=True)
        column.prop(settings, "steer", text="", placeholder="Steer In-between / Continue (optional)")
        row = column.row(align=True)
        row.operator("motiongpt.inbetween", icon="IPO_EASE_IN_OUT")
        row.operator("motiongpt.continue_motion", icon="FF")

        layout.operator("motiongpt.caption", icon="TEXT")
        if settings.last_caption:
            layout.label(text=settings.last_caption, icon="INFO")

        row = layout.row(align=True)
        row.prop(settings, "export_format", text="")
        row.operator("motiongpt.export", icon="EXPORT")

        obj = context.active_object
        if obj is not None and obj.type == "ARMATURE":
            draw_bone_map(layout, obj)


def draw_server(layout):
    box = layout.box()
    row = box.row(align=True)
    state = status["state"]
    text = {"offline": "Server: not asked (online access is off)"}.get(state, f"Server: {state}")
    if state == "ready" and status["detail"]:
        text += f" ({status['detail']})"
    row.label(text=text, icon=STATE_ICONS.get(state, "QUESTION"))
    if server_process.running():
        row.operator("motiongpt.server_stop", text="", icon="CANCEL")
    elif state not in ("ready", "offline"):
        row.operator("motiongpt.server_start", text="Start", icon="PLAY")


def draw_bone_map(layout, obj):
    box = layout.box()
    header = box.row()
    stored = BONE_MAP_PROPERTY in obj.data
    header.label(text=f"Bone map of {obj.name} ({'stored' if stored else 'detected'})", icon="ARMATURE_DATA")
    if stored:
        header.operator("motiongpt.bone_map_detect", text="", icon="FILE_REFRESH")
    bone_map, error = mapping_for_panel(obj)
    if error:
        box.label(text=error, icon="ERROR")
        return
    column = box.column(align=True)
    for joint in JOINT_NAMES:
        row = column.row(align=True)
        row.label(text=joint.replace("_", " "))
        op = row.operator("motiongpt.map_bone", text=bone_map.get(joint, "—"), emboss=True)
        op.joint = joint


CLASSES = (MOTIONGPT_OT_map_bone, MOTIONGPT_OT_bone_map_detect, MOTIONGPT_PT_panel)

