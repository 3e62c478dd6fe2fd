"""Click to keys with a model of MotionGPT's release size: from the extension's request to
the armature's pose channels, 196 frames, fast decoding, on this machine.

The model has the release's shape with random weights (T5 of flan-t5-base's shape,
12+12 layers, d_model 768; the VQ-VAE's default, which is the release's; the official
contract, prompts padded to 256 tokens), saved as a model directory and served by
`motiongpt serve --decoding fast` on 127.0.0.1. One click is what the extension does:
POST /v1/generate?wait=true, read the motion from the wire format, retarget it onto a
humanoid rig's pose channels (retarget.plan.scene_pose, the extension's own planning).
Writing those channels as keys in Blender is left out: benchmarks/keyframes.py measures
it (a few milliseconds for 196 frames).

The reference, in the same run, is the same click against the same model served with
`--decoding hf` (Hugging Face generate). Its text vocabulary is the test tokenizer's,
not the release's 32100 tokens: generate computes every row of the output layer, so with
the release's vocabulary the reference would be slower and the printed ratio larger.
Goal: at most 2 s on 2 cores.

    .venv/bin/python benchmarks/click_to_keys.py [--clicks 3] [--threads 2]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.models import caption_corpus
from harness.rigs import as_rig, humanoid
from harness.server import Server
from retarget import plan
from retarget.contract import OFFICIAL_CONTRACT, model_contract
from retarget.formats.wire import motion_from_wire
from retarget.mapping import map_bones
from server.model.motiongpt import MotionGPT
from server.model.store import save_model_dir
from server.model.tokenizer import train_tokenizer
from server.model.vqvae import VQVAEConfig

RELEASE_T5 = dict(d_model=768, d_ff=2048, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12,
                  feed_forward_proj="gated-gelu", dropout_rate=0.0)
BODY = {"text": "a person walks forward and waves with the right hand", "frames": 196, "seed": 1}
GOAL_SECONDS = 2.0
SCENE_FPS = 24.0


def release_sized_model(folder: Path) -> Path:
    tokenizer = train_tokenizer(caption_corpus(), 120, VQVAEConfig().codebook_size, folder / "tokenizer")
    model = MotionGPT.untrained(tokenizer, VQVAEConfig(), RELEASE_T5, name="release-sized")
    model.contract = model_contract(OFFICIAL_CONTRACT)
    return save_model_dir(model, folder / "model")


def click(server: Server, rig, bone_map) -> float:
    """Seconds from the request to the pose channels the extension would key."""
    start = time.perf_counter()
    response = requests.post(server.url + "/v1/generate?wait=true", json=BODY, timeout=3600)
    job = response.json()
    if job.get("state") != "done":
        raise RuntimeError(f"the server did not finish the job: {job}")
    pose = plan.scene_pose(motion_from_wire(job["result"]["motions"][0]), SCENE_FPS, rig, bone_map, foot_lock=True)
    elapsed = time.perf_counter() - start
    if len(pose.rotations) < BODY["frames"]:
        raise RuntimeError(f"{len(pose.rotations)} frames of pose channels for a {BODY['frames']}-frame request")
    return elapsed


def started(model_dir: Path, decoding: str, threads: int) -> Server:
    server = Server(model_dir, "--decoding", decoding, "--threads", str(threads), "--device", "cpu")
    try:
        # wait_ready rides out health checks a busy machine answers late (loading 1 GB).
        return server.wait_ready(timeout=900)
    except BaseException:
        server.stop()
        raise


def best_clicks(model_dir: Path, decoding: str, clicks: int, threads: int, rig, bone_map) -> float:
    server = started(model_dir, decoding, threads)
    try:
        click(server, rig, bone_map)  # warm-up: the first request builds the decoder
        return min(click(server, rig, bone_map) for _ in range(clicks))
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clicks", type=int, default=3, help="timed clicks per server (the best counts)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model_dir = release_sized_model(Path(tempfile.mkdtemp()))
    rig = as_rig(humanoid())
    bone_map = map_bones(rig)

    print(f"click to keys, release-sized model (random weights), {BODY['frames']} frames, {args.threads} threads, "
          f"best of {args.clicks}", flush=True)
    fast = best_clicks(model_dir, "fast", args.clicks, args.threads, rig, bone_map)
    print(f"fast decoding   {fast:6.2f} s   {fast / GOAL_SECONDS:5.2f}x the {GOAL_SECONDS:g} s goal "
          f"({'met' if fast <= GOAL_SECONDS else 'NOT met'})", flush=True)
    reference = best_clicks(model_dir, "hf", max(1, args.clicks - 1), args.threads, rig, bone_map)
    print(f"generate (ref)  {reference:6.2f} s   fast is {reference / fast:.2f}x faster")


if __name__ == "__main__":
    main()
