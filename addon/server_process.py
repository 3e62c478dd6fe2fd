"""Starting and stopping a model server on this computer for the user (no bpy).

The server runs from the Python environment the project was installed into (its
`python` or its `motiongpt` command), never inside Blender's own Python: torch and
the model stay out of Blender's process.
"""

import os
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

from .client import Client, ServerError

_started = {"process": None, "log": None}


def server_command(executable: str, url: str, model: str = "") -> list:
    """The command line that serves `model` (empty: the embedded default) on `url`'s
    port. `executable` is the environment's python or its motiongpt command."""
    if not executable:
        raise ServerError("no server program is set: in the extension's preferences, choose the Python "
                          "(or the motiongpt command) of the environment MotionGPT is installed in")
    path = Path(executable).expanduser()
    if not path.is_file():
        raise ServerError(f"the server program {path} does not exist (see the extension's preferences)")
    parts = urllib.parse.urlsplit(url)
    port = str(parts.port or 8765)
    host = parts.hostname or "127.0.0.1"
    command = [str(path)] if path.name.startswith("motiongpt") else [str(path), "-m", "server.cli"]
    command += ["serve", "--host", host, "--port", port]
    if model:
        command += ["--model", str(Path(model).expanduser())]
    return command


def running() -> bool:
    process = _started["process"]
    return process is not None and process.poll() is None


def log_tail(lines: int = 8) -> str:
    if _started["log"] is None:
        return ""
    try:
        return "\n".join(Path(_started["log"]).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(executable: str, url: str, model: str = "") -> subprocess.Popen:
    """Start a server in the background (its output goes to a log file)."""
    if running():
        return _started["process"]
    command = server_command(executable, url, model)
    log = Path(tempfile.gettempdir()) / f"motiongpt-server-{os.getpid()}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    _started.update(process=process, log=str(log))
    return process


def wait_until_ready(client: Client, seconds: float = 120.0, should_cancel=None) -> dict:
    """Poll /health until the model is loaded; explain what went wrong if it never is."""
    deadline = time.monotonic() + seconds
    while True:
        process = _started["process"]
        if process is not None and process.poll() is not None:
            raise ServerError(f"the server stopped (exit {process.returncode}) while starting:\n{log_tail()}")
        try:
            health = client.health(timeout=2.0)
            if health.get("ready"):
                return health
            if health.get("error"):
                raise ServerError(f"the server could not load its model: {health['error']}")
        except ServerError as error:
            if "could not load" in str(error):
                raise
        if should_cancel is not None and should_cancel():
            raise ServerError("cancelled while the server was starting")
        if time.monotonic() > deadline:
            raise ServerError(f"the server did not become ready within {seconds:g} s:\n{log_tail()}")
        time.sleep(0.25)


def stop() -> bool:
    """Stop the server this Blender started; returns False if there was none."""
    process = _started["process"]
    if process is None or process.poll() is not None:
        _started["process"] = None
        return False
    _signal(process, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        _signal(process, getattr(signal, "SIGKILL", signal.SIGTERM))
        process.wait(timeout=10)
    _started["process"] = None
    return True


def _signal(process, number) -> None:
    """Signal the server's whole process group (POSIX), or the process (Windows)."""
    if hasattr(os, "killpg"):
        os.killpg(process.pid, number)
    else:
        process.terminate()
