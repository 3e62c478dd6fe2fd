"""The extension's preferences (Edit > Preferences > Add-ons > MotionGPT) and the
per-scene settings the panel edits."""

import bpy

DEFAULT_SERVER_URL = "http://127.0.0.1:8765"

# The formats tasks.export_action writes. Here, with the settings that offer them, so the
# preferences (loaded first, and by anything that needs a setting) import no task code.
EXPORT_FORMATS = (
    ("SMPL_BVH", "BVH (SMPL skeleton)", "The motion on the SMPL-22 skeleton as BVH, Y up"),
    ("SMPL_NPZ", "SMPL parameters (npz)", "SMPL poses, translation and joints, as the research code reads them"),
    ("ARMATURE_BVH", "BVH (this armature)", "The armature's own bones, through Blender's BVH exporter"),
)


class MotionGPTPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    server_url: bpy.props.StringProperty(
        name="Server URL",
        description="Address of the MotionGPT model server; a local one keeps everything on this computer",
        default=DEFAULT_SERVER_URL,
    )
    request_timeout: bpy.props.FloatProperty(
        name="Request Timeout",
        description="Seconds to wait for the server to answer and to finish a job before giving up",
        default=30.0,
        min=1.0,
        soft_max=600.0,
        subtype="TIME_ABSOLUTE",
        unit="TIME_ABSOLUTE",
    )
    server_token: bpy.props.StringProperty(
        name="Token",
        description="Only for a server started with --token (needed when it listens beyond this computer)",
        subtype="PASSWORD",
    )
    auto_start: bpy.props.BoolProperty(
        name="Start a Local Server Automatically",
        description="When the server does not answer, start one with the program below and wait for it",
        default=False,
    )
    server_program: bpy.props.StringProperty(
        name="Server Program",
        description="The python (or the motiongpt command) of the environment MotionGPT is installed in, "
                    "e.g. the .venv/bin/python of the project's folder",
        subtype="FILE_PATH",
    )
    server_model: bpy.props.StringProperty(
        name="Model",
        description="The model to serve: a name from the Models list below, or a model directory; "
                    "empty: the embedded default model",
        subtype="DIR_PATH",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "server_url")
        layout.prop(self, "request_timeout")
        layout.prop(self, "server_token")
        box = layout.box()
        box.prop(self, "auto_start")
        box.prop(self, "server_program")
        box.prop(self, "server_model")
        # Imported here: models.py reads these preferences.
        from .models import draw_models

        draw_models(layout, self)


def preferences(context=None):
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences


class MotionGPTSettings(bpy.types.PropertyGroup):
    """What the panel's fields hold (scene.motiongpt); operators fall back to these."""

    prompt: bpy.props.StringProperty(
        name="Prompt", description="What the motion shows, e.g. \"a person walks forward, then waves\"")
    seconds: bpy.props.FloatProperty(
        name="Seconds", description="Length of a generated motion, or how much Continue adds",
        default=4.0, min=0.2, max=20.0, step=50, precision=1)
    samples: bpy.props.IntProperty(
        name="Samples", description="How many motions to generate (each its own action)", default=1, min=1, max=8)
    seed: bpy.props.IntProperty(
        name="Seed", description="Same seed, same motion", default=0, min=0)
    steer: bpy.props.StringProperty(
        name="Steer", description="Optional text that steers In-between and Continue")
    foot_lock: bpy.props.BoolProperty(
        name="Lock Feet", description="Hold planted feet still (removes foot sliding)", default=True)
    push_to_nla: bpy.props.BoolProperty(
        name="Push to NLA", description="Put a generated action on a new NLA track instead of leaving it active",
        default=False)
    export_format: bpy.props.EnumProperty(name="Format", items=EXPORT_FORMATS, default="SMPL_BVH")
    last_caption: bpy.props.StringProperty(name="Caption", description="The last caption the server wrote")
