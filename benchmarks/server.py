"""The server's overhead: one 196-frame generation through HTTP against the direct
Python call, in the same run, and jobs per minute with 8 concurrent clients.

No trained model ships yet, so the model is a random-weight one of a size the embedded
model may have (T5 with d_model 256, 4+4 layers; VQ-VAE width 256). Target: HTTP under
1.1x the direct call.

    .venv/bin/python benchmarks/server.py
"""

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.model.motiongpt import MotionGPT, Sampling
from server.model.store import save_model_dir
from server.model.tokenizer import train_tokenizer
from server.model.vqvae import VQVAEConfig
from harness.models import caption_corpus
from harness.server import Server

T5 = dict(d_model=256, d_ff=1024, d_kv=32, num_heads=8, num_layers=4, num_decoder_layers=4,
          feed_forward_proj="gated-gelu", dropout_rate=0.0)
BODY = {"text": "a person walks forward", "frames": 196, "seed": 1}


def main():
    folder = Path(tempfile.mkdtemp())
    tokenizer = train_tokenizer(caption_corpus(), 120, 512, folder / "tokenizer")
    model = MotionGPT.untrained(tokenizer, VQVAEConfig(width=256, code_dim=256), T5, name="benchmark")
    model_dir = save_model_dir(model, folder / "model")
    model.generate(**{k: BODY[k] for k in ("text", "frames", "seed")})  # warm-up

    server = Server(model_dir).wait_ready()
    try:
        requests.post(server.url + "/v1/generate?wait=true", json=BODY, timeout=120)  # warm-up
        direct = min(_timed(lambda: model.generate(BODY["text"], BODY["frames"], seed=BODY["seed"], sampling=Sampling()))
                     for _ in range(5))
        http = min(_timed(lambda: requests.post(server.url + "/v1/generate?wait=true", json=BODY, timeout=120).json())
                   for _ in range(5))

        def client(_):
            done = 0
            for _ in range(3):
                response = requests.post(server.url + "/v1/generate?wait=true", json=BODY, timeout=600)
                done += response.status_code == 200 and response.json()["state"] == "done"
            return done

        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            completed = sum(pool.map(client, range(8)))
        elapsed = time.perf_counter() - start
    finally:
        server.stop()
    print(f"196-frame generation: direct {direct * 1e3:.0f} ms, HTTP {http * 1e3:.0f} ms, "
          f"overhead ratio {http / direct:.3f}x (target < 1.1x: {'met' if http / direct < 1.1 else 'NOT met'})")
    print(f"8 concurrent clients: {completed} jobs in {elapsed:.1f} s = {completed / elapsed * 60:.0f} jobs/minute")


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
