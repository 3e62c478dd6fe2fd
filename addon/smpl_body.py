"""An SMPL body in the Blender scene, driven by a motion: a mesh with the model's
shape and skin weights, parented to an armature with one bone per SMPL joint, the
motion retargeted onto that armature and keyed.

The model file is the user's own (SMPL is licensed separately); it is read with
numpy only (retarget/smpl_model.py), so nothing beyond Blender is needed. Blender skins
with the model's weights exactly as SMPL does; SMPL's pose correctives (posedirs)
are not applied here (`motiongpt convert --to smpl-mesh` includes them).
"""

import numpy as np

from .retarget.smpl_model import SMPL_JOINT_NAMES, body_bone_map, load_smpl_model, shaped
from .retarget.motion import Motion
from .retarget.transfer import pose_from_motion
from .keys import keyframe_pose
from .rig import rig_of, store_bone_map


def _to_blender(points):
    """SMPL's Y up, facing +Z -> Blender's Z up, facing -Y: (x, y, z) -> (x, -z, y)."""
    points = np.asarray(points, dtype=np.float64)
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def create_body(model_path, motion: Motion, betas=None, name: str = "SMPL body", foot_lock: bool = False,
                collection=None, frame_start: int = 1):
    """Build the body of shape `betas` performing `motion`; returns (armature, mesh).
    If anything fails, nothing is left in the file."""
    import bpy

    model = load_smpl_model(model_path)
    vertices, joints = shaped(model, betas)
    vertices, joints = _to_blender(vertices), _to_blender(joints)
    names = SMPL_JOINT_NAMES[: model.joint_count]
    collection = collection or bpy.context.scene.collection
    created = []
    try:
        data = bpy.data.armatures.new(name)
        armature = bpy.data.objects.new(name, data)
        created += [armature, data]
        collection.objects.link(armature)
        _build_bones(armature, joints, model.parents, names)

        mesh_data = bpy.data.meshes.new(f"{name} mesh")
        created.append(mesh_data)
        mesh_data.from_pydata(vertices.tolist(), [], model.faces.tolist())
        mesh_data.update()
        mesh = bpy.data.objects.new(f"{name} mesh", mesh_data)
        created.append(mesh)
        collection.objects.link(mesh)
        for joint, bone in enumerate(names):
            group = mesh.vertex_groups.new(name=bone)
            weights = model.weights[:, joint]
            # One call per distinct weight: far fewer calls than one per vertex.
            for value in np.unique(weights[weights > 0]):
                group.add(np.flatnonzero(weights == value).tolist(), float(value), "REPLACE")
        mesh.parent = armature
        modifier = mesh.modifiers.new("Armature", "ARMATURE")
        modifier.object = armature
        modifier.use_vertex_groups = True

        bone_map = body_bone_map()
        store_bone_map(armature, bone_map)
        pose = pose_from_motion(motion, rig_of(armature), bone_map, foot_lock=foot_lock)
        keyframe_pose(armature, pose, frame_start, action_name=f"{name} motion")
    except Exception:
        for block in reversed(created):
            collection_of = getattr(bpy.data, {"Object": "objects", "Armature": "armatures",
                                               "Mesh": "meshes"}[type(block).__name__], None)
            if collection_of is not None and block.name in collection_of:
                collection_of.remove(block)
        raise
    return armature, mesh


def _build_bones(armature, joints, parents, names):
    """One bone per joint, head on the joint, pointing at its (first) child; leaves
    continue their parent's direction. Rolls stay Blender's default: retargeting works
    with any rest orientation."""
    import bpy

    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        edit_bones = armature.data.edit_bones
        for joint, name in enumerate(names):
            bone = edit_bones.new(name)
            children = np.flatnonzero(parents == joint)
            head = joints[joint]
            if len(children):
                # The spine child for the pelvis and the chest (the first listed).
                tail = joints[children[0]]
            else:
                parent = parents[joint]
                tail = head + 0.5 * (head - joints[parent])
            if np.linalg.norm(tail - head) < 1e-4:
                tail = head + np.array([0.0, 0.0, 0.05])
            bone.head, bone.tail = head.tolist(), tail.tolist()
        for joint, name in enumerate(names):
            if parents[joint] >= 0:
                edit_bones[name].parent = edit_bones[names[parents[joint]]]
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous
