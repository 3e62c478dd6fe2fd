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

    def __init__(self, model_dir, *extra, host="127.0.0.1", log_path=None, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path or Path(model_dir).parent / f"server-{self.port}.log", "w+")
        model = ["--model", str(model_dir)] if model_dir else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", *model, "--host", host, "--port", str(self.port), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env=None if env is None else {**os.environ, **env})

    def wait_ready(self, headers=None, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                health = requests.get(self.url + "/health", headers=headers, timeout=2).json()
            except (requests.ConnectionError, requests.Timeout, ValueError):  # a loaded machine answers late
                health = {}
            if health.get("ready"):
                self.health = health
                return self
            if health.get("error"):
                raise AssertionError(f"the server could not load its model: {health['error']}")
            time.sleep(0.2)
        raise AssertionError("server not ready:\n" + self.output())

    def rss_bytes(self) -> int:
        """The server process's resident memory (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS for the server process")

    def wait_for_output(self, pattern, timeout=30.0):
        """The first log line matching the regular expression `pattern` (waits for it)."""
        import re

        deadline = time.monotonic() + timeout
        while True:
            for line in self.output().splitlines():
                if re.search(pattern, line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matches {pattern!r}:\n" + self.output()[-3000:])
            time.sleep(0.05)

    def output(self):
        # Read through a new file object: the server writes through the same open file
        # as self.log, so seeking self.log would move the server's write position.
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
