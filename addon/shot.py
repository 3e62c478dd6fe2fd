"""Directing a shot: prompt blocks over an armature's timeline, built into one action.

A block says what the body does over a frame range: "walks to the chair" on frames
1..72, "sits down" on 80..130. The blocks live on the armature object
(`obj.motiongpt_shot.blocks`, saved with the .blend), show in the sidebar's Shot
panel and over the timeline and dope sheet, and are edited by the operators below,
which scripts call too:

    bpy.ops.motiongpt.shot_block_add(text="a person walks forward", start=1, length=72, seed=3)
    bpy.ops.motiongpt.shot_block_edit(block_id=block_id, text="a person runs forward")
    bpy.ops.motiongpt.shot_block_move(block_id=block_id, direction="EARLIER")
    bpy.ops.motiongpt.shot_block_remove(block_id=block_id)
    bpy.ops.motiongpt.shot_build()                      # every block, into one action
    bpy.ops.motiongpt.shot_build_block(block_id=block_id)  # one block and its two joins

Build asks the server for every block (a motion from its text, or continued from the
block before), places each where the one before ends (or on its path curve), fills
the gaps between blocks by in-betweening, locks the feet and writes the shot into the
armature's action in one undo step: the frames from the first block's start to the
last block's end are replaced, every key outside them keeps every float. The plan
(placement, stitching, joins, path following) is pure code in retarget/shot.py and
retarget/path.py; this module reads the scene, runs the server jobs and writes.
"""

import json
import uuid
from dataclasses import dataclass

import bpy
import numpy as np

from . import jobs
from .actions import edit_through_copy
from .keys import keyframe_pose, replace_keys
from .operators import ServerJobOperator
from .retarget import shot as shotplan
from .retarget.contract import MODEL_FPS, WIRE_FORMAT
from .retarget.formats.wire import motion_from_wire
from .retarget.motion import Motion
from .retarget.plan import CONTEXT_SECONDS, slice_pose
from .retarget.skeleton import JOINT_NAMES, REST_OFFSETS
from .retarget.transfer import bind, motion_from_pose, pose_from_motion
from .rig import sample_pose
from .tasks import armature_of, mapping_of, scene_fps

SHOT_PROPERTY = "motiongpt_shot"  # obj.motiongpt_shot
JOIN_TRIES = 3  # in-between requests per join at most (seeds block seed, +1, +2)


# --- the blocks as data on the armature ---------------------------------------------------

def _redraw_timelines() -> None:
    """Blocks are drawn over the timeline and dope sheet: show an edit there at once."""
    window_manager = getattr(bpy.context, "window_manager", None)
    if window_manager is None:
        return
    for window in window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"DOPESHEET_EDITOR", "TIMELINE"}:
                area.tag_redraw()


class MotionGPTShotBlock(bpy.types.PropertyGroup):
    """One prompt block: what the body does on frames start .. start + length - 1.

    No methods, update or poll callbacks here: a Python function on a registered
    property group crashes Blender 4.2's bpy module when its Python exits. The
    operators check paths are curves and redraw the timelines."""

    block_id: bpy.props.StringProperty(
        name="Id", description="Stays the same while the block is edited, moved or reordered (scripts name blocks by it)")
    text: bpy.props.StringProperty(
        name="Prompt", description="What the body does in this block, e.g. \"a person walks forward\"")
    start: bpy.props.IntProperty(name="Start", description="The block's first frame", default=1)
    length: bpy.props.IntProperty(
        name="Length", description="How many frames the block lasts", default=48, min=1)
    seed: bpy.props.IntProperty(name="Seed", description="Same seed, same motion", default=0, min=0)
    path: bpy.props.PointerProperty(
        name="Path", type=bpy.types.Object,
        description="A curve the body travels along in this block (position by its own travel, heading along the curve)")
    continued: bpy.props.BoolProperty(
        name="Continue", default=False,
        description="Continue the block before (the model sees its end) instead of starting from the text alone")


class MotionGPTShot(bpy.types.PropertyGroup):
    """An armature's shot: its blocks, the one the panel edits, what was last built
    (no methods: see MotionGPTShotBlock)."""

    blocks: bpy.props.CollectionProperty(type=MotionGPTShotBlock)
    active_index: bpy.props.IntProperty(name="Active Block", default=0, min=0)
    built: bpy.props.StringProperty(
        name="Built", description="JSON: the blocks as last built (so Build Block knows what changed, and the panel which)")


def last_frame(block) -> int:
    """A block's last frame."""
    return block.start + block.length - 1


def block_settings(block) -> dict:
    """What a block's motion depends on (compared with what was built)."""
    return {"text": block.text.strip(), "start": block.start, "length": block.length, "seed": block.seed,
            "path": block.path.name if block.path is not None else "", "continued": block.continued}


def ordered(shot) -> list:
    """The blocks in time order (by start; blocks that start together, in list order)."""
    return [shot.blocks[k] for k in sorted(range(len(shot.blocks)), key=lambda k: (shot.blocks[k].start, k))]


def shot_of(obj):
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature first (the active object is "
                         + (f"{obj.name!r}, a {obj.type.lower()})" if obj else "none)"))
    return getattr(obj, SHOT_PROPERTY)


def find_block(shot, block_id: str):
    """(index, block) of the block with this id; an empty id: the active block."""
    if not block_id:
        if not 0 <= shot.active_index < len(shot.blocks):
            raise ValueError("the shot has no blocks: add one first")
        return shot.active_index, shot.blocks[shot.active_index]
    for k, block in enumerate(shot.blocks):
        if block.block_id == block_id:
            return k, block
    raise ValueError(f"the shot has no block {block_id!r}")


def new_block_id(shot) -> str:
    taken = {b.block_id for b in shot.blocks}
    while True:
        block_id = uuid.uuid4().hex[:8]
        if block_id not in taken:
            return block_id


# --- operators that edit the blocks -----------------------------------------------------------

def _poll_armature(cls, context) -> bool:
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        cls.poll_message_set("Select an armature")
        return False
    return True


def _curve_object(name: str):
    """The curve object called `name` ("" for none), or a ValueError."""
    if not name:
        return None
    obj = bpy.data.objects.get(name)
    if obj is None or obj.type != "CURVE":
        raise ValueError(f"{name!r} is not a curve object (a block's path must be one)")
    return obj


class BlockEditor:
    """Shared by the operators that set a block's fields: only the properties a caller
    sets change."""

    text: bpy.props.StringProperty(name="Prompt")
    start: bpy.props.IntProperty(name="Start", default=1)
    length: bpy.props.IntProperty(name="Length", default=48, min=1)
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    path: bpy.props.StringProperty(name="Path", description="Name of a curve object; empty: no path")
    continued: bpy.props.BoolProperty(name="Continue", default=False)

    def _set_fields(self, block, defaults: dict) -> None:
        """Each property the caller set, else its default where `defaults` has one; the
        path is checked first, so a bad one changes nothing."""
        path = _curve_object(self.path) if self.properties.is_property_set("path") else defaults.get("path", block.path)
        for name in ("text", "start", "length", "seed", "continued"):
            if self.properties.is_property_set(name):
                setattr(block, name, getattr(self, name))
            elif name in defaults:
                setattr(block, name, defaults[name])
        block.path = path


class MOTIONGPT_OT_shot_block_add(BlockEditor, bpy.types.Operator):
    """Add a prompt block to the selected armature's shot (by default after its last block)"""

    bl_idname = "motiongpt.shot_block_add"
    bl_label = "Add Block"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _poll_armature(cls, context)

    def execute(self, context):
        shot = shot_of(context.active_object)
        blocks = ordered(shot)
        fps = context.scene.render.fps / context.scene.render.fps_base
        defaults = {"text": context.scene.motiongpt.prompt.strip() or "a person walks forward",
                    "start": last_frame(blocks[-1]) + 1 if blocks else context.scene.frame_current,
                    "length": max(1, round(context.scene.motiongpt.seconds * fps)),
                    "seed": context.scene.motiongpt.seed}
        try:  # checked before the block exists, so a bad path adds nothing
            _curve_object(self.path)
        except ValueError as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return {"CANCELLED"}
        block = shot.blocks.add()
        block.block_id = new_block_id(shot)
        self._set_fields(block, dict(defaults, path=None))
        shot.active_index = len(shot.blocks) - 1
        _redraw_timelines()
        self.report({"INFO"}, f"MotionGPT: block {block.block_id} on frames {block.start}..{last_frame(block)}")
        return {"FINISHED"}


