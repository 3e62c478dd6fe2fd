"""The model server: a real uvicorn process on a free loopback port, a real HTTP client."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from retarget.formats.wire import motion_to_wire
from retarget.humanml3d import joints_from_features
from retarget.motion import Motion
from harness.server import Server, free_port

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def model_dir(small_model_dir):
    return small_model_dir


@pytest.fixture(scope="module")
def server(model_dir):
    running = Server(model_dir).wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def wire_clip():
    joints = joints_from_features(np.load(DATA / "hml3d_012314_features.npy"))[:81]
    return motion_to_wire(Motion.from_positions(joints, 20.0))


def finished(server, job, timeout=60):
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = requests.get(f"{server.url}/v1/jobs/{job['id']}", timeout=5).json()
    return job


def test_health_describes_the_model(server):
    health = requests.get(server.url + "/health", timeout=5).json()
    assert health["ready"] and health["model"] == "test-small"
    assert health["architecture"]["motion_tokenizer"]["codebook_size"] == 24
    assert health["architecture"]["contract"] == "project"
    # A model without recorded sampling uses the library's (MotionGPT's) top-k 50, temperature 1.
    assert health["architecture"]["sampling"] == {"top_k": 50, "temperature": 1.0}


def test_generate_as_a_job_and_with_wait(server):
    body = {"text": "a person jumps", "frames": 40, "samples": 2, "seed": 3}
    job = requests.post(server.url + "/v1/generate", json=body, timeout=10).json()
    assert job["state"] in ("queued", "running", "done") and job["id"]
    job = finished(server, job)
    assert job["state"] == "done" and job["progress"] == 1.0
    motions = job["result"]["motions"]
    assert len(motions) == 2
    for motion in motions:
        assert motion["format"] == "motion/1"
        assert np.asarray(motion["positions"]).shape == (40, 22, 3)
        assert np.asarray(motion["rotations"]).shape == (40, 22, 4)
        assert np.all(np.isfinite(motion["positions"]))
    again = requests.post(server.url + "/v1/generate?wait=true", json=body, timeout=60).json()
    assert again["state"] == "done" and again["result"] == job["result"]  # same seed, same motions


def test_caption_predict_inbetween(server, wire_clip):
    caption = requests.post(server.url + "/v1/caption?wait=true", json={"motion": wire_clip}, timeout=60).json()
    assert caption["state"] == "done" and isinstance(caption["result"]["captions"][0], str)
    predict = requests.post(server.url + "/v1/predict?wait=true", json={"motion": wire_clip, "frames": 20}, timeout=60).json()
    assert predict["state"] == "done", predict
    assert np.asarray(predict["result"]["motions"][0]["positions"]).shape == (81 + 20, 22, 3)
    body = {"motion": wire_clip, "mask_start": 30, "mask_end": 50, "text": "a person walks"}
    filled = requests.post(server.url + "/v1/inbetween?wait=true", json=body, timeout=60).json()
    positions = np.asarray(filled["result"]["motions"][0]["positions"])
    given = np.asarray(wire_clip["positions"])
    assert positions.shape == given.shape
    assert np.abs(positions[:30] - given[:30]).max() < 1e-5 and np.abs(positions[50:] - given[50:]).max() < 1e-5


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/v1/generate", {"text": ""}, "text"),
        ("/v1/generate", {"text": "x" * 1001}, "text"),
        ("/v1/generate", {"text": "a", "frames": 5000}, "frames"),
        ("/v1/generate", {"text": "a", "samples": 99}, "samples"),
        ("/v1/generate", {"text": "a", "colour": "red"}, "colour"),
        ("/v1/caption", {"motion": {"format": "motion/2", "positions": [[[0, 0, 0]] * 22]}}, "format"),
        ("/v1/caption", {"motion": {"format": "motion/1", "positions": [[[0, 0, 0]] * 21]}}, "positions"),
        ("/v1/predict", {"motion": {"format": "motion/1", "positions": [[[0, 0, 0]] * 22]}}, "frames"),
    ],
)
def test_malformed_requests_get_422_naming_the_field(server, path, body, field):
    response = requests.post(server.url + path, json=body, timeout=10)
    assert response.status_code == 422
    assert field in json.dumps(response.json()["detail"])


def test_nan_malformed_json_and_oversized_bodies(server, wire_clip):
    nan_body = '{"motion": {"format": "motion/1", "positions": [[' + ",".join(["[NaN, 0, 0]"] * 22) + "]]}}"
    response = requests.post(server.url + "/v1/caption", data=nan_body, headers={"content-type": "application/json"}, timeout=10)
    assert response.status_code == 422
    response = requests.post(server.url + "/v1/generate", data="{not json", headers={"content-type": "application/json"}, timeout=10)
    assert response.status_code == 422
    response = requests.post(server.url + "/v1/generate", data=b"x" * (9 * 2**20), headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 413
    chunks = iter([b'{"text": ', b'"a person"}'])  # a generator body is sent chunked, without a length
    response = requests.post(server.url + "/v1/generate", data=chunks, headers={"content-type": "application/json"}, timeout=10)
    assert response.status_code == 411
    response = requests.post(server.url + "/v1/inbetween", json={"motion": wire_clip, "mask_start": 30, "mask_end": 500}, timeout=10)
    assert response.status_code == 422 and "mask_end" in response.text
    assert requests.get(server.url + "/v1/jobs/nope", timeout=5).status_code == 404
    assert requests.get(server.url + "/health", timeout=5).json()["ready"]


def test_cancel_mid_generation(server):
    # Many tokens, so the job is still running when the cancel arrives.
    job = requests.post(server.url + "/v1/generate", json={"text": "a person runs", "frames": 400, "samples": 8}, timeout=10).json()
    deadline = time.monotonic() + 30
    while requests.get(f"{server.url}/v1/jobs/{job['id']}", timeout=5).json()["progress"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    cancelled = requests.delete(f"{server.url}/v1/jobs/{job['id']}", timeout=5).json()
    assert cancelled["state"] in ("running", "cancelled")
    final = finished(server, cancelled)
    assert final["state"] == "cancelled" and final["result"] is None
    after = requests.post(server.url + "/v1/generate?wait=true", json={"text": "a person", "frames": 8}, timeout=60).json()
    assert after["state"] == "done"  # the worker is free again


def test_client_killed_mid_request_does_not_disturb_the_server(server):
    code = (f"import requests; requests.post('{server.url}/v1/generate?wait=true', "
            "json={'text': 'a person', 'frames': 400, 'samples': 4}, timeout=60)")
    client = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(1.0)
    client.kill()
    client.wait()
    result = requests.post(server.url + "/v1/generate?wait=true", json={"text": "a person", "frames": 8}, timeout=120).json()
    assert result["state"] == "done"


def test_token_is_required_when_set(model_dir):
    running = Server(model_dir, "--token", "s3cret")
    try:
        running.wait_ready(headers={"Authorization": "Bearer s3cret"})
        assert requests.get(running.url + "/health", timeout=5).status_code == 401
        assert requests.get(running.url + "/health", headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        assert requests.post(running.url + "/v1/generate", json={"text": "a"}, timeout=5).status_code == 401
    finally:
        running.stop()


def test_non_loopback_address_without_token_refuses_to_start(model_dir):
    result = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--model", str(model_dir), "--host", "0.0.0.0",
                             "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "without --token" in result.stderr


def test_openapi_documents_the_api(server):
    spec = requests.get(server.url + "/openapi.json", timeout=5).json()
    assert {"/health", "/v1/generate", "/v1/caption", "/v1/predict", "/v1/inbetween", "/v1/jobs/{job_id}"} <= set(spec["paths"])
    answer = requests.get(server.url + "/health", headers={"Origin": "http://evil.example"}, timeout=5)
    assert "access-control-allow-origin" not in answer.headers


# Fuzzing with every schemathesis check: tests/test_server_fuzz.py. Load: tests/test_server_load.py.
