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


def motiongpt_command(executable: str, *args: str) -> list:
    """`motiongpt ARGS` run by `executable`, the environment's python or its motiongpt command."""
    if not executable:
        raise ServerError("no server program is set: in the extension's preferences, choose the Python "
                          "(or the motiongpt command) of the environment MotionGPT is installed in")
    path = Path(executable).expanduser()
    if not path.is_file():
        raise ServerError(f"the server program {path} does not exist (see the extension's preferences)")
    command = [str(path)] if path.name.startswith("motiongpt") else [str(path), "-m", "server.cli"]
    return command + list(args)


def server_command(executable: str, url: str, model: str = "") -> list:
    """The command line that serves `model` (a name from `motiongpt models` or a model
    directory; empty: the embedded default) on `url`'s port."""
    parts = urllib.parse.urlsplit(url)
    port = str(parts.port or 8765)
    host = parts.hostname or "127.0.0.1"
    command = motiongpt_command(executable, "serve", "--host", host, "--port", port)
    if model:
        folder = Path(model).expanduser()
        # A folder the user picked is passed as an absolute path; anything else is a name.
        command += ["--model", str(folder) if folder.is_dir() else model]
    return command


def _last_error(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def list_models(executable: str, timeout: float = 120.0) -> dict:
    """`motiongpt models --json`: {"folder", "installed": [{name, path, size, origin}],
    "downloadable": [{name, description}]}."""
    import json

    try:
        done = subprocess.run(motiongpt_command(executable, "models", "--json"), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ServerError(f"could not list the models: {error}") from None
    if done.returncode != 0:
        raise ServerError(f"could not list the models: {_last_error(done.stderr)}")
    return json.loads(done.stdout)


def model_licence(executable: str, name: str, timeout: float = 120.0) -> str:
    """The licence `motiongpt download NAME` shows (asked without accepting it, which
    downloads and writes nothing), so Blender shows the very text the command does."""
    try:
        done = subprocess.run(motiongpt_command(executable, "download", name), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ServerError(f"could not read the licence of {name}: {error}") from None
    if "--accept-licence" not in done.stderr and done.returncode != 0:
        raise ServerError(f"could not read the licence of {name}: {_last_error(done.stderr)}")
    return done.stdout.strip()


def download_model(executable: str, name: str, report_progress, should_cancel) -> str:
    """Run `motiongpt download NAME --accept-licence` (the user accepted the licence) and
    follow its progress lines; cancelling stops it, and the next download continues
    where it stopped. Returns the command's last line."""
    from .client import JobCancelled

    log = Path(tempfile.gettempdir()) / f"motiongpt-download-{os.getpid()}.log"
    command = motiongpt_command(executable, "download", name, "--accept-licence", "--progress-lines")
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    try:
        while process.poll() is None:
            if should_cancel():
                _signal(process, signal.SIGTERM)
                process.wait(timeout=20)
                raise JobCancelled("download cancelled")
            for line in reversed(log.read_text(errors="replace").splitlines()):
                if line.startswith("progress "):
                    report_progress(float(line.split()[1]))
                    break
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            _signal(process, getattr(signal, "SIGKILL", signal.SIGTERM))
            process.wait(timeout=10)
    text = log.read_text(errors="replace")
    log.unlink(missing_ok=True)
    if process.returncode != 0:
        errors = [line for line in text.splitlines() if line.startswith("motiongpt download: error:")]
        raise ServerError(errors[-1].split("error: ", 1)[1] if errors else _last_error(text))
    report_progress(1.0)
    return _last_error(text)


def restart(executable: str, url: str, model: str = "") -> bool:
    """Serve `model` instead, if this Blender started the server; False if it did not
    (a server someone else started is theirs to restart)."""
    if not running():
        return False
    stop()
    start(executable, url, model)
    return True


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
