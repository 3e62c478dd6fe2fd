"""A motion as a posed SMPL body: per-frame vertices from the user's own SMPL model
file through the `smplx` package (torch). Used by `motiongpt convert --to smpl-mesh`.

The motion is fitted to the skeleton of the chosen body shape (betas) by the same
retargeting as any armature (retarget/transfer.py), so the body performs the motion
with its own proportions; smplx then poses and skins the mesh, pose correctives
included.
"""

import contextlib
import io
from pathlib import Path

import numpy as np

from retarget.smpl_model import load_smpl_model, smpl_parameters
from retarget.formats import write_atomically
from retarget.motion import Motion


def _model_file(model_path, gender: str) -> Path:
    path = Path(model_path)
    if path.is_dir():
        candidates = [path / f"SMPL_{gender.upper()}.{ext}" for ext in ("pkl", "npz")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ValueError(f"{path}: no SMPL_{gender.upper()}.pkl or .npz in this folder")
        return found
    if not path.is_file():
        raise ValueError(f"{path}: no such SMPL model file")
    return path


def smpl_mesh(motion: Motion, model_path, betas=None, gender: str = "neutral", foot_lock: bool = False) -> dict:
    """{'vertices': (T, V, 3) float32, 'faces': (F, 3), 'joints': (T, J, 3), ...} in
    SMPL's frame (Y up, facing +Z, metres)."""
    try:
        import smplx
    except ImportError:
        raise ValueError("smpl-mesh needs the smplx package (non-commercial licence): pip install -e '.[smpl]'") from None
    import torch
    from smplx.utils import Struct

    path = _model_file(model_path, gender)
    model = load_smpl_model(path)  # checks the file and gives the skeleton to fit to
    betas = np.zeros(0) if betas is None else np.asarray(betas, dtype=np.float64).reshape(-1)
    global_orient, body_pose, transl = smpl_parameters(motion, model, betas, foot_lock=foot_lock)
    frames = motion.frames
    # The extra landmark joints smplx adds come from vertex ids of the full-size mesh;
    # they are not used here, so point them at vertex 0 (any mesh size then loads).
    options = dict(gender=gender, num_betas=max(len(betas), 1), batch_size=frames,
                   vertex_ids={k: 0 for k in ("nose", "reye", "leye", "rear", "lear")},
                   use_hands=False, use_feet_keypoints=False)
    with contextlib.redirect_stdout(io.StringIO()):  # smplx prints notes about shape spaces
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                body = smplx.SMPL(model_path=str(path), data_struct=Struct(**{k: data[k] for k in data.files}),
                                  **options)
        else:
            body = smplx.SMPL(model_path=str(path), **options)
    shape = np.zeros((frames, body.num_betas))
    shape[:, : len(betas)] = betas

    def tensor(array):
        return torch.as_tensor(np.asarray(array), dtype=torch.float32)

    with torch.inference_mode():
        output = body(betas=tensor(shape), global_orient=tensor(global_orient), body_pose=tensor(body_pose),
                      transl=tensor(transl), return_verts=True)
    return {
        "vertices": output.vertices.numpy().astype(np.float32),
        "joints": output.joints[:, : model.joint_count].numpy().astype(np.float32),
        "faces": np.asarray(body.faces, dtype=np.int32),
        "betas": betas,
        "global_orient": global_orient,
        "body_pose": body_pose,
        "transl": transl,
        "fps": np.float64(motion.fps),
        "up_axis": np.array("Y"),
    }


def write_smpl_mesh(motion: Motion, out_path, model_path, betas=None, gender: str = "neutral",
                    foot_lock: bool = False) -> dict:
    """Compute the body, then write it as npz atomically (all or nothing)."""
    arrays = smpl_mesh(motion, model_path, betas, gender, foot_lock)
    write_atomically(out_path, lambda stream: np.savez(stream, **arrays))
    return arrays
