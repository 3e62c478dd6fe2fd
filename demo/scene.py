"""The main job, as far as the project goes today.

There is no model yet, so nothing is generated from text. What runs is the motion
pipeline every generated motion will go through: a real HumanML3D clip (features, the
model's output format) is recovered to joints, solved to joint rotations, written as
BVH, SMPL npz and joints, and loaded into a headless Blender scene with Blender's own
BVH importer; the scene is saved as a .blend.

    .venv/bin/python demo/scene.py --out out/demo
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retarget.formats import read_motion, write_motion  # noqa: E402

# HumanML3D clip 012314, the sample the dataset publishes (MIT licence).
SAMPLE = REPO / "tests" / "data" / "hml3d_012314_features.npy"


def build_scene(bvh_path: Path, blend_path: Path, frames: int, fps: float) -> None:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = int(round(fps))
    # Blender's own importer: BVH Y up, -Z forward -> Blender Z up, -Y forward.
    bpy.ops.import_anim.bvh(filepath=str(bvh_path), axis_forward="-Z", axis_up="Y", global_scale=1.0,
                            frame_start=1, use_fps_scale=False, update_scene_fps=False,
                            update_scene_duration=True, rotate_mode="NATIVE")
    armature = next(o for o in scene.objects if o.type == "ARMATURE")
    armature.name = "SMPL-22"
    armature.data.display_type = "STICK"
    scene.frame_start, scene.frame_end = 1, frames

    camera_data = bpy.data.cameras.new("Camera")
    camera = bpy.data.objects.new("Camera", camera_data)
    scene.collection.objects.link(camera)
    camera.location = (4.5, -6.0, 2.2)
    camera.rotation_euler = (1.32, 0.0, 0.64)
    scene.camera = camera
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", type="SUN"))
    scene.collection.objects.link(sun)
    bpy.ops.mesh.primitive_plane_add(size=8.0)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/demo", help="output folder")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    motion = read_motion(SAMPLE, "hml3d")
    outputs = {fmt: out / name for fmt, name in
               (("bvh", "clip.bvh"), ("smpl", "clip_smpl.npz"), ("joints", "clip_joints.npy"))}
    for fmt, path in outputs.items():
        write_motion(motion, path, fmt)
    blend = out / "scene.blend"
    build_scene(outputs["bvh"], blend, motion.frames, motion.fps)

    print("Text-to-motion is not in this version yet: no model ships so far.")
    print(f"Converted HumanML3D clip 012314 ({motion.frames} frames at {motion.fps:g} fps) through the motion core:")
    for path in list(outputs.values()) + [blend]:
        print(f"  {path}")
    print("Open scene.blend in Blender 4.2+ and press play: the SMPL-22 armature carries the clip.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
