"""MotionGPT for Blender: the extension's package root.

The motion core (`retarget`, pure numpy) is copied into this package when the
extension is built (see build.py), so it is imported relatively and the extension
needs nothing outside its own folder. The panel and operators that talk to the model
server come with later versions; for now the extension holds the preferences they use.
"""

import bpy

from . import retarget  # noqa: F401  (the motion core ships inside the extension)

DEFAULT_SERVER_URL = "http://127.0.0.1:8765"


class MotionGPTPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    server_url: bpy.props.StringProperty(
        name="Server URL",
        description="Address of the MotionGPT model server; a local one keeps everything on this computer",
        default=DEFAULT_SERVER_URL,
    )
    request_timeout: bpy.props.FloatProperty(
        name="Request Timeout",
        description="Seconds to wait for the server before giving up",
        default=30.0,
        min=1.0,
        soft_max=600.0,
        subtype="TIME_ABSOLUTE",
        unit="TIME_ABSOLUTE",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "server_url")
        layout.prop(self, "request_timeout")


_CLASSES = (MotionGPTPreferences,)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
