"""Speed of the corpus synthesizer (`motiongpt data synth`).

Prints clips per second of making clips (actions, forward kinematics, feet on the
ground, captions, HumanML3D features) in one process, next to the cost of only
computing HumanML3D features for the same joints, measured in the same run: the ratio
says how much the synthesis adds to the part every corpus pays. Then the slowest actions
by milliseconds per generated second of motion (the leg solvers of stairs, dances and
lying down cost more than angle curves). Then the whole command on 2 processes for 500
clips (the largest corpus the shared machine should write for a measurement),
extrapolated to 10,000 (the goal: under 10 minutes on 2 cores).

    .venv/bin/python benchmarks/synth.py
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from retarget.humanml3d import features_from_joints
from server.data.actions import ACTIONS, rotations
from server.data.synth import make_clip, place_on_ground, write_corpus


def main() -> None:
    count = 300
    started = time.perf_counter()
    clips = [make_clip(i, seed=0) for i in range(count)]
    synth_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for clip in clips:
        features_from_joints(clip["joints"])
    feature_seconds = time.perf_counter() - started
    frames = sum(len(c["joints"]) for c in clips)
    print(f"one process: {count / synth_seconds:.0f} clips/s ({frames / synth_seconds:.0f} frames/s) for whole clips; "
          f"features alone {count / feature_seconds:.0f} clips/s; synthesis costs {synth_seconds / feature_seconds:.2f}x "
          "the features it must compute anyway")
    costs = {}
    for name, action in ACTIONS.items():
        rng = np.random.default_rng(0)
        started, motion = time.perf_counter(), 0.0
        for _ in range(10):
            segment = action(rng, 4.0)
            place_on_ground(rotations(segment.angles), segment, 0.0)
            motion += segment.frames / 20
        costs[name] = 1000 * (time.perf_counter() - started) / motion
    slowest = sorted(costs.items(), key=lambda item: -item[1])[:5]
    print(f"{len(ACTIONS)} action functions; slowest, ms per second of motion: "
          + ", ".join(f"{name} {ms:.1f}" for name, ms in slowest)
          + f"; median {np.median(list(costs.values())):.1f}")
    clips = 500
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_corpus(Path(folder) / "corpus", clips, seed=0, workers=2, mocap=False, log=lambda line: None)
        seconds = time.perf_counter() - started
    print(f"motiongpt data synth, 2 processes: {clips} clips in {seconds:.1f} s ({clips / seconds:.0f} clips/s); "
          f"10,000 clips would take {10000 / clips * seconds / 60:.1f} min (goal: under 10)")


if __name__ == "__main__":
    main()
