"""A real model server for tests: `motiongpt serve` in its own process on a free
loopback port."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`model_dir` None serves the embedded default model; the log goes to `log_path`
    (default: beside the model directory)."""

    def __init__(self, model_dir, *extra, host="127.0.0.1", log_path=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path or Path(model_dir).parent / f"server-{self.port}.log", "w+")
        model = ["--model", str(model_dir)] if model_dir else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", *model, "--host", host, "--port", str(self.port), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, headers=None, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                health = requests.get(self.url + "/health", headers=headers, timeout=2).json()
            except (requests.ConnectionError, ValueError):
                health = {}
            if health.get("ready"):
                self.health = health
                return self
            if health.get("error"):
                raise AssertionError(f"the server could not load its model: {health['error']}")
            time.sleep(0.2)
        raise AssertionError("server not ready:\n" + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
