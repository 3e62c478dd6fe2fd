"""Actions, slots and channelbags on every Blender the extension runs on: the one module
that knows how they differ, so nothing else checks the version.

Blender 4.2 and 4.3 keep an action's F-curves on the action (`action.fcurves`) and an
object plays the whole action. 4.4 added slots: one action can animate several IDs,
each through its own slot, and the F-curves live in the slot's channelbag on a keyframe
strip of a layer; assigning an action to an object also picks one of its slots (4.4 and
4.5 LTS still have `action.fcurves` for the first slot, and a channelbag's fcurves.new
takes no group there). 5.0 dropped `action.fcurves`. The checks below look for the
feature (`action.layers`, `animation_data.action_slot`), not at the version number.
"""

import bpy


def _layered(action) -> bool:
    """F-curves in channelbags on layers (4.4+), not on the action."""
    return hasattr(action, "layers")


def _slotted(anim) -> bool:
    """An assigned action comes with a slot (4.4+)."""
    return hasattr(anim, "action_slot")


def object_fcurves(action, obj) -> list:
    """The F-curves that animate `obj` in `action` (read only: nothing is created)."""
    if not _layered(action):
        return list(action.fcurves)
    slot = getattr(obj.animation_data, "action_slot", None)
    if slot is None:
        return []
    curves = []
    for layer in action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            if bag is not None:
                curves += list(bag.fcurves)
    return curves


class ObjectChannels:
    """The F-curves one object's animation lives in, in one action, ready to be written:
    on 4.4+ the object's slot (a new one with `new_slot`, or when the object has none),
    with the layer, strip and channelbag it needs."""

    def __init__(self, action, obj, new_slot: bool):
        self.action = action
        self.slot = None
        if _layered(action):
            anim = obj.animation_data
            slot = None if new_slot or anim is None else getattr(anim, "action_slot", None)
            if slot is None:
                slot = action.slots.new(id_type="OBJECT", name=obj.name)
            layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
            strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
            self.slot = slot
            bag = strip.channelbag(slot, ensure=True)
            self.fcurves, self._groups = bag.fcurves, bag.groups
        else:
            self.fcurves, self._groups = action.fcurves, getattr(action, "groups", None)
        # The group keyword of fcurves.new: action_group on the action (4.2-4.3),
        # group_name on a channelbag from 5.0, none on 4.4-4.5's channelbags.
        parameters = self.fcurves.bl_rna.functions["new"].parameters
        self._group_keyword = next((k for k in ("group_name", "action_group") if k in parameters), None)

    def find(self, path: str, index: int):
        return self.fcurves.find(path, index=index)

    def new(self, path: str, index: int, group: str):
        if self._group_keyword is not None:
            return self.fcurves.new(path, index=index, **{self._group_keyword: group})
        curve = self.fcurves.new(path, index=index)
        curve.group = self._groups.get(group) or self._groups.new(group)
        return curve


def new_object_action(obj, name: str) -> ObjectChannels:
    """A new action, empty, with channels for `obj` (not assigned yet)."""
    action = bpy.data.actions.new(name)
    try:
        return ObjectChannels(action, obj, new_slot=True)
    except Exception:
        bpy.data.actions.remove(action)
        raise


def remove(action) -> None:
    bpy.data.actions.remove(action)


def assignment(obj) -> tuple:
    """(action, slot) the object plays now, to give back with `restore`; slot is None
    before 4.4."""
    anim = obj.animation_data
    if anim is None:
        return None, None
    return anim.action, getattr(anim, "action_slot", None)


def assign(obj, action, slot=None) -> None:
    """Make `action` the object's active action, through `slot`, else the slot Blender
    picks, else its first slot for objects."""
    anim = obj.animation_data or obj.animation_data_create()
    anim.action = action
    if not _slotted(anim) or action is None:
        return
    if slot is not None:
        anim.action_slot = slot
    elif anim.action_slot is None:
        for candidate in action.slots:
            if candidate.target_id_type == "OBJECT":
                anim.action_slot = candidate
                return


def restore(obj, saved: tuple) -> None:
    """Give the object back the (action, slot) `assignment` returned."""
    anim = obj.animation_data
    if anim is None:
        return
    action, slot = saved
    if anim.action != action:
        anim.action = action
    if slot is not None and anim.action_slot != slot:
        anim.action_slot = slot


def push_to_nla(obj, action, frame_start: int) -> None:
    """Move the object's active `action` onto a new NLA track (with its slot) as a strip
    starting at `frame_start`, leaving no active action."""
    anim = obj.animation_data
    track = anim.nla_tracks.new()
    track.name = action.name
    strip = track.strips.new(action.name, frame_start, action)
    if hasattr(strip, "action_slot") and anim.action_slot is not None:
        strip.action_slot = anim.action_slot
    anim.action = None


def _slot_handle(anim):
    slot = getattr(anim, "action_slot", None)
    return None if slot is None else slot.handle


def _assign_with_handle(anim, action, handle) -> None:
    """Assign `action` through its slot with `handle` (a copy of an action keeps the
    handles of its slots)."""
    anim.action = action
    if handle is not None:
        anim.action_slot = next(s for s in action.slots if s.handle == handle)


def edit_through_copy(obj, action, edit) -> None:
    """Run edit(action) so that a failure leaves `action` exactly as it was: the keys go
    into a copy, which takes the original's place (every user, its name) on success."""
    anim = obj.animation_data
    handle = _slot_handle(anim)
    if _slotted(anim) and handle is None:
        raise ValueError(f"{obj.name!r} plays {action.name!r} through no slot: pick one in the Action editor")
    copy = action.copy()
    try:
        _assign_with_handle(anim, copy, handle)
        edit(copy)
    except Exception:
        _assign_with_handle(anim, action, handle)
        bpy.data.actions.remove(copy)
        raise
    _assign_with_handle(anim, action, handle)  # so user_remap moves this user too, with its slot
    name, fake_user = action.name, action.use_fake_user
    action.user_remap(copy)
    bpy.data.actions.remove(action)
    copy.name = name
    copy.use_fake_user = fake_user
