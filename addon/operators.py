"""The operators behind the panel's buttons; scripts call them too:

    bpy.ops.motiongpt.generate(prompt="a person jumps", seconds=3, samples=2, seed=7)

Properties a call leaves out come from the panel (scene.motiongpt). From the panel
(invoke) a job runs on a worker thread while a modal timer keeps the UI live and
writes the result on the main thread; called from a script, or in background mode
where timers do not run, the operator runs to completion before it returns. Either
way one call is one undo step, and a failed or cancelled call changes nothing.
"""

import bpy

from . import jobs, server_process
from .client import Client, ServerError, Unreachable
from .preferences import EXPORT_FORMATS, preferences
from .tasks import export_action, prepare_caption, prepare_continue, prepare_generate, prepare_inbetween


def server_client(context=None) -> Client:
    """The client for the server the preferences name. The operators and the panel's
    status both use this one, so both follow the same address, token and Blender's
    Allow Online Access setting (a server on this computer needs no online access)."""
    prefs = preferences(context)
    return Client(prefs.server_url, prefs.request_timeout, prefs.server_token,
                  online_access=getattr(bpy.app, "online_access", True))


def _armature_with_action(cls, context, need_action: bool) -> bool:
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        cls.poll_message_set("Select an armature")
        return False
    if need_action and (obj.animation_data is None or obj.animation_data.action is None):
        cls.poll_message_set(f"{obj.name} has no active action")
        return False
    if jobs.current() is not None:
        cls.poll_message_set("A MotionGPT job is running")
        return False
    return True


def _redraw(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "STATUSBAR"}:
                area.tag_redraw()


class ServerJobOperator:
    """Shared by the operators that ask the server: subclasses give `request`."""

    bl_options = {"UNDO"}
    _timer = None
    _job = None
    _request = None

    def request(self, context):
        raise NotImplementedError

    def _settings(self, context, name):
        """The operator's property if the caller set it, else the panel's field."""
        if self.properties.is_property_set(name):
            return getattr(self, name)
        return getattr(context.scene.motiongpt, name)

    def _begin(self, context):
        if jobs.current() is not None:
            self.report({"ERROR"}, "MotionGPT: another job is running; wait for it or cancel it")
            return False
        try:
            self._request = self.request(context)
            client = server_client(context)
        except (ValueError, ServerError) as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return False
        prefs = preferences(context)
        auto = (prefs.auto_start, prefs.server_program, prefs.server_model, prefs.server_url)
        request = self._request

        # A request that needs several server jobs (a shot's blocks) brings its own
        # run(client, report_progress, should_cancel); the others are one job.
        run = getattr(request, "run", None) or (lambda c, p, s: c.run(request.task, request.body, p, s))

        def work(report_progress, should_cancel):
            try:
                return run(client, report_progress, should_cancel)
            except Unreachable:
                if not auto[0]:
                    raise
                server_process.start(auto[1], auto[3], auto[2])
                server_process.wait_until_ready(client, should_cancel=should_cancel)
                return run(client, report_progress, should_cancel)

        self._job = jobs.Job(request.label, work)
        jobs.active["job"] = self._job
        return True

    def _finish(self, context):
        job, request = self._job, self._request
        jobs.active["job"] = None
        if job.cancelled or job.cancel_requested:
            self.report({"WARNING"}, f"MotionGPT: {request.label} cancelled; nothing was changed")
            return {"CANCELLED"}
        if job.error is not None:
            self.report({"ERROR"}, f"MotionGPT: {job.error}")
            return {"CANCELLED"}
        try:
            message = request.apply(job.result)
        except Exception as error:  # apply leaves the scene as it was; say why it failed
            self.report({"ERROR"}, f"MotionGPT: {request.label} failed, nothing was changed: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"MotionGPT: {message}")
        return {"FINISHED"}

    def execute(self, context):
        if not self._begin(context):
            return {"CANCELLED"}
        self._job.run_here()
        return self._finish(context)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        return self.start_modal(context)

    def start_modal(self, context):
        """The panel's path: the job runs on a worker thread and a window timer calls
        modal(), which writes the result on the main thread once the job is done."""
        if not self._begin(context):
            return {"CANCELLED"}
        self._job.start()
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "TIMER":
            _redraw(context)
            if self._job.done:
                context.window_manager.event_timer_remove(self._timer)
                return self._finish(context)
        return {"PASS_THROUGH"}


class MOTIONGPT_OT_generate(ServerJobOperator, bpy.types.Operator):
    """Generate a motion from the prompt and key it on the selected armature as a new action"""

    bl_idname = "motiongpt.generate"
    bl_label = "Generate"

    prompt: bpy.props.StringProperty(name="Prompt")
    seconds: bpy.props.FloatProperty(name="Seconds", default=4.0, min=0.2, max=20.0)
    samples: bpy.props.IntProperty(name="Samples", default=1, min=1, max=8)
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)

    @classmethod
    def poll(cls, context):
        return _armature_with_action(cls, context, need_action=False)

    def request(self, context):
        settings = context.scene.motiongpt
        return prepare_generate(context, self._settings(context, "prompt"), self._settings(context, "seconds"),
                                self._settings(context, "samples"), self._settings(context, "seed"),
                                settings.foot_lock, settings.push_to_nla)


