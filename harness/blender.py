"""The Blender versions the extension is tested on, and running a script in one of them
(a fresh Python with that version's bpy module) to read back its JSON result.

The versions live in harness/blender_versions.txt, which run.sh reads too. Each run gets
its own interpreter, so Blender's global state (and environment variables it reads at
start, such as BLENDER_USER_RESOURCES) cannot leak between tests.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VERSIONS_FILE = Path(__file__).with_name("blender_versions.txt")
MAIN_ENVIRONMENT = ".venv"
RESULT_MARKER = "RESULT-JSON:"


@dataclass(frozen=True)
class Blender:
    version: str        # "4.5"
    requirement: str    # "bpy==4.5.15"
    python_version: str  # "3.11"
    environment: str    # ".venv/blender-4.5", relative to the repository

    @property
    def is_main(self) -> bool:
        """The project's own environment (the one running the tests and the build tool)."""
        return self.environment == MAIN_ENVIRONMENT

    @property
    def python(self) -> str:
        if self.is_main:
            return sys.executable
        return str(REPO / self.environment / "bin" / "python")

    def missing(self) -> str | None:
        """Why this Blender cannot run here, or None when its environment is installed."""
        if self.is_main:
            return None
        stamp = REPO / self.environment / ".ready"
        if not Path(self.python).exists() or not stamp.exists():
            return (f"the Blender {self.version} environment ({self.environment}, {self.requirement} on Python "
                    f"{self.python_version}) is not installed: run `bash run.sh setup`")
        if stamp.read_text().strip() != self.requirement:
            return (f"the Blender {self.version} environment has {stamp.read_text().strip() or 'an older bpy'}, "
                    f"not {self.requirement}: run `bash run.sh setup`")
        return None

    def require(self) -> "Blender":
        """This Blender, or a failed test that says how to install it (never a skip)."""
        why = self.missing()
        if why:
            raise AssertionError(why)
        return self

    def extension_tool(self) -> Path:
        """blender_ext.py, the extension command line tool inside this version's bpy wheel."""
        site = REPO / self.environment / "lib" / f"python{self.python_version}" / "site-packages"
        found = sorted(site.glob("bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if not found:
            raise AssertionError(f"Blender {self.version}'s extension tool (blender_ext.py) is not under {site}")
        return found[-1]


def read_versions(path: Path = VERSIONS_FILE) -> tuple:
    blenders = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 4 or not fields[1].startswith("bpy=="):
            raise ValueError(f"{path.name}:{number}: expected `version bpy==X.Y.Z python environment`, got {line!r}")
        blenders.append(Blender(*fields))
    if [b.is_main for b in blenders].count(True) != 1:
        raise ValueError(f"{path.name}: exactly one version must use the main environment {MAIN_ENVIRONMENT}")
    return tuple(blenders)


BLENDERS = read_versions()
MAIN = next(b for b in BLENDERS if b.is_main)
BY_VERSION = {b.version: b for b in BLENDERS}


def run_in_blender(script: str, *args: str, env: dict | None = None, timeout: float = 300,
                   blender: Blender | None = None) -> dict:
    """Run `script` (Python source; it prints one line RESULT_MARKER + json) with
    sys.argv[1:] = args in `blender` (default: the main environment's). Raises
    AssertionError with Blender's output on failure."""
    blender = (blender or MAIN).require()
    environment = dict(os.environ, **(env or {}))
    process = subprocess.run(
        [blender.python, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )
    return read_result(process, f"Blender {blender.version}")


def read_result(process: subprocess.CompletedProcess, who: str = "Blender") -> dict:
    """The RESULT_MARKER line of a finished Blender run, or AssertionError with its output."""
    for line in reversed(process.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            if process.returncode != 0:
                break
            return json.loads(line[len(RESULT_MARKER):])
    raise AssertionError(
        f"{who} script failed (exit {process.returncode})\n--- stdout ---\n{process.stdout[-4000:]}"
        f"\n--- stderr ---\n{process.stderr[-4000:]}"
    )