class MOTIONGPT_OT_shot_block_edit(BlockEditor, bpy.types.Operator):
    """Change a block's prompt, frames, seed or path (only the properties given)"""

    bl_idname = "motiongpt.shot_block_edit"
    bl_label = "Edit Block"
    bl_options = {"REGISTER", "UNDO"}

    block_id: bpy.props.StringProperty(name="Block", description="The block's id; empty: the active block")

    @classmethod
    def poll(cls, context):
        return _poll_armature(cls, context)

    def execute(self, context):
        try:
            _, block = find_block(shot_of(context.active_object), self.block_id)
            self._set_fields(block, {})
        except ValueError as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return {"CANCELLED"}
        _redraw_timelines()
        return {"FINISHED"}


class MOTIONGPT_OT_shot_block_remove(bpy.types.Operator):
    """Remove a block from the shot (the keys it built stay until the shot is built again)"""

    bl_idname = "motiongpt.shot_block_remove"
    bl_label = "Remove Block"
    bl_options = {"REGISTER", "UNDO"}

    block_id: bpy.props.StringProperty(name="Block", description="The block's id; empty: the active block")

    @classmethod
    def poll(cls, context):
        return _poll_armature(cls, context) and len(shot_of(context.active_object).blocks) > 0

    def execute(self, context):
        shot = shot_of(context.active_object)
        try:
            index, _ = find_block(shot, self.block_id)
        except ValueError as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return {"CANCELLED"}
        shot.blocks.remove(index)
        shot.active_index = min(shot.active_index, max(0, len(shot.blocks) - 1))
        _redraw_timelines()
        return {"FINISHED"}


class MOTIONGPT_OT_shot_block_move(bpy.types.Operator):
    """Swap a block with the one before or after it in time: they trade places on the timeline, keeping the gap between them"""

    bl_idname = "motiongpt.shot_block_move"
    bl_label = "Move Block"
    bl_options = {"REGISTER", "UNDO"}

    block_id: bpy.props.StringProperty(name="Block", description="The block's id; empty: the active block")
    direction: bpy.props.EnumProperty(
        name="Direction", items=(("EARLIER", "Earlier", "Swap with the block before"),
                                 ("LATER", "Later", "Swap with the block after")), default="EARLIER")

    @classmethod
    def poll(cls, context):
        return _poll_armature(cls, context) and len(shot_of(context.active_object).blocks) > 1

    def execute(self, context):
        shot = shot_of(context.active_object)
        try:
            _, block = find_block(shot, self.block_id)
        except ValueError as error:
            self.report({"ERROR"}, f"MotionGPT: {error}")
            return {"CANCELLED"}
        blocks = ordered(shot)
        position = next(k for k, b in enumerate(blocks) if b.block_id == block.block_id)
        other = position - 1 if self.direction == "EARLIER" else position + 1
        if not 0 <= other < len(blocks):
            self.report({"WARNING"}, f"MotionGPT: the block is already the {'first' if other < 0 else 'last'}")
            return {"CANCELLED"}
        early, late = sorted((blocks[position], blocks[other]), key=lambda b: b.start)
        gap = late.start - (last_frame(early) + 1)
        late.start = early.start
        early.start = last_frame(late) + 1 + gap
        _redraw_timelines()
        return {"FINISHED"}


# --- the panel ----------------------------------------------------------------------------------

