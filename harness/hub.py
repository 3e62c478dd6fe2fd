"""A stand-in for the Hugging Face hub on 127.0.0.1, for `motiongpt download`.

It answers what huggingface_hub 0.36 asks (file_download.py):
- HEAD / GET /{repo}/resolve/{revision}/{filename}: X-Repo-Commit, ETag (git's blob
  hash), for LFS files X-Linked-Etag (the content's sha256) and X-Linked-Size,
  Content-Length, and 206 Partial Content for `Range: bytes=N-` (resuming);
- GET /api/models/{repo}/revision/{revision}: the files with sizes and checksums;
- 404 with X-Error-Code EntryNotFound / RepoNotFound for what it does not have.

Faults a test can ask for: `cut[filename] = [offsets]` ends the next GETs of the file
after the byte at each offset (one offset per GET, the connection is closed mid-body);
`corrupt.add(filename)` serves a byte flipped under the right checksum headers;
`throttle[filename] = bytes_per_second` sends the file's next GET slowly (to cancel a download).
Every request is recorded in `requests` as (method, path, Range header).
"""

import hashlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Files the real hub keeps in LFS in these repositories (the others are plain git blobs).
LFS_SUFFIXES = (".tar", ".bin", ".safetensors", ".model", ".ckpt", ".pt")


def git_blob_hash(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubRepository:
    def __init__(self, files: dict[str, bytes], commit: str):
        self.files = files
        self.commit = commit

    def headers(self, filename: str) -> dict:
        data = self.files[filename]
        headers = {"X-Repo-Commit": self.commit, "ETag": f'"{git_blob_hash(data)}"', "Accept-Ranges": "bytes"}
        if filename.endswith(LFS_SUFFIXES):
            headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))})
        return headers


class StandInHub:
    """`with StandInHub({"org/repo": {"file": b"..."}}) as hub:` serves at hub.endpoint."""

    def __init__(self, repositories: dict[str, dict[str, bytes]]):
        self.repositories = {
            repo: HubRepository(files, hashlib.sha1(repo.encode()).hexdigest()) for repo, files in repositories.items()
        }
        self.cut: dict[str, list[int]] = {}
        self.corrupt: set[str] = set()
        self.throttle: dict[str, int] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def ranges(self, filename: str) -> list[str | None]:
        """The Range header of each GET of `filename`, in order."""
        return [r for method, path, r in self.requests if method == "GET" and path.endswith("/" + filename)]

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # the tests read hub.requests instead
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _send(self, status, headers, body=b""):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            def _not_found(self, code):
                self._send(404, {"X-Error-Code": code, "Content-Length": "0"})

            def _answer(self, body):
                with hub._lock:
                    hub.requests.append((self.command, self.path, self.headers.get("Range")))
                api = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", self.path)
                if api:
                    return self._api(api.group(1))
                resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path)
                if not resolve:
                    return self._send(200 if self.path == "/" else 404, {"Content-Length": "0"})
                repository = hub.repositories.get(resolve.group(1))
                if repository is None:
                    return self._not_found("RepoNotFound")
                if resolve.group(2) not in ("main", repository.commit):
                    return self._not_found("RevisionNotFound")
                filename = resolve.group(3)
                if filename not in repository.files:
                    return self._not_found("EntryNotFound")
                self._file(repository, filename)

            def _api(self, repo):
                repository = hub.repositories.get(repo)
                if repository is None:
                    return self._not_found("RepoNotFound")
                siblings = []
                for name, data in repository.files.items():
                    entry = {"rfilename": name, "size": len(data), "blobId": git_blob_hash(data)}
                    if name.endswith(LFS_SUFFIXES):
                        entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                    siblings.append(entry)
                body = json.dumps({"id": repo, "sha": repository.commit, "siblings": siblings}).encode()
                self._send(200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, body)

            def _file(self, repository, filename):
                data = repository.files[filename]
                if filename in hub.corrupt:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                headers = repository.headers(filename)
                start = 0
                wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if wanted:
                    start = int(wanted.group(1))
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                headers["Content-Length"] = str(len(data) - start)
                status = 206 if wanted else 200
                if self.command == "HEAD":
                    return self._send(status if wanted else 200, headers)
                with hub._lock:
                    cuts = hub.cut.get(filename) or []
                    stop = cuts.pop(0) if cuts else None
                with hub._lock:
                    rate = hub.throttle.pop(filename, None)
                if rate:
                    return self._send_slowly(status, headers, data[start:], rate)
                if stop is None or stop <= start:
                    return self._send(status, headers, data[start:])
                # Headers promise the whole rest; the body ends at `stop` and the
                # connection closes, as a dropped network does.
                self._send(status, headers, data[start:stop])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def _send_slowly(self, status, headers, body, rate):
                self._send(status, headers)
                step = max(1, rate // 10)
                try:
                    for offset in range(0, len(body), step):
                        self.wfile.write(body[offset:offset + step])
                        time.sleep(0.1)
                except OSError:  # the client went away (a cancelled download)
                    self.close_connection = True

        return Handler


def release_repositories(folder) -> dict[str, dict[str, bytes]]:
    """MotionGPT's release as the hub holds it, with random weights: the checkpoint in the
    release's container (official-size VQ-VAE, a small T5 standing in for flan-t5-base's)
    and flan-t5-base's config and tokenizer files (a small SentencePiece vocabulary with
    T5's 100 <extra_id_*> tokens). Written to `folder` too: `folder/motiongpt_s3_h3d.tar`
    and `folder/flan-t5-base/` load with store.load_official directly."""
    from pathlib import Path

    import torch
    from transformers import T5Config, T5ForConditionalGeneration, T5TokenizerFast

    from harness.models import SMALL_T5, caption_corpus
    from server.model.catalog import FLAN_T5_FILES
    from server.model.tokenizer import train_tokenizer
    from server.model.vqvae import VQVAE

    folder = Path(folder)
    t5_dir = folder / "flan-t5-base"
    train_tokenizer(caption_corpus(), vocab_size=120, codebook_size=512, directory=folder / "spiece")
    text_tokenizer = T5TokenizerFast(vocab_file=str(folder / "spiece" / "spiece.model"), extra_ids=100, legacy=True)
    text_tokenizer.save_pretrained(str(t5_dir))
    (t5_dir / "config.json").write_text(json.dumps({**SMALL_T5, "model_type": "t5", "vocab_size": 32128,
                                                    "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}))
    motion_tokens = 512 + 3
    generator = torch.Generator().manual_seed(15)
    config = T5Config(**{**SMALL_T5, "vocab_size": len(text_tokenizer) + motion_tokens, "tie_word_embeddings": False})
    torch.manual_seed(15)
    lm = T5ForConditionalGeneration(config)
    state = {f"vae.{k}": torch.randn(v.shape, generator=generator) * 0.02 for k, v in VQVAE().state_dict().items()}
    state.update({f"lm.language_model.{k}": v for k, v in lm.state_dict().items()})
    state.update({f"_losses.losses_val.{n}": torch.tensor(1.0) for n in ("total", "recons")})
    state["metrics.M2TMetrics.t2m_textencoder.weight"] = torch.zeros(3)
    checkpoint = folder / "motiongpt_s3_h3d.tar"
    torch.save({"epoch": 10, "state_dict": state, "lr_schedulers": [], "hyper_parameters": {"lr": 2e-4}}, checkpoint)
    return {"OpenMotionLab/MotionGPT-base": {checkpoint.name: checkpoint.read_bytes()},
            "google/flan-t5-base": {name: (t5_dir / name).read_bytes() for name in FLAN_T5_FILES}}
