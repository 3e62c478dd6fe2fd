"""A tiny synthetic SMPL model in SMPL's own file format, so the real loading paths
(smplx's and ours) run without the licensed model files.

The body is a box around each of the 24 joints (8 vertices, 12 triangles), the joints
a perturbed SMPL T-pose, the J_regressor the mean of each box (a scipy sparse matrix,
as in the official .pkl), skin weights shared between a joint and its parent, shape
directions that stretch the body, and no pose correctives unless asked for.
"""

import pickle

import numpy as np

from retarget.skeleton import JOINT_COUNT, PARENTS, REST_OFFSETS, rest_positions

SMPL_PARENTS = np.array(PARENTS + (20, 21))
_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
_BOX_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                       [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def synthetic_smpl(seed=0, betas=10, pose_correctives=False) -> dict:
    rng = np.random.default_rng(seed)
    joints = np.zeros((24, 3))
    joints[:JOINT_COUNT] = rest_positions(REST_OFFSETS) + rng.normal(0, 0.01, (JOINT_COUNT, 3))
    joints[22] = joints[20] + [0.08, 0, 0]
    joints[23] = joints[21] + [-0.08, 0, 0]
    joints += [0.0, 0.2, 0.0]  # SMPL's template pelvis sits off the origin
    vertices = (joints[:, None, :] + 0.02 * _CORNERS[None]).reshape(-1, 3)
    count = len(vertices)
    regressor = np.zeros((24, count))
    for joint in range(24):
        regressor[joint, 8 * joint: 8 * joint + 8] = 1.0 / 8
    weights = np.zeros((count, 24))
    for joint in range(24):
        rows = slice(8 * joint, 8 * joint + 8)
        parent = SMPL_PARENTS[joint]
        if parent < 0:
            weights[rows, joint] = 1.0
        else:
            # The box's top half leans on the parent: linear blend skinning is exercised.
            share = np.where(_CORNERS[:, 1] > 0, 0.3, 0.0)
            weights[rows, joint] = 1.0 - share
            weights[rows, parent] = share
    # Shape directions: move whole boxes (so joints move) along smooth random fields.
    shapedirs = np.repeat(rng.normal(0, 0.02, (24, 3, betas)), 8, axis=0)
    posedirs = rng.normal(0, 0.002, (count, 3, 207)) if pose_correctives else np.zeros((count, 3, 207))
    kintree = np.stack([np.where(SMPL_PARENTS < 0, 4294967295, SMPL_PARENTS), np.arange(24)]).astype(np.int64)
    faces = (np.arange(24)[:, None, None] * 8 + _BOX_FACES[None]).reshape(-1, 3).astype(np.uint32)
    return dict(v_template=vertices, shapedirs=shapedirs, posedirs=posedirs, J_regressor=regressor,
                weights=weights, kintree_table=kintree, f=faces, bs_style="lbs", bs_type="lrotmin")


def write_pkl(path, model, sparse_regressor=True, protocol=2):
    model = dict(model)
    if sparse_regressor:
        import scipy.sparse

        model["J_regressor"] = scipy.sparse.csc_matrix(model["J_regressor"])
    with open(path, "wb") as stream:
        pickle.dump(model, stream, protocol=protocol)
    return path


def write_npz(path, model):
    np.savez(path, **{k: v for k, v in model.items() if isinstance(v, np.ndarray)})
    return path