class MOTIONGPT_OT_inbetween(ServerJobOperator, bpy.types.Operator):
    """Fill the gap between two keyed poses (the preview range, or the keys around the current frame)"""

    bl_idname = "motiongpt.inbetween"
    bl_label = "In-between"

    frame_start: bpy.props.IntProperty(name="Gap Start", description="Keyed frame before the gap")
    frame_end: bpy.props.IntProperty(name="Gap End", description="Keyed frame after the gap")
    prompt: bpy.props.StringProperty(name="Steer", description="Optional text that steers the fill")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)

    @classmethod
    def poll(cls, context):
        return _armature_with_action(cls, context, need_action=True)

    def request(self, context):
        settings = context.scene.motiongpt
        given = self.properties.is_property_set("frame_start") and self.properties.is_property_set("frame_end")
        prompt = self.prompt if self.properties.is_property_set("prompt") else settings.steer
        return prepare_inbetween(context, self.frame_start if given else None, self.frame_end if given else None,
                                 prompt, self._settings(context, "seed"), settings.foot_lock)


class MOTIONGPT_OT_continue_motion(ServerJobOperator, bpy.types.Operator):
    """Extend the active action past its last key"""

    bl_idname = "motiongpt.continue_motion"
    bl_label = "Continue"

    seconds: bpy.props.FloatProperty(name="Seconds", default=4.0, min=0.2, max=20.0)
    prompt: bpy.props.StringProperty(name="Steer", description="Optional text that steers the continuation")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)

    @classmethod
    def poll(cls, context):
        return _armature_with_action(cls, context, need_action=True)

    def request(self, context):
        settings = context.scene.motiongpt
        prompt = self.prompt if self.properties.is_property_set("prompt") else settings.steer
        return prepare_continue(context, self._settings(context, "seconds"), prompt,
                                self._settings(context, "seed"), settings.foot_lock)


class MOTIONGPT_OT_caption(ServerJobOperator, bpy.types.Operator):
    """Describe the active action in words; the caption is stored on the action (motiongpt_caption)"""

    bl_idname = "motiongpt.caption"
    bl_label = "Caption"

    @classmethod
    def poll(cls, context):
        return _armature_with_action(cls, context, need_action=True)

    def request(self, context):
        return prepare_caption(context)


class MOTIONGPT_OT_export(bpy.types.Operator):
    """Export the active action as BVH (SMPL skeleton or this armature) or SMPL parameters (npz)"""

    bl_idname = "motiongpt.export"
    bl_label = "Export"

    filepath: bpy.props.StringProperty(name="File Path", subtype="FILE_PATH")
    export_format: bpy.props.EnumProperty(name="Format", items=EXPORT_FORMATS, default="SMPL_BVH")
    filter_glob: bpy.props.StringProperty(default="*.bvh;*.npz", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return _armature_with_action(cls, context, need_action=True)

    def _format(self, context):
        if self.properties.is_property_set("export_format"):
            return self.export_format
        return context.scene.motiongpt.export_format

    def invoke(self, context, event):
        self.export_format = self._format(context)
        if not self.filepath:
            action = context.active_object.animation_data.action
            self.filepath = bpy.path.clean_name(action.name) + (".npz" if self.export_format == "SMPL_NPZ" else ".bvh")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        if not self.filepath:
            self.report({"ERROR"}, "MotionGPT: give a file path to export to")
            return {"CANCELLED"}
        export_format = self._format(context)
        path = bpy.path.ensure_ext(bpy.path.abspath(self.filepath), ".npz" if export_format == "SMPL_NPZ" else ".bvh")
        try:
            message = export_action(context, path, export_format)
        except (ValueError, OSError, RuntimeError) as error:
            self.report({"ERROR"}, f"MotionGPT: export failed: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"MotionGPT: {message}")
        return {"FINISHED"}


class MOTIONGPT_OT_cancel(bpy.types.Operator):
    """Cancel the running MotionGPT job; nothing it would have written is written"""

    bl_idname = "motiongpt.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        if jobs.current() is None:
            cls.poll_message_set("No MotionGPT job is running")
            return False
        return True

    def execute(self, context):
        jobs.current().cancel()
        return {"FINISHED"}


class MOTIONGPT_OT_server_start(bpy.types.Operator):
    """Start a MotionGPT server on this computer with the program set in the preferences"""

    bl_idname = "motiongpt.server_start"
    bl_label = "Start Server"

    @classmethod
    def poll(cls, context):
        if server_process.running():
            cls.poll_message_set("The server this Blender started is running")
            return False
        return True

    def execute(self, context):
        prefs = preferences(context)
        try:
            client = server_client(context)
            server_process.start(prefs.server_program, prefs.server_url, prefs.server_model)
            if bpy.app.background:  # scripts go on only once the server can answer
                health = server_process.wait_until_ready(client)
                self.report({"INFO"}, f"MotionGPT: server ready with model {health.get('model')}")
        except ServerError as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return {"CANCELLED"}
        return {"FINISHED"}


class MOTIONGPT_OT_server_stop(bpy.types.Operator):
    """Stop the MotionGPT server this Blender started"""

    bl_idname = "motiongpt.server_stop"
    bl_label = "Stop Server"

    @classmethod
    def poll(cls, context):
        if not server_process.running():
            cls.poll_message_set("This Blender started no server")
            return False
        return True

    def execute(self, context):
        server_process.stop()
        return {"FINISHED"}


CLASSES = (
    MOTIONGPT_OT_generate,
    MOTIONGPT_OT_inbetween,
    MOTIONGPT_OT_continue_motion,
    MOTIONGPT_OT_caption,
    MOTIONGPT_OT_export,
    MOTIONGPT_OT_cancel,
    MOTIONGPT_OT_server_start,
    MOTIONGPT_OT_server_stop,
)
