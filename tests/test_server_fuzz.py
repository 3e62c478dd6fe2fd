"""schemathesis against a real server with every check on: the schema says what the
server does (statuses, types, limits, responses), for valid and invalid requests.

This module is also the schemathesis hooks module (SCHEMATHESIS_HOOKS) of that run. One
hook, `filter_failure`, drops exactly one kind of failure: a schema-valid request
refused with 422 for a rule that joins fields and that JSON Schema cannot state (a
motion's length once resampled to 20 fps, a gap inside the motion, joints with bones of
no length), and only after checking here, independently of the server, that the request
does break that documented rule. Every other failure counts.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from harness.server import Server

try:
    import schemathesis
except ImportError:  # the server's own process never imports this module
    schemathesis = None

MODEL_FPS = 20
MIN_INPUT, MAX_INPUT = 5, 2000  # caption and predict (api.py, contract.MIN_INPUT_FRAMES)
MIN_INBETWEEN, MAX_INBETWEEN = 13, 400  # contract.MIN_INBETWEEN_FRAMES, contract.MAX_FRAMES
TOKEN_FRAMES = 4


def frames_at_model_fps(frames: int, fps: float) -> int:
    if frames < 2 or abs(fps - MODEL_FPS) < 1e-9:
        return frames
    return math.floor((frames - 1) * MODEL_FPS / fps + 1e-6) + 1


def breaks_documented_rule(path: str, body: dict, rule: str) -> bool:
    """Whether `body` breaks the rule the server named, recomputed here."""
    motion = body.get("motion") or {}
    positions = motion.get("positions") or []
    frames = frames_at_model_fps(len(positions), motion.get("fps", MODEL_FPS))
    if rule == "motion_length":
        least, most = (MIN_INBETWEEN, MAX_INBETWEEN) if path.endswith("inbetween") else (MIN_INPUT, MAX_INPUT)
        return not least <= frames <= most
    if rule == "mask":
        start, end = body["mask_start"], body["mask_end"]
        tokens = (frames - 1) // TOKEN_FRAMES
        return not start < end < frames or (start < TOKEN_FRAMES and end > (tokens - 1) * TOKEN_FRAMES)
    if rule == "motion_shape":
        import numpy as np

        from retarget.motion import Motion

        try:
            with np.errstate(all="ignore"):
                placed = Motion.from_positions(np.asarray(positions, dtype=float), float(motion.get("fps", 20)))
                placed = placed.resampled(float(MODEL_FPS)).positions
        except ValueError:
            return True
        return not np.all(np.isfinite(placed))
    return False


if schemathesis is not None:
    @schemathesis.hook
    def filter_failure(context, failure, case, response):
        if type(failure).__name__ != "RejectedPositiveData" or response.status_code != 422:
            return True
        try:
            issues = response.json()["detail"]
            return not (issues and all(breaks_documented_rule(case.path, case.body, issue["type"]) for issue in issues))
        except (ValueError, KeyError, TypeError):
            return True


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory):
    from server.model.store import save_model_dir
    from harness.models import small_model

    folder = tmp_path_factory.mktemp("fuzz")
    model_dir = save_model_dir(small_model(folder), folder / "model")
    # A short queue keeps every wait=true request short: a full queue answers 429 at once.
    running = Server(model_dir, "--max-queued", "2", "--threads", "1").wait_ready()
    yield running
    running.stop()


def test_schemathesis_every_check(fuzzed_server, tmp_path):
    report = tmp_path / "report.json"
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": "tests.test_server_fuzz",
           "PYTHONPATH": str(Path(__file__).parent.parent)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", fuzzed_server.url + "/openapi.json",
         "--checks", "all", "--max-response-time", "60", "--max-examples", "48", "--request-timeout", "60",
         "--phases", "examples,coverage,fuzzing,stateful", "--seed", "1", "--suppress-health-check", "all", "--no-shrink",
         "--report", "json", "--report-json-path", str(report)],
        capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    summary = json.loads(report.read_text())
    cases, operations = summary["test_cases"], summary["operations"]
    accepted = {name: sum(phase["accepted"] for phase in rates.values()) for name, rates in summary["valid_rates"].items()}
    print(f"\nschemathesis: {cases['generated']} cases, {operations['tested']} operations, {cases['with_failures']} with "
          f"failures, {cases['errored']} errored, {summary['filtered']} failures dropped by filter_failure; "
          f"schema-valid requests accepted per operation: {accepted}")
    assert cases["generated"] >= 1000 and cases["with_failures"] == 0 and cases["errored"] == 0, output[-3000:]
    assert operations["tested"] == operations["total"] == 7
    assert all(phase["status"] == "success" for name, phase in summary["phases"].items() if name != "examples")
    assert all(accepted[operation] > 0 for operation in accepted), accepted  # every operation did real work
    health = requests.get(fuzzed_server.url + "/health", timeout=5).json()
    assert health["ready"]
    assert fuzzed_server.process.poll() is None
