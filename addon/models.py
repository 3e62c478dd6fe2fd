"""The preferences' Models box: the models the server program has, downloading
MotionGPT's release (licence first, progress and cancel while Blender stays usable),
and choosing the model the server serves.

Everything runs the environment's own `motiongpt` command (server_process.py): the
list is `motiongpt models --json`, the licence is the text `motiongpt download` shows,
and the download is that command in a subprocess, followed through its progress lines.
"""

import bpy

from . import jobs, server_process
from .client import ServerError
from .preferences import preferences

# What `motiongpt models --json` said last ({} until asked), or why it could not be asked.
catalog = {"models": {}, "error": ""}
# The download running, a jobs.Job (its own slot: generating goes on while it downloads).
download = {"job": None, "name": ""}


def refresh(context=None) -> dict:
    try:
        catalog.update(models=server_process.list_models(preferences(context).server_program), error="")
    except ServerError as error:
        catalog.update(models={}, error=str(error))
    return catalog


def _redraw_preferences(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()


class MOTIONGPT_OT_models_refresh(bpy.types.Operator):
    """List the models the server program has installed (motiongpt models)"""

    bl_idname = "motiongpt.models_refresh"
    bl_label = "Refresh Models"

    def execute(self, context):
        refresh(context)
        if catalog["error"]:
            self.report({"ERROR"}, f"MotionGPT: {catalog['error']}")
            return {"CANCELLED"}
        return {"FINISHED"}


class MOTIONGPT_OT_model_use(bpy.types.Operator):
    """Serve this model; a server this Blender started restarts with it"""

    bl_idname = "motiongpt.model_use"
    bl_label = "Use Model"

    name: bpy.props.StringProperty(name="Model", description="A name from the model list, or a model directory")

    def execute(self, context):
        prefs = preferences(context)
        prefs.server_model = "" if self.name == "motiongpt-default" else self.name
        try:
            restarted = server_process.restart(prefs.server_program, prefs.server_url, prefs.server_model)
            if restarted and bpy.app.background:  # scripts go on once the new model answers
                from .operators import server_client

                server_process.wait_until_ready(server_client(context))
        except ServerError as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return {"CANCELLED"}
        what = "restarted the server with" if restarted else "the server will serve"
        self.report({"INFO"}, f"MotionGPT: {what} {self.name}")
        return {"FINISHED"}


class MOTIONGPT_OT_model_download(bpy.types.Operator):
    """Download a released model (its licence is shown first) and install it for the server program"""

    bl_idname = "motiongpt.model_download"
    bl_label = "Download Model"

    name: bpy.props.StringProperty(name="Model", default="motiongpt-release")
    accept_licence: bpy.props.BoolProperty(
        name="Accept the Licence", description="Scripts: accept the licence `motiongpt download NAME` shows",
        default=False, options={"SKIP_SAVE"})
    licence: bpy.props.StringProperty(options={"HIDDEN", "SKIP_SAVE"})

    _timer = None

    @classmethod
    def poll(cls, context):
        if download["job"] is not None:
            cls.poll_message_set("A download is running")
            return False
        return True

    def invoke(self, context, event):
        try:
            self.licence = server_process.model_licence(preferences(context).server_program, self.name)
        except ServerError as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return {"CANCELLED"}
        return context.window_manager.invoke_props_dialog(self, width=640, title=f"Download {self.name}",
                                                          confirm_text="Accept the Licence and Download")

    def draw(self, context):
        column = self.layout.column(align=True)
        for line in self.licence.splitlines():
            column.label(text=line)

    def execute(self, context):
        if not (self.accept_licence or self.licence):
            self.report({"ERROR"}, f"MotionGPT: read the licence (`motiongpt download {self.name}`) and call with "
                                   "accept_licence=True, or use the button in the preferences")
            return {"CANCELLED"}
        if not getattr(bpy.app, "online_access", True):
            self.report({"ERROR"}, "MotionGPT: Blender's Allow Online Access is off (Preferences > System > Network); "
                                   "turn it on to download, or run `motiongpt download` in a terminal")
            return {"CANCELLED"}
        program, name = preferences(context).server_program, self.name
        job = jobs.Job(f"download {name}", lambda report, cancel: server_process.download_model(program, name, report, cancel))
        download.update(job=job, name=name)
        if bpy.app.background:  # no timers there: run to the end
            job.run_here()
            return self._finish(context)
        job.start()
        self._timer = context.window_manager.event_timer_add(0.25, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "TIMER":
            _redraw_preferences(context)
            if download["job"].done:
                context.window_manager.event_timer_remove(self._timer)
                return self._finish(context)
        return {"PASS_THROUGH"}

    def _finish(self, context):
        job = download["job"]
        download.update(job=None, name="")
        refresh(context)
        _redraw_preferences(context)
        if job.cancelled:
            self.report({"WARNING"}, f"MotionGPT: download of {self.name} cancelled; downloading again continues it")
            return {"CANCELLED"}
        if job.error is not None:
            self.report({"ERROR"}, f"MotionGPT: {job.error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"MotionGPT: {job.result}")
        return {"FINISHED"}


class MOTIONGPT_OT_model_download_cancel(bpy.types.Operator):
    """Stop the download (what has arrived is kept: downloading again continues it)"""

    bl_idname = "motiongpt.model_download_cancel"
    bl_label = "Cancel Download"

    @classmethod
    def poll(cls, context):
        return download["job"] is not None

    def execute(self, context):
        download["job"].cancel()
        return {"FINISHED"}


def draw_models(layout, prefs) -> None:
    """The Models box of the preferences."""
    box = layout.box()
    row = box.row()
    row.label(text="Models", icon="ARMATURE_DATA")
    row.operator(MOTIONGPT_OT_models_refresh.bl_idname, text="", icon="FILE_REFRESH")
    if catalog["error"]:
        box.label(text=catalog["error"], icon="ERROR")
    models = catalog["models"]
    if not models and not catalog["error"]:
        box.label(text="Refresh to list the models the server program has")
    serving = prefs.server_model or "motiongpt-default"
    for model in models.get("installed", ()):
        row = box.row()
        row.label(text=model["name"], icon="CHECKMARK" if model["name"] == serving else "BLANK1")
        row.label(text=f"{model['size'] / 1e6:.0f} MB")
        row.label(text=model["origin"])
        use = row.operator(MOTIONGPT_OT_model_use.bl_idname, text="Use")
        use.name = model["name"]
    job = download["job"]
    if job is not None:
        row = box.row()
        row.progress(factor=job.progress, text=f"Downloading {download['name']}: {job.progress:.0%}")
        row.operator(MOTIONGPT_OT_model_download_cancel.bl_idname, text="", icon="X")
    for model in models.get("downloadable", ()):
        row = box.row()
        row.label(text=f"{model['name']}: {model['description']}")
        button = row.operator(MOTIONGPT_OT_model_download.bl_idname, text="Download MotionGPT release"
                              if model["name"] == "motiongpt-release" else "Download", icon="IMPORT")
        button.name = model["name"]


CLASSES = (MOTIONGPT_OT_models_refresh, MOTIONGPT_OT_model_use, MOTIONGPT_OT_model_download,
           MOTIONGPT_OT_model_download_cancel)
