"""An armature's rest data, as Blender stores it, in plain numpy.

The Blender adapter (addon/rig.py) fills a Rig from `bone.head_local`,
`bone.tail_local` and `bone.matrix_local`; tests and the benchmark build Rigs directly.
Everything is in armature space: Blender's convention is Z up, but a Rig may use any
axes (an FBX import often keeps Y up); retargeting finds the body's own up, left and
forward from the rest pose.
"""

from dataclasses import dataclass, field

import numpy as np

from .rotation import normalize


@dataclass
class Rig:
    """Rest data of an armature's bones in armature space, parents before children.

    names     bone names
    parents   (B,) index of each bone's parent, -1 for a root
    heads     (B, 3) rest heads (bone.head_local)
    tails     (B, 3) rest tails (bone.tail_local)
    matrices  (B, 3, 3) rest orientations (bone.matrix_local.to_3x3(); the bone's Y
              axis runs from head to tail, its roll turns X and Z about it)
    deform    (B,) bone.use_deform
    connected (B,) bone.use_connect: a connected bone's location channel does nothing
    world     (4, 4) the armature object's world matrix
    """

    names: tuple
    parents: np.ndarray
    heads: np.ndarray
    tails: np.ndarray
    matrices: np.ndarray
    deform: np.ndarray = None
    connected: np.ndarray = None
    world: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self):
        self.names = tuple(str(n) for n in self.names)
        count = len(self.names)
        if count == 0:
            raise ValueError("the armature has no bones")
        if len(set(self.names)) != count:
            raise ValueError("bone names must be unique")
        self.parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
        self.heads = np.asarray(self.heads, dtype=np.float64).reshape(-1, 3)
        self.tails = np.asarray(self.tails, dtype=np.float64).reshape(-1, 3)
        self.matrices = np.asarray(self.matrices, dtype=np.float64).reshape(-1, 3, 3)
        self.deform = np.ones(count, bool) if self.deform is None else np.asarray(self.deform, bool).reshape(-1)
        self.connected = np.zeros(count, bool) if self.connected is None else np.asarray(self.connected, bool).reshape(-1)
        self.world = np.asarray(self.world, dtype=np.float64).reshape(4, 4)
        for name, array in (("parents", self.parents), ("heads", self.heads), ("tails", self.tails),
                            ("matrices", self.matrices), ("deform", self.deform), ("connected", self.connected)):
            if len(array) != count:
                raise ValueError(f"rig {name} has {len(array)} entries for {count} bones")
        if np.any(self.parents >= np.arange(count)):
            raise ValueError("rig bones must be listed parents before children")
        if not (np.all(np.isfinite(self.heads)) and np.all(np.isfinite(self.tails)) and np.all(np.isfinite(self.matrices))):
            raise ValueError("rig rest data contains NaN or infinite values")
        # Blender's matrix_local is a rotation; strip any rounding so quaternions are exact.
        u, _, vt = np.linalg.svd(self.matrices)
        self.matrices = u @ vt
        self.index = {name: i for i, name in enumerate(self.names)}
        self.children = [[] for _ in range(count)]
        for bone, parent in enumerate(self.parents):
            if parent >= 0:
                self.children[parent].append(bone)

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def lengths(self) -> np.ndarray:
        return np.linalg.norm(self.tails - self.heads, axis=-1)

    def ancestors(self, bone: int) -> list:
        """Bone indices from the parent up to the root."""
        out = []
        parent = self.parents[bone]
        while parent >= 0:
            out.append(int(parent))
            parent = self.parents[parent]
        return out

    def is_ancestor(self, ancestor: int, bone: int) -> bool:
        return ancestor in self.ancestors(bone)

    def path(self, ancestor: int, bone: int) -> list:
        """Bones from just below `ancestor` down to `bone` (inclusive)."""
        chain = [bone]
        for parent in self.ancestors(bone):
            if parent == ancestor:
                return chain[::-1]
            chain.append(parent)
        raise ValueError(f"{self.names[ancestor]} is not an ancestor of {self.names[bone]}")

    def common_ancestor(self, bones) -> int:
        """The deepest bone that is (or is an ancestor of) every bone given; -1 if none."""
        bones = list(bones)
        common = None
        for bone in bones:
            line = [bone] + self.ancestors(bone)
            common = line if common is None else [b for b in line if b in common]
        return common[0] if common else -1


def rig_from_chain(names, parents, heads, tails=None, rolls=None, world=None) -> Rig:
    """A Rig from joint positions, the way edit bones are made: each bone points from
    its head to its tail (by default its first child's head), with an optional roll in
    radians about that axis (Blender's rule for the roll-zero orientation)."""
    heads = np.asarray(heads, dtype=np.float64)
    count = len(names)
    parents = np.asarray(parents)
    if tails is None:
        tails = heads.copy()
        for bone in range(count):
            kids = np.flatnonzero(parents == bone)
            if len(kids):
                tails[bone] = heads[kids[0]]
            else:
                parent = parents[bone]
                direction = heads[bone] - heads[parent] if parent >= 0 else np.array([0.0, 0.0, 1.0])
                tails[bone] = heads[bone] + 0.5 * direction
    tails = np.asarray(tails, dtype=np.float64)
    rolls = np.zeros(count) if rolls is None else np.asarray(rolls, dtype=np.float64)
    matrices = np.stack([bone_matrix(t - h, r) for h, t, r in zip(heads, tails, rolls)])
    return Rig(tuple(names), parents, heads, tails, matrices, world=np.eye(4) if world is None else world)


def bone_matrix(vector, roll: float = 0.0) -> np.ndarray:
    """Rest orientation of a bone along `vector` with `roll`, as Blender computes it
    (vec_roll_to_mat3: the shortest turn from +Y onto the bone, then the roll about it)."""
    y = normalize(np.asarray(vector, dtype=np.float64))
    x, z = y[0], y[2]
    theta = 1.0 + y[1]
    theta_alt = x * x + z * z
    if theta > 6.1e-3 or theta_alt > 2.5e-4 ** 2:
        if theta <= 6.1e-3:
            theta = 0.5 * theta_alt + 0.125 * theta_alt * theta_alt
        base = np.array([
            [1 - x * x / theta, x, -x * z / theta],
            [-x, y[1], -z],
            [-x * z / theta, z, 1 - z * z / theta],
        ])
    else:
        # A bone along -Y exactly: Blender uses a half turn about Z.
        base = np.diag([-1.0, -1.0, 1.0])
    c, s = np.cos(roll), np.sin(roll)
    # Roll turns the bone about its own Y axis.
    roll_matrix = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return base @ roll_matrix
