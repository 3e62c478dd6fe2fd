"""Text -> 196-frame motion with the embedded default model, end to end (prompt
encoding, 49 motion tokens, VQ decoding, joints), on this machine.

The reference, timed in the same run, is the same model decoding with Hugging Face
`generate` (decoding="hf"); the project's loop ("exact", the server's default, and
"fast") is reported against it. The goal is issue 14's: a 196-frame motion in at most
1 s on 2 cores; the printed seconds say where this machine stands, the ratio is what
compares between machines.

    .venv/bin/python benchmarks/generate.py [--threads 2] [--repeats 5]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.eval.report import SPEED_PROMPTS as PROMPTS
from server.eval.report import seconds_per_motion
from server.model.motiongpt import Sampling
from server.model.store import load_any


def greedy_agreement(model) -> float:
    """How often fast mode (int8 decoder) picks exact mode's greedy token, over the prompts."""
    codes = {}
    for mode in ("exact", "fast"):
        model.decoding = mode
        codes[mode] = [model.motion_tokens(f"Generate motion: {p}", 49, Sampling(greedy=True), 0) for p in PROMPTS]
    pairs = [(a, b) for x, y in zip(codes["exact"], codes["fast"]) for a, b in zip(x, y)]
    return sum(a == b for a, b in pairs) / len(pairs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_any()
    timings = {mode: seconds_per_motion(model, mode, args.repeats) for mode in ("hf", "exact", "fast")}
    print(f"{model.name}, {args.threads} threads, 196 frames (49 tokens), best of {args.repeats} per prompt, "
          f"mean over {len(PROMPTS)} prompts")
    print(f"{'decoding':10s} {'s/motion':>9s} {'vs hf':>7s}")
    for mode, seconds in timings.items():
        print(f"{mode:10s} {seconds:9.3f} {timings['hf'] / seconds:6.2f}x")
    print(f"fast mode picks exact mode's greedy token {greedy_agreement(model):.0%} of the time")
    print(f"goal: at most 1 s with the server's default (exact): {'met' if timings['exact'] <= 1 else 'NOT met'} "
          f"on this machine ({timings['exact']:.2f} s)")


if __name__ == "__main__":
    main()
