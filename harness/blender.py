"""Run a script in a fresh Python with Blender's bpy module, and read back its JSON result.

Each run gets its own interpreter, so Blender's global state (and environment variables
it reads at start, such as BLENDER_USER_RESOURCES) cannot leak between tests.
"""

import json
import os
import subprocess
import sys

RESULT_MARKER = "RESULT-JSON:"


def run_in_blender(script: str, *args: str, env: dict | None = None, timeout: float = 300) -> dict:
    """Run `script` (Python source; it prints one line RESULT_MARKER + json) with
    sys.argv[1:] = args. Raises AssertionError with Blender's output on failure."""
    environment = dict(os.environ, **(env or {}))
    process = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )
    for line in reversed(process.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            if process.returncode != 0:
                break
            return json.loads(line[len(RESULT_MARKER):])
    raise AssertionError(
        f"Blender script failed (exit {process.returncode})\n--- stdout ---\n{process.stdout[-4000:]}"
        f"\n--- stderr ---\n{process.stderr[-4000:]}"
    )
