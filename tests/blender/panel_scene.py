"""Runs inside Blender (bpy): installs the built extension and draws its sidebar panel in
every state it has, reporting what each draw laid out.

    python -c "<harness.rigs.BUILD_CODE>$(cat panel_scene.py)" ZIP SERVER_URL RIG.json

Headless Blender has no UI toolkit, so the panel draws into RecordingLayout, a stand-in
for bpy.types.UILayout that checks every call against the real UILayout's RNA of the
Blender it runs in: the function exists in this version, its keywords are parameters,
its icons exist, every property drawn exists on its data, every operator exists and
the properties set on it are its own. Prints RESULT-JSON.
"""

import importlib
import json
import sys
from types import SimpleNamespace

import bpy

zip_path, server_url, rig_path = sys.argv[1:4]
result = {"version": bpy.app.version_string, "problems": [], "sub_panels": []}

UI_FUNCTIONS = bpy.types.UILayout.bl_rna.functions
UI_PROPERTIES = set(bpy.types.UILayout.bl_rna.properties.keys())
ICONS = set(UI_FUNCTIONS["label"].parameters["icon"].enum_items.keys())
RETURNS_LAYOUT = {"row", "column", "box", "split", "column_flow", "grid_flow", "menu_pie"}
DRAWS_PROPERTY = {"prop", "prop_search", "props_enum", "prop_enum", "prop_menu_enum", "prop_tabs_enum"}


def problem(text):
    result["problems"].append(text)


def operator_rna(idname):
    module, name = idname.split(".")
    try:
        return getattr(getattr(bpy.ops, module), name).get_rna_type()
    except (AttributeError, KeyError):
        return None


class OperatorPropertiesRecorder:
    """What row.operator() returns: the properties the panel sets on the button."""

    def __init__(self, idname, rna, record):
        object.__setattr__(self, "_idname", idname)
        object.__setattr__(self, "_rna", rna)
        object.__setattr__(self, "_record", record)

    def __setattr__(self, name, value):
        properties = self._rna.properties if self._rna is not None else {}
        if name not in properties:
            problem(f"{self._idname} has no property {name!r}")
        elif properties[name].type == "ENUM" and value not in properties[name].enum_items.keys():
            problem(f"{self._idname}.{name} has no item {value!r}")
        self._record.setdefault("set", {})[name] = value


class RecordingLayout:
    """Stand-in for bpy.types.UILayout (see the module docstring)."""

    def __init__(self, calls):
        object.__setattr__(self, "_calls", calls)

    def __getattr__(self, name):
        if name not in UI_FUNCTIONS:  # so hasattr(row, "progress") answers as this Blender's UILayout would
            raise AttributeError(name)
        return lambda *args, **kwargs: self._call(name, args, kwargs)

    def __setattr__(self, name, value):
        if name not in UI_PROPERTIES:
            problem(f"UILayout has no property {name!r}")

    def _call(self, name, args, kwargs):
        parameters = {p.identifier: p for p in UI_FUNCTIONS[name].parameters if not p.is_output}
        order = list(parameters)
        if len(args) > len(order):
            problem(f"{name}() takes {len(order)} positional arguments, got {len(args)}")
        bound = dict(zip(order, args))
        for key, value in kwargs.items():
            if key not in parameters:
                problem(f"{name}() has no parameter {key!r} in Blender {bpy.app.version_string}")
            bound[key] = value
        for key, parameter in parameters.items():
            if parameter.is_required and key not in bound:
                problem(f"{name}() needs {key!r}")
        if "icon" in bound and bound["icon"] not in ICONS:
            problem(f"{name}(): no icon {bound['icon']!r} in Blender {bpy.app.version_string}")
        record = {"call": name, **{k: bound[k] for k in ("text", "icon", "property", "placeholder") if k in bound}}
        if name in DRAWS_PROPERTY:
            data, prop = bound.get("data"), bound.get("property")
            if data is None or prop not in data.bl_rna.properties:
                problem(f"{name}(): {type(data).__name__} has no property {prop!r}")
            record["data"] = type(data).__name__
            if name == "prop_search" and bound.get("search_property") not in bound["search_data"].bl_rna.properties:
                problem(f"prop_search(): no search property {bound.get('search_property')!r}")
        if name == "progress":
            record["factor"] = bound.get("factor")
        self._calls.append(record)
        if name in RETURNS_LAYOUT:
            return RecordingLayout(self._calls)
        if name == "operator":
            rna = operator_rna(bound.get("operator", ""))
            if rna is None:
                problem(f"operator(): no operator {bound.get('operator')!r}")
            record["operator"] = bound.get("operator")
            return OperatorPropertiesRecorder(bound.get("operator"), rna, record)
        return None


bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
MODULE = "bl_ext.user_default.motiongpt"
panel = importlib.import_module(MODULE + ".panel")
jobs = importlib.import_module(MODULE + ".jobs")
prefs = bpy.context.preferences.addons[MODULE].preferences
settings = bpy.context.scene.motiongpt

obj = build_armature(json.load(open(rig_path)), name="Mixamo")  # from harness.rigs.BUILD_CODE, run before this
bpy.context.view_layer.objects.active = obj


def sub_panels():
    """The extension's panels inside the MotionGPT panel (their classes, as registered)."""
    return [cls for cls in bpy.types.Panel.__subclasses__()
            if cls.__module__.startswith(MODULE) and getattr(cls, "bl_parent_id", "") == "MOTIONGPT_PT_panel"]


def draw():
    """The panel's draw() as Blender calls it, with the stand-in layout, then each of its
    sub-panels that polls true; the calls made."""
    calls = []
    panel.MOTIONGPT_PT_panel.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    for cls in sub_panels():
        if not hasattr(cls, "poll") or cls.poll(bpy.context):
            calls.append({"call": "panel", "text": cls.bl_label})
            cls.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    return calls


def check(context=None):
    """One status check as the panel's timer starts it, waited for."""
    thread = panel.refresh_status(context)
    if thread is not None:
        thread.join()
    return {"thread": thread is not None, "state": panel.status["state"], "detail": panel.status["detail"]}


def call(operator, **kwargs):
    try:
        outcome = operator("EXEC_DEFAULT", **kwargs)
        return None if outcome == {"FINISHED"} else f"returned {sorted(outcome)}"
    except RuntimeError as error:
        return str(error)


result["sub_panels"] = sorted(cls.bl_label for cls in sub_panels())
states = result["states"] = {}
states["before_any_check"] = {"status": dict(panel.status), "calls": draw()}

prefs.server_url = "http://127.0.0.1:9"  # nothing listens on the discard port
states["server_down"] = {"status": check(), "calls": draw()}

# Blender's Allow Online Access off and a server that is not on loopback: the panel asks
# nothing (no thread), and the operators refuse the same address with the same client.
# (0.0.0.0 is not a loopback address, yet connecting to it stays on this machine.)
bpy.context.preferences.system.use_online_access = False
prefs.server_url = "http://0.0.0.0:9"
states["offline"] = {"status": check(), "calls": draw(), "online_access": bpy.app.online_access,
                     "generate": call(bpy.ops.motiongpt.generate, prompt="a person walks", seconds=1.0)}
bpy.context.preferences.system.use_online_access = True
states["online"] = {"online_access": bpy.app.online_access, "status": check()}  # asked now: nothing listens

prefs.server_url = server_url
states["ready"] = {"status": check(), "calls": draw()}

job = jobs.Job("Generate", lambda report_progress, should_cancel: None)
job._report(0.4)  # how far the server said it is
jobs.active["job"] = job
states["job_running"] = {"calls": draw()}
jobs.active["job"] = None

settings.last_caption = "a person waves with both hands"
states["caption_shown"] = {"calls": draw()}
settings.last_caption = ""

states["bone_map_detected"] = {"calls": draw()}
detected = panel.mapping_for_panel(obj)[0]
states["bone_map_detected"]["map"] = detected
bpy.ops.motiongpt.map_bone("EXEC_DEFAULT", joint="left_wrist", bone=detected["left_wrist"])
states["bone_map_stored"] = {"calls": draw(), "stored": bool(panel.BONE_MAP_PROPERTY in obj.data)}

stick_data = bpy.data.armatures.new("Stick")
stick = bpy.data.objects.new("Stick", stick_data)
bpy.context.scene.collection.objects.link(stick)
bpy.context.view_layer.objects.active = stick
bpy.ops.object.mode_set(mode="EDIT")
bone = stick_data.edit_bones.new("Bone")
bone.head, bone.tail = (0, 0, 0), (0, 0, 1)
bpy.ops.object.mode_set(mode="OBJECT")
states["bone_map_unmappable"] = {"calls": draw()}

bpy.context.view_layer.objects.active = None
states["no_armature"] = {"calls": draw()}

print("RESULT-JSON:" + json.dumps(result))
