"""The SMPL body model's files, read with numpy alone (this runs inside Blender, which
has neither torch nor scipy), and the SMPL skeleton a motion is fitted to.

SMPL model files are licensed separately and never shipped; users point at their own.
A model holds v_template (V, 3), shapedirs (V, 3, B), posedirs (V, 3, 207),
J_regressor (24, V) (a scipy sparse matrix in the official .pkl files), weights
(V, 24), kintree_table (2, 24) and f (F, 3). Both .pkl (SMPL's own format, Python 2
pickles included) and .npz are read. A .pkl is unpickled with a whitelist: numpy
arrays and scipy sparse matrices (rebuilt here without scipy), nothing that runs code.
"""

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .motion import Motion
from .rig import Rig
from .rotation import quat_to_axis_angle
from .skeleton import JOINT_NAMES

SMPL_JOINT_NAMES = JOINT_NAMES + ("left_hand", "right_hand")
_KEYS = ("v_template", "shapedirs", "J_regressor", "weights", "kintree_table", "f")


@dataclass
class SmplModel:
    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, B)
    posedirs: np.ndarray  # (V, 3, P) or None
    J_regressor: np.ndarray  # (J, V) dense
    weights: np.ndarray  # (V, J)
    parents: np.ndarray  # (J,) -1 for the root
    faces: np.ndarray  # (F, 3)

    @property
    def joint_count(self) -> int:
        return len(self.parents)


class _SparseStandIn:
    """What a pickled scipy.sparse matrix unpickles into here: its state, turned into
    a dense array by `dense()` (csc, csr and coo layouts)."""

    kind = "csc"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __setstate__(self, state):
        self.state = state

    def dense(self):
        s = self.state
        shape = tuple(s.get("_shape") or s.get("shape"))
        out = np.zeros(shape)
        if self.kind in ("csc", "csr"):
            data, indices, indptr = (np.asarray(s[k]) for k in ("data", "indices", "indptr"))
            for outer in range(len(indptr) - 1):
                rows = indices[indptr[outer]:indptr[outer + 1]]
                values = data[indptr[outer]:indptr[outer + 1]]
                if self.kind == "csc":
                    np.add.at(out, (rows, outer), values)
                else:
                    np.add.at(out, (outer, rows), values)
        else:  # coo
            rows, cols = (np.asarray(s[k]) for k in ("row", "col")) if "row" in s else s["coords"]
            np.add.at(out, (rows, cols), np.asarray(s["data"]))
        return out


class _ModelUnpickler(pickle.Unpickler):
    _NUMPY = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def find_class(self, module, name):
        if module.startswith("numpy") and name in self._NUMPY:
            return super().find_class(module, name)
        if module.startswith("scipy.sparse"):
            for kind in ("csc", "csr", "coo"):
                if name.startswith(kind):
                    return _sparse_class(kind)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return super().find_class("copyreg", "_reconstructor")
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module == "_codecs" and name == "encode":  # how protocol 2 spells bytes
            return super().find_class(module, name)
        if module.startswith("chumpy"):
            raise ValueError("the SMPL model file holds chumpy objects: convert it to plain numpy arrays first "
                             "(the smplx project's tools/clean_ch.py does this)")
        raise ValueError(f"the SMPL model file holds {module}.{name}, which is not model data")


def _sparse_class(kind):
    return type(f"{kind}_stand_in", (_SparseStandIn,), {"kind": kind})


def _as_array(value):
    return value.dense() if isinstance(value, _SparseStandIn) else np.asarray(value)