class MOTIONGPT_UL_blocks(bpy.types.UIList):
    """The shot's blocks in time order."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        row = layout.row(align=True)
        stale = is_stale(data, item)
        row.label(text=item.text or "(no prompt)", icon="ERROR" if stale else "CHECKMARK")
        row.label(text=f"{item.start}–{last_frame(item)}")
        if item.path is not None:
            row.label(text="", icon="CURVE_PATH")

    def filter_items(self, context, data, propname):
        blocks = getattr(data, propname)
        order = sorted(range(len(blocks)), key=lambda k: (blocks[k].start, k))
        new_order = [0] * len(blocks)
        for position, k in enumerate(order):
            new_order[k] = position
        return [], new_order


class MOTIONGPT_PT_shot(bpy.types.Panel):
    bl_label = "Shot"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MotionGPT"
    bl_parent_id = "MOTIONGPT_PT_panel"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "ARMATURE"

    def draw(self, context):
        layout = self.layout
        shot = shot_of(context.active_object)
        row = layout.row()
        row.template_list("MOTIONGPT_UL_blocks", "", shot, "blocks", shot, "active_index", rows=4)
        column = row.column(align=True)
        column.operator("motiongpt.shot_block_add", text="", icon="ADD")
        column.operator("motiongpt.shot_block_remove", text="", icon="REMOVE")
        column.separator()
        column.operator("motiongpt.shot_block_move", text="", icon="TRIA_UP").direction = "EARLIER"
        column.operator("motiongpt.shot_block_move", text="", icon="TRIA_DOWN").direction = "LATER"
        if 0 <= shot.active_index < len(shot.blocks):
            block = shot.blocks[shot.active_index]
            column = layout.column(align=True)
            column.prop(block, "text", text="")
            row = column.row(align=True)
            row.prop(block, "start")
            row.prop(block, "length")
            row = column.row(align=True)
            row.prop(block, "seed")
            row.prop(block, "continued", toggle=True)
            column.prop(block, "path")
            if block.path is not None and block.path.type != "CURVE":
                column.label(text=f"{block.path.name} is not a curve: pick a curve object", icon="ERROR")
        row = layout.row(align=True)
        row.operator("motiongpt.shot_build", icon="SEQ_STRIP_DUPLICATE")
        row.operator("motiongpt.shot_build_block", icon="FILE_REFRESH")


# --- the blocks over the timeline and dope sheet -------------------------------------------------

BAR_HEIGHT = 18  # pixels
_draw_handlers = []


def block_bars(blocks, frame_to_x, width: float) -> list:
    """(left, right, label, stale) in region pixels for the blocks that show in a
    region `width` pixels wide (`frame_to_x`: the region's view)."""
    bars = []
    for block, stale in blocks:
        left, right = frame_to_x(block.start - 0.5), frame_to_x(last_frame(block) + 0.5)
        if right < 0 or left > width:
            continue
        bars.append((max(left, -1.0), min(right, width + 1.0), block.text or "(no prompt)", stale))
    return bars


def draw_blocks_over_timeline() -> None:
    """Draw handler (dope sheet and timeline): the active armature's blocks as bars
    along the bottom of the editor, their prompts written in them."""
    import blf
    import gpu
    from gpu_extras.batch import batch_for_shader

    context = bpy.context
    obj = context.active_object
    region = context.region
    if obj is None or obj.type != "ARMATURE" or region is None:
        return
    shot = getattr(obj, SHOT_PROPERTY, None)
    if shot is None or not len(shot.blocks):
        return
    view = region.view2d
    bars = block_bars([(b, is_stale(shot, b)) for b in ordered(shot)],
                      lambda frame: view.view_to_region(frame, 0, clip=False)[0], region.width)
    if not bars:
        return
    bottom = 22  # above the scrollbar
    shader = gpu.shader.from_builtin("UNIFORM_COLOR")
    gpu.state.blend_set("ALPHA")
    for left, right, label, stale in bars:
        corners = ((left, bottom), (right, bottom), (right, bottom + BAR_HEIGHT), (left, bottom + BAR_HEIGHT))
        batch = batch_for_shader(shader, "TRIS", {"pos": corners}, indices=((0, 1, 2), (0, 2, 3)))
        shader.uniform_float("color", (0.85, 0.45, 0.15, 0.55) if stale else (0.20, 0.55, 0.85, 0.55))
        batch.draw(shader)
        outline = batch_for_shader(shader, "LINE_LOOP", {"pos": corners})
        shader.uniform_float("color", (1.0, 1.0, 1.0, 0.6))
        outline.draw(shader)
        blf.size(0, 11)
        blf.color(0, 1.0, 1.0, 1.0, 1.0)
        blf.enable(0, blf.CLIPPING)
        blf.clipping(0, left + 3, bottom, right - 3, bottom + BAR_HEIGHT)
        blf.position(0, left + 4, bottom + 5, 0)
        blf.draw(0, label)
        blf.disable(0, blf.CLIPPING)
    gpu.state.blend_set("NONE")


def _add_draw_handlers() -> None:
    # Background mode has no editors to draw in (and no GPU context): nothing to add.
    if bpy.app.background or _draw_handlers:
        return
    _draw_handlers.append(bpy.types.SpaceDopeSheetEditor.draw_handler_add(
        draw_blocks_over_timeline, (), "WINDOW", "POST_PIXEL"))


def _remove_draw_handlers() -> None:
    while _draw_handlers:
        bpy.types.SpaceDopeSheetEditor.draw_handler_remove(_draw_handlers.pop(), "WINDOW")


# --- reading the scene for a build ---------------------------------------------------------------

def curve_points(curve, depsgraph) -> np.ndarray:
    """The evaluated points (N, 3) of a curve object in world space, in order along its
    first spline (its resolution decides how finely a Bezier curve is sampled)."""
    evaluated = curve.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        count = len(mesh.vertices)
        if count < 2:
            raise ValueError(f"the path {curve.name!r} has no length (fewer than two points)")
        local = np.empty(count * 3)
        mesh.vertices.foreach_get("co", local)
        order = _along_edges(mesh, count)
    finally:
        evaluated.to_mesh_clear()
    matrix = np.array(curve.matrix_world)
    return local.reshape(count, 3)[order] @ matrix[:3, :3].T + matrix[:3, 3]


def _along_edges(mesh, count: int) -> np.ndarray:
    """Vertex indices in order along the mesh's edges from one end (a curve's mesh
    lists them in order already; this keeps only the first spline and checks it)."""
    edges = np.empty(len(mesh.edges) * 2, dtype=np.int64)
    mesh.edges.foreach_get("vertices", edges)
    following = {}
    for a, b in edges.reshape(-1, 2):
        following.setdefault(int(a), []).append(int(b))
        following.setdefault(int(b), []).append(int(a))
    ends = [v for v in range(count) if len(following.get(v, ())) == 1]
    order, seen = [ends[0] if ends else 0], set()
    while True:
        seen.add(order[-1])
        nxt = [v for v in following.get(order[-1], ()) if v not in seen]
        if not nxt:
            return np.array(order)
        order.append(nxt[0])


def path_in_motion_frame(points_world: np.ndarray, armature, binding) -> np.ndarray:
    """World points (N, 3) as the model's motions would have to pass through them to put
    the armature's pelvis there: into the armature's space, then the inverse of the
    retargeting's root mapping (body axes, leg-length scale, pelvis lift)."""
    inverse = np.linalg.inv(np.array(armature.matrix_world))
    local = points_world @ inverse[:3, :3].T + inverse[:3, 3]
    return ((local - binding.lift * binding.up) @ binding.frame) / binding.scale


def plan_blocks(obj, shot, binding, depsgraph) -> list:
    """The shot's blocks as plain data (retarget/shot.py's Block), paths sampled."""
    blocks = []
    for block in ordered(shot):
        path = None
        if block.path is not None:
            if block.path.type != "CURVE":
                raise ValueError(f"the path of block \"{block.text.strip()}\" is {block.path.name!r}, not a curve object")
            path = path_in_motion_frame(curve_points(block.path, depsgraph), obj, binding)
        blocks.append(shotplan.Block(name=block.block_id, text=block.text.strip(), start=block.start,
                                     length=block.length, seed=block.seed, path=path, continues=block.continued))
    return blocks


def block_to_json(block) -> dict:
    return {"name": block.name, "text": block.text, "start": block.start, "length": block.length, "seed": block.seed,
            "path": None if block.path is None else [list(p) for p in block.path], "continues": block.continues}


def block_from_json(data: dict):
    return shotplan.Block(**data)


def built_blocks(shot) -> list | None:
    """The blocks as the shot was last built (plain data), or None."""
    data = built_settings(shot)
    blocks = data.get("blocks")
    return None if blocks is None else [block_from_json(b) for b in blocks]


def built_settings(shot) -> dict:
    """What the shot's last build recorded: {"blocks": [Block as JSON], "settings": {id: block_settings}}."""
    try:
        return json.loads(shot.built) if shot.built else {}
    except ValueError:
        return {}


def is_stale(shot, block) -> bool:
    """True when the block changed since the shot was last built (or was never built)."""
    return built_settings(shot).get("settings", {}).get(block.block_id) != block_settings(block)


def _shot_joints(obj, action, rig, bone_map, first: int, last: int) -> np.ndarray:
    """The joints (T, 22, 3, the model's frame) the action gives the armature on frames
    first..last: the built shot as the scene has it now, hand edits and all."""
    pose = sample_pose(obj, action, first, last, bone_map, rig=rig)
    return motion_from_pose(rig, bone_map, pose, REST_OFFSETS).positions


# --- the server jobs ------------------------------------------------------------------------------

def joints_to_wire(joints: np.ndarray, fps: float) -> dict:
    """A motion for the server from joint positions alone (it derives the rest)."""
    return {"format": WIRE_FORMAT, "fps": float(fps), "joint_names": list(JOINT_NAMES),
            "positions": np.round(np.asarray(joints, dtype=np.float64), 6).tolist()}


def _joints_of(result: dict) -> np.ndarray:
    return motion_from_wire(result["motions"][0]).positions


def _resampled_to_model(joints: np.ndarray, fps: float) -> np.ndarray:
    frames = int((len(joints) - 1) / fps * MODEL_FPS + 1e-6) + 1
    return shotplan.resample_joints(joints, fps, MODEL_FPS, frames)


def _readable(shot, planner, *args):
    """planner(*args), its refusals naming blocks by their prompts (the plan knows them by id)."""
    try:
        return planner(*args)
    except ValueError as error:
        message = str(error)
        for block in shot.blocks:
            message = message.replace(f"block {block.block_id!r}", f"block \"{block.text.strip() or '(no prompt)'}\"")
        raise ValueError(message) from None


@dataclass
class ShotRequest:
    """A build for ServerJobOperator: several server jobs (`run`), then `apply`."""

    label: str
    task: str
    body: dict
    apply: object
    run: object


class ShotBuild:
    """Building a shot, or rebuilding one block of it: what to ask the model (the plan,
    read from the scene on the main thread), the asking (`run`, a worker thread, no
    bpy), and the writing (`apply`, main thread)."""

    def __init__(self, context, block_id: str = "", foot_lock: bool = True):
        obj = armature_of(context)
        self.rig, self.bone_map = mapping_of(obj)
        self.armature = obj.name
        self.fps = scene_fps(context.scene)
        self.foot_lock = foot_lock
        shot = shot_of(obj)
        if not len(shot.blocks):
            raise ValueError(f"{obj.name!r} has no prompt blocks: add one in the Shot panel first")
        binding = bind(self.rig, self.bone_map, REST_OFFSETS)
        blocks = plan_blocks(obj, shot, binding, context.evaluated_depsgraph_get())
        anim = obj.animation_data
        action = anim.action if anim is not None else None
        self.action = action.name if action is not None else None
        self.existing = None  # the built shot's joints as the action has them now (one block rebuilt)
        self.settings = {b.block_id: block_settings(b) for b in shot.blocks}
        if block_id:
            _, target = find_block(shot, block_id)
            old = built_blocks(shot)
            if old is None or action is None:
                raise ValueError("build the whole shot once before rebuilding one block")
            current = next(b for b in blocks if b.name == target.block_id)
            names = [b.name for b in old]
            new = [current if b.name == current.name else b for b in old]
            if current.name not in names:
                new.append(current)
            edit = _readable(shot, shotplan.edit_plan, old, new, self.fps)
            self.plan = edit.plan
            self.regenerate = tuple(edit.regenerate)
            self.joins = tuple(edit.joins)
            self.frames = tuple(edit.frames)
            self.blocks = new
            self.settings = dict(built_settings(shot).get("settings", {}), **{target.block_id: block_settings(target)})
            # The other blocks stay exactly where the scene has them: read them back.
            self.existing = _shot_joints(obj, action, self.rig, self.bone_map, self.plan.first, self.plan.last)
            self.label = f"Build block {target.block_id}"
        else:
            self.plan = _readable(shot, shotplan.build_plan, blocks, self.fps)  # validates: overlaps, lengths, texts
            self.regenerate = tuple(range(len(self.plan.blocks)))
            self.joins = tuple(range(len(self.plan.joins)))
            self.frames = ((self.plan.first, self.plan.last),)
            self.blocks = list(self.plan.blocks)
            self.label = "Build shot"
        self.report = {}

    # worker thread ----------------------------------------------------------------------------

    def _existing_block(self, index: int) -> np.ndarray:
        block = self.plan.blocks[index]
        return self.existing[block.start - self.plan.first:block.start - self.plan.first + block.length]

    def run(self, client, report_progress, should_cancel) -> dict:
        plan = self.plan
        steps = max(1, len(self.regenerate) + len(self.joins))
        done = [0]

        def ask(task, body):
            base = done[0]
            answer = client.run(task, body, lambda p: report_progress((base + p) / steps), should_cancel)
            done[0] += 1
            return answer

        motions = [None] * len(plan.blocks)
        for index in self.regenerate:  # in time order: a continued block comes after the one it continues
            block = plan.blocks[index]
            frames = shotplan.model_frames(block, self.fps)  # whole tokens, within the limits (validated)
            if block.continues and index > 0:
                before = motions[index - 1]
                if before is None:  # not regenerated: continue the block as the scene has it
                    before = _resampled_to_model(self._existing_block(index - 1), self.fps)
                context = before[-int(CONTEXT_SECONDS * MODEL_FPS):]
                body = {"motion": joints_to_wire(context, MODEL_FPS), "frames": frames, "seed": block.seed}
                if block.text:
                    body["text"] = block.text
                motions[index] = _joints_of(ask("predict", body))[len(context):]
            else:
                motions[index] = _joints_of(ask("generate", {"text": block.text, "frames": frames, "seed": block.seed}))
        keep = None
        if self.existing is not None:
            keep = {}
            for index in range(len(plan.blocks)):
                if motions[index] is None:
                    motions[index] = _resampled_to_model(self._existing_block(index), self.fps)
                    keep[index] = shotplan.Placement(0.0, (0.0, 0.0))
        placed = shotplan.place_blocks(plan, motions, keep=keep)
        if self.existing is not None:  # the kept blocks exactly as the scene has them
            placed = [shotplan.PlacedBlock(self._existing_block(k), p.placement) if k in keep else p
                      for k, p in enumerate(placed)]
        shot = shotplan.stitch(plan, placed)
        fills = {}
        for index in self.joins:
            join = plan.joins[index]
            joints, mask_start, mask_end = shotplan.join_request(shot, plan, join)
            # A fill that crosses the join faster than its blocks move is asked again with
            # the next seeds; the calmest of the tries is kept, and smoothed in time if it
            # still rushes.
            tries = []
            for attempt in range(JOIN_TRIES):
                body = {"motion": joints_to_wire(joints, MODEL_FPS), "mask_start": int(mask_start),
                        "mask_end": int(mask_end), "seed": int(plan.blocks[join.after].seed) + attempt}
                fill = shotplan.fill_from_answer(_joints_of(ask("inbetween", body)), plan, join)
                tries.append((shotplan.fill_pace(shot, plan, join, fill), attempt, fill))
                if tries[-1][0] <= shotplan.PACE_MARGIN:
                    break
            pace, _, fill = min(tries, key=lambda t: t[:2])
            fills[index] = fill if pace <= shotplan.PACE_MARGIN else shotplan.calmed_fill(shot, plan, join, fill)
        shot = shotplan.stitch(plan, placed, fills)
        if self.existing is not None:  # outside the frames this build rewrites, the scene's own
            rewritten = np.zeros(len(shot), dtype=bool)
            for first, last in self.frames:
                rewritten[first - plan.first:last - plan.first + 1] = True
            shot = np.where(rewritten[:, None, None], shot, self.existing)
        continuity = shotplan.join_continuity(shot, plan)
        return {"joints": shot, "placed": placed, "continuity": continuity}

    # main thread ----------------------------------------------------------------------------

    def apply(self, result: dict) -> str:
        obj = bpy.data.objects.get(self.armature)
        if obj is None or obj.type != "ARMATURE":
            raise ValueError(f"the armature {self.armature!r} is gone (deleted or renamed while the job ran)")
        plan = self.plan
        motion = Motion.from_positions(result["joints"], self.fps, offsets=REST_OFFSETS)
        pose = pose_from_motion(motion, self.rig, self.bone_map, foot_lock=self.foot_lock)
        parts = [(slice_pose(pose, first - plan.first, last - plan.first + 1), first) for first, last in self.frames]
        if self.action is None:
            if len(parts) != 1:
                raise ValueError("the shot's action is gone: build the whole shot")
            keyframe_pose(obj, parts[0][0], parts[0][1], action_name=f"{obj.name} shot")
        else:
            action = bpy.data.actions.get(self.action)
            if action is None:
                raise ValueError(f"the action {self.action!r} is gone (deleted or renamed while the job ran)")

            def write(target):
                for part, start in parts:
                    replace_keys(obj, target, part, start)

            edit_through_copy(obj, action, write)
        shot = shot_of(obj)
        shot.built = json.dumps({"blocks": [block_to_json(b) for b in self.blocks], "settings": self.settings})
        if plan.last > bpy.context.scene.frame_end:
            bpy.context.scene.frame_end = plan.last
        worst = max((c.ratio for c in result["continuity"]), default=0.0)
        self.report = {"joins": [(j.a, j.b, j.gap) for j in plan.joins], "frames": [list(f) for f in self.frames],
                       "continuity": [(c.join, c.largest, c.root, c.own) for c in result["continuity"]],
                       "path_error": {plan.blocks[k].name: p.path_error for k, p in enumerate(result["placed"])
                                      if p.path_error is not None},
                       "sliding": {plan.blocks[k].name: p.sliding for k, p in enumerate(result["placed"])
                                   if p.sliding is not None}}
        frames = ", ".join(f"{a}..{b}" for a, b in self.frames)
        return f"{self.label}: wrote frames {frames} of {obj.name}; largest join step {worst:.2f}x the motion's own"

    def request(self) -> ShotRequest:
        return ShotRequest(self.label, "shot", {}, self.apply, self.run)


# --- the build operators ---------------------------------------------------------------------------

last_build = {"report": None}  # the last build's measurements (join continuity, path error), for scripts and tests


class ShotBuildOperator(ServerJobOperator):
    """Shared by the two build operators (a registered operator class cannot be subclassed)."""

    @classmethod
    def poll(cls, context):
        if not _poll_armature(cls, context):
            return False
        if jobs.current() is not None:
            cls.poll_message_set("A MotionGPT job is running")
            return False
        return True

    def _block_id(self, context) -> str:
        return ""

    def request(self, context):
        self._build = ShotBuild(context, self._block_id(context), context.scene.motiongpt.foot_lock)
        return self._build.request()

    def _finish(self, context):
        outcome = super()._finish(context)
        if outcome == {"FINISHED"}:
            last_build["report"] = self._build.report
        return outcome


class MOTIONGPT_OT_shot_build(ShotBuildOperator, bpy.types.Operator):
    """Build the selected armature's shot: every block generated, the joins in-betweened, into one action (one undo step)"""

    bl_idname = "motiongpt.shot_build"
    bl_label = "Build Shot"


class MOTIONGPT_OT_shot_build_block(ShotBuildOperator, bpy.types.Operator):
    """Rebuild one block and its two joins; every other key of the action stays as it is"""

    bl_idname = "motiongpt.shot_build_block"
    bl_label = "Build Block"

    block_id: bpy.props.StringProperty(name="Block", description="The block's id; empty: the active block")

    def _block_id(self, context) -> str:
        return self.block_id or find_block(shot_of(context.active_object), "")[1].block_id


CLASSES = (
    MotionGPTShotBlock,
    MotionGPTShot,
    MOTIONGPT_OT_shot_block_add,
    MOTIONGPT_OT_shot_block_edit,
    MOTIONGPT_OT_shot_block_remove,
    MOTIONGPT_OT_shot_block_move,
    MOTIONGPT_OT_shot_build,
    MOTIONGPT_OT_shot_build_block,
    MOTIONGPT_UL_blocks,
    MOTIONGPT_PT_shot,
)


def register():
    """After the classes: the shot on every object (used on armatures), the draw handler."""
    setattr(bpy.types.Object, SHOT_PROPERTY, bpy.props.PointerProperty(type=MotionGPTShot))
    _add_draw_handlers()


def unregister():
    _remove_draw_handlers()
    delattr(bpy.types.Object, SHOT_PROPERTY)
