"""A filmstrip of an animated armature, rendered headless with Workbench (bpy).

Workbench draws meshes, not bones, so the armature gets a simple figure first: one
tapered eight-sided tube per mapped bone, in one mesh whose vertex groups follow the
bones through an Armature modifier. Each panel is rendered with the camera centred on
the figure at that frame, and the panels are joined side by side into one PNG.
"""

import tempfile
from pathlib import Path

import bpy
import numpy as np

SIDES = 8


def _tube(head, tail, radius_head, radius_tail):
    """Vertices (2 * SIDES, 3) and quad faces of a tube from head to tail, capped."""
    axis = tail - head
    length = np.linalg.norm(axis)
    direction = axis / max(length, 1e-9)
    helper = np.array([0.0, 0.0, 1.0]) if abs(direction[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u)
    v = np.cross(direction, u)
    angles = np.linspace(0, 2 * np.pi, SIDES, endpoint=False)
    ring = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v
    vertices = np.concatenate([head + radius_head * ring, tail + radius_tail * ring])
    sides = [(i, (i + 1) % SIDES, SIDES + (i + 1) % SIDES, SIDES + i) for i in range(SIDES)]
    caps = [tuple(range(SIDES - 1, -1, -1)), tuple(range(SIDES, 2 * SIDES))]
    return vertices, sides + caps


def add_figure(obj, bone_names, radius=0.045):
    """A mesh figure skinned rigidly to `bone_names` of armature `obj`; returns it."""
    data = obj.data
    vertices, faces, groups = [], [], []
    for name in bone_names:
        bone = data.bones[name]
        head, tail = np.array(bone.head_local), np.array(bone.tail_local)
        length = np.linalg.norm(tail - head)
        r = min(radius, 0.35 * length) if length > 0 else radius
        tube, quads = _tube(head, tail, r, 0.75 * r)
        offset = len(vertices) * 2 * SIDES
        vertices.append(tube)
        faces += [tuple(offset + i for i in quad) for quad in quads]
        groups.append(name)
    mesh = bpy.data.meshes.new(f"{obj.name} figure")
    points = np.concatenate(vertices)
    mesh.from_pydata(points.tolist(), [], faces)
    mesh.update()
    figure = bpy.data.objects.new(f"{obj.name} figure", mesh)
    bpy.context.scene.collection.objects.link(figure)
    figure.matrix_world = obj.matrix_world
    for k, name in enumerate(groups):
        group = figure.vertex_groups.new(name=name)
        group.add(list(range(k * 2 * SIDES, (k + 1) * 2 * SIDES)), 1.0, "REPLACE")
    modifier = figure.modifiers.new("Armature", "ARMATURE")
    modifier.object = obj
    figure.parent = obj
    figure.matrix_parent_inverse = obj.matrix_world.inverted()
    return figure


def _camera(scene):
    camera = scene.camera
    if camera is None:
        camera = bpy.data.objects.new("Filmstrip camera", bpy.data.cameras.new("Filmstrip camera"))
        scene.collection.objects.link(camera)
        scene.camera = camera
    camera.data.type = "ORTHO"
    camera.data.ortho_scale = 2.6
    return camera


def render_filmstrip(obj, centre_bone: str, frames, path, panel=(220, 300)) -> Path:
    """Render `frames` of the scene and join them into one PNG at `path`; the camera
    looks at `centre_bone` of `obj` from the front-right in every panel."""
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "SINGLE"
    scene.display.shading.single_color = (0.8, 0.55, 0.35)
    scene.display.shading.show_shadows = True
    scene.display.shading.show_cavity = True
    scene.render.resolution_x, scene.render.resolution_y = panel
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.render.image_settings.file_format = "PNG"
    camera = _camera(scene)
    saved_frame = scene.frame_current
    panels = []
    with tempfile.TemporaryDirectory() as folder:
        for k, frame in enumerate(frames):
            scene.frame_set(int(frame))
            target = obj.matrix_world @ obj.pose.bones[centre_bone].head
            target.z = max(target.z, 0.0) * 0.5 + 0.55
            camera.location = (target.x + 3.5, target.y - 6.0, target.z + 0.6)
            direction = target - camera.location
            camera.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
            scene.render.filepath = str(Path(folder) / f"panel{k}.png")
            bpy.ops.render.render(write_still=True)
            image = bpy.data.images.load(scene.render.filepath)
            pixels = np.empty(len(image.pixels), dtype=np.float32)
            image.pixels.foreach_get(pixels)
            panels.append(pixels.reshape(image.size[1], image.size[0], 4))
            bpy.data.images.remove(image)
    scene.frame_set(saved_frame)
    gap = np.ones((panel[1], 4, 4), dtype=np.float32)
    strip = np.concatenate([p if i == 0 else np.concatenate([gap, p], axis=1) for i, p in enumerate(panels)], axis=1)
    height, width = strip.shape[:2]
    image = bpy.data.images.new("filmstrip", width, height, alpha=True)
    image.pixels.foreach_set(strip.ravel())
    image.filepath_raw = str(path)
    image.file_format = "PNG"
    image.save()
    bpy.data.images.remove(image)
    return Path(path)