def load_smpl_model(path) -> SmplModel:
    """Read an SMPL model file (.pkl or .npz); errors name the problem in one line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such SMPL model file")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        else:
            with open(path, "rb") as stream:
                raw = _ModelUnpickler(stream, encoding="latin1").load()
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    except Exception as error:  # unpickling and npz reading raise many kinds
        raise ValueError(f"{path}: not a readable SMPL model file ({error})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not an SMPL model file (it holds a {type(raw).__name__}, not a dict)")
    missing = [k for k in _KEYS if k not in raw]
    if missing:
        raise ValueError(f"{path}: the SMPL model has no {', '.join(missing)}")
    v_template = _as_array(raw["v_template"]).astype(np.float64)
    shapedirs = _as_array(raw["shapedirs"]).astype(np.float64)
    posedirs = _as_array(raw["posedirs"]).astype(np.float64) if "posedirs" in raw else None
    regressor = _as_array(raw["J_regressor"]).astype(np.float64)
    weights = _as_array(raw["weights"]).astype(np.float64)
    kintree = _as_array(raw["kintree_table"]).astype(np.int64)
    faces = _as_array(raw["f"]).astype(np.int64)
    vertices = len(v_template)
    joints = regressor.shape[0] if regressor.ndim == 2 else 0
    checks = (
        (v_template.ndim == 2 and v_template.shape[1] == 3, f"v_template must be (V, 3), got {v_template.shape}"),
        (shapedirs.ndim == 3 and shapedirs.shape[:2] == (vertices, 3), f"shapedirs must be ({vertices}, 3, B), got {shapedirs.shape}"),
        (regressor.ndim == 2 and regressor.shape[1] == vertices, f"J_regressor must be (J, {vertices}), got {regressor.shape}"),
        (joints >= 22, f"the model has {joints} joints; SMPL has 24"),
        (weights.shape == (vertices, joints), f"weights must be ({vertices}, {joints}), got {weights.shape}"),
        (kintree.ndim == 2 and kintree.shape[0] == 2 and kintree.shape[1] == joints,
         f"kintree_table must be (2, {joints}), got {kintree.shape}"),
        (faces.ndim == 2 and faces.shape[1] == 3 and (faces.size == 0 or (faces.min() >= 0 and faces.max() < vertices)),
         f"f must be (F, 3) vertex indices below {vertices}"),
    )
    for ok, message in checks:
        if not ok:
            raise ValueError(f"{path}: {message}")
    parents = kintree[0].copy()
    parents[0] = -1
    if np.any(parents[1:] >= np.arange(1, joints)) or np.any(parents[1:] < 0):
        raise ValueError(f"{path}: kintree_table must list parents before children")
    if posedirs is not None and posedirs.shape[:2] != (vertices, 3):
        posedirs = None
    return SmplModel(v_template, shapedirs, posedirs, regressor, weights, parents, faces)


def shaped(model: SmplModel, betas=None):
    """Rest vertices (V, 3) and joints (J, 3) of the body shape `betas` (Y up)."""
    betas = np.zeros(0) if betas is None else np.asarray(betas, dtype=np.float64).reshape(-1)
    if len(betas) > model.shapedirs.shape[-1]:
        raise ValueError(f"{len(betas)} betas given; the model has {model.shapedirs.shape[-1]} shape components")
    vertices = model.v_template + model.shapedirs[:, :, : len(betas)] @ betas
    return vertices, model.J_regressor @ vertices


def smpl_rig(joints: np.ndarray, parents: np.ndarray) -> Rig:
    """The SMPL skeleton as a Rig in SMPL's convention: rest orientations are identity,
    so pose rotations on it are SMPL's own pose parameters."""
    count = len(joints)
    tails = joints.copy()
    for joint in range(count):
        kids = np.flatnonzero(parents == joint)
        tails[joint] = joints[kids[0]] if len(kids) else joints[joint] + 0.5 * (joints[joint] - joints[parents[joint]])
    return Rig(SMPL_JOINT_NAMES[:count] if count <= 24 else tuple(f"joint{j}" for j in range(count)),
               parents, joints, tails, np.tile(np.eye(3), (count, 1, 1)))


def body_bone_map(count: int = 24) -> dict:
    return {name: name for name in JOINT_NAMES}


def smpl_parameters(motion: Motion, model: SmplModel, betas=None, foot_lock: bool = False):
    """The SMPL parameters that make the body of shape `betas` perform `motion`:
    global_orient (T, 3), body_pose (T, 3 (J-1)) axis-angle and transl (T, 3)."""
    from .transfer import pose_from_motion

    _, joints = shaped(model, betas)
    rig = smpl_rig(joints, model.parents)
    pose = pose_from_motion(motion, rig, body_bone_map(), foot_lock=foot_lock)
    local = np.zeros((motion.frames, model.joint_count, 4))
    local[..., 0] = 1.0
    for k, name in enumerate(pose.bones):
        local[:, rig.index[name]] = pose.rotations[:, k]
    axis_angle = quat_to_axis_angle(local)
    # The pelvis turns about its own joint, so the translation is its displacement.
    return axis_angle[:, 0], axis_angle[:, 1:].reshape(motion.frames, -1), pose.root_location
