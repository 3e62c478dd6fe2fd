"""The server under attack: every limit checked before a job exists (on the motion as
resampled to 20 fps), strict types, the schema saying what the server does, the Host
header, the token kept out of the process list, read deadlines, cancellation of every
task and of abandoned waits, one whole log line per response, graceful shutdown.

Each test drives a real `motiongpt serve` process on a loopback port (tests/servers.py)
with a small untrained model."""

import json
import os
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from retarget.contract import MAX_FRAMES, MAX_TEXT_CHARS, MIN_INBETWEEN_FRAMES, MIN_INPUT_FRAMES
from retarget.formats.wire import motion_to_wire
from retarget.humanml3d import joints_from_features
from retarget.motion import Motion
from harness.server import Server

DATA = Path(__file__).parent / "data"
REQUEST_TIMEOUT = 2  # the read deadline the main server gets, in seconds
REQUEST_LINE = re.compile(r"^(GET|POST|DELETE|PUT|PATCH|HEAD|OPTIONS) \S+ \d{3} \d+\.\d{3}s")
JOB_LINE = re.compile(r"^job [0-9a-f]{32} task=\w+ .*state=(done|failed|cancelled)")


@pytest.fixture(scope="module")
def model_dir(small_model_dir):
    return small_model_dir


@pytest.fixture(scope="module")
def server(model_dir):
    running = Server(model_dir, "--request-timeout", str(REQUEST_TIMEOUT), "--threads", "1").wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def joints():
    return joints_from_features(np.load(DATA / "hml3d_012314_features.npy"))


def wire(joints, frames, fps=20.0):
    """`frames` frames of the clip (repeated as needed) as a wire motion at `fps`."""
    positions = np.concatenate([joints] * (frames // len(joints) + 1))[:frames]
    return motion_to_wire(Motion.from_positions(positions, fps))


def positions_only(joints, frames, fps=20.0):
    positions = np.concatenate([joints] * (frames // len(joints) + 1))[:frames]
    return {"format": "motion/1", "fps": fps, "positions": np.round(positions, 4).tolist()}


def job_lines(server):
    return [line for line in server.output().splitlines() if line.startswith("job ")]


def post(server, path, body, **kwargs):
    return requests.post(server.url + path, json=body, timeout=kwargs.pop("timeout", 60), **kwargs)


def detail(response) -> str:
    return json.dumps(response.json()["detail"])


# --- 1. limits on the motion as processed, before a job; heavy work off the event loop ---------


def test_motion_length_is_limited_after_resampling_and_health_never_stalls(server, joints):
    # 2,000 frames at 1 fps become 39,981 frames at 20 fps: over the 2,000 the server reads.
    # Resampling that many frames takes about a second; the server must refuse it without
    # doing it, and answer /health meanwhile.
    # Encoded once: the clients' own JSON encoding would hold this process's GIL and
    # delay the /health poller.
    slow_motion = json.dumps({"motion": positions_only(joints, 2000, fps=1.0)}).encode()
    before = len(job_lines(server))
    latencies, stop = [], threading.Event()

    def poll_health():
        while not stop.is_set():
            started = time.monotonic()
            assert requests.get(server.url + "/health", timeout=30).status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda _: requests.post(server.url + "/v1/caption", data=slow_motion, timeout=60,
                                                              headers={"Content-Type": "application/json"}), range(4)))
    finally:
        stop.set()
        poller.join()
    for response in responses:
        assert response.status_code == 422
        assert "positions" in detail(response) and "39981 frames" in detail(response) and "2000" in detail(response)
    assert len(job_lines(server)) == before  # no job was created
    # Parsing a body holds the GIL (about 0.1 s per MB on an idle core), so /health may wait
    # for one parse; resampling 39,981 frames four times on the event loop took seconds.
    assert max(latencies) < 2.0, latencies
    # Below 1 fps is refused by the schema itself.
    response = post(server, "/v1/caption", {"motion": positions_only(joints, 20, fps=0.25)})
    assert response.status_code == 422 and "fps" in detail(response)


def test_a_motion_that_is_long_only_before_resampling_is_accepted(server, joints):
    # 400 frames at 100 fps are 80 frames at 20 fps: within every limit.
    response = post(server, "/v1/caption?wait=true", {"motion": wire(joints, 400, fps=100.0)})
    assert response.status_code == 200 and response.json()["state"] == "done", response.text


# --- 2. temperature ------------------------------------------------------------------------------


def test_temperature_is_bounded_and_sampling_stays_finite(server):
    response = post(server, "/v1/generate", {"text": "a person walks", "frames": 8, "temperature": 1e-38})
    assert response.status_code == 422 and "temperature" in detail(response) and "0.001" in detail(response)
    for seed in range(3):
        body = {"text": "a person walks", "frames": 16, "temperature": 1e-3, "top_k": 1000, "seed": seed}
        job = post(server, "/v1/generate?wait=true", body).json()
        assert job["state"] == "done", job
        assert np.all(np.isfinite(job["result"]["motions"][0]["positions"]))


# --- 3. refused up front, naming the limit -------------------------------------------------------


def refused_cases(joints):
    clip = lambda frames, fps=20.0: wire(joints, frames, fps)  # noqa: E731
    return [
        ("/v1/generate", {"text": " \t\n "}, "text"),
        ("/v1/predict", {"motion": clip(40), "frames": 20, "text": "   "}, "text"),
        ("/v1/caption", {"motion": clip(1)}, f"{MIN_INPUT_FRAMES}"),
        ("/v1/caption", {"motion": clip(4)}, f"{MIN_INPUT_FRAMES}"),
        ("/v1/caption", {"motion": clip(30, fps=200.0)}, f"needs {MIN_INPUT_FRAMES}"),  # 3 frames at 20 fps
        ("/v1/predict", {"motion": clip(4), "frames": 20}, f"{MIN_INPUT_FRAMES}"),
        ("/v1/inbetween", {"motion": clip(12), "mask_start": 4, "mask_end": 8}, f"{MIN_INBETWEEN_FRAMES}"),
        ("/v1/inbetween", {"motion": clip(60, fps=120.0), "mask_start": 4, "mask_end": 8},
         f"needs {MIN_INBETWEEN_FRAMES} to {MAX_FRAMES}"),  # 10 frames at 20 fps
        ("/v1/inbetween", {"motion": clip(300, fps=10.0), "mask_start": 40, "mask_end": 80},
         f"needs {MIN_INBETWEEN_FRAMES} to {MAX_FRAMES}"),  # 599 frames at 20 fps
        ("/v1/inbetween", {"motion": clip(21), "mask_start": 1, "mask_end": 20}, "covers every"),
        ("/v1/inbetween", {"motion": clip(21), "mask_start": 10, "mask_end": 21}, "mask_end"),
    ]


def test_bad_requests_are_refused_before_a_job_exists(server, joints):
    before = len(job_lines(server))
    for path, body, named in refused_cases(joints):
        response = post(server, path, body)
        assert response.status_code == 422, (path, named, response.text)
        assert named in detail(response), (path, named, response.text)
    assert len(job_lines(server)) == before
    response = post(server, "/v1/generate", {"text": "x" * (MAX_TEXT_CHARS + 1)})
    assert response.status_code == 422 and str(MAX_TEXT_CHARS) in detail(response)


# --- 9. strict types, the schema, Allow --------------------------------------------------------------


@pytest.mark.parametrize("body,field", [({"text": "a", "greedy": 0}, "greedy"), ({"text": "a", "seed": False}, "seed"),
                                        ({"text": "a", "seed": "1"}, "seed"), ({"text": "a", "top_k": 2.5}, "top_k"),
                                        ({"text": "a", "temperature": "1"}, "temperature")])
def test_types_are_strict(server, body, field):
    response = post(server, "/v1/generate", body)
    assert response.status_code == 422 and field in detail(response)


def test_the_schema_documents_answers_limits_and_results(server):
    spec = requests.get(server.url + "/openapi.json", timeout=5).json()
    for task in ("generate", "caption", "predict", "inbetween"):
        answers = spec["paths"][f"/v1/{task}"]["post"]["responses"]
        assert {"200", "400", "401", "411", "413", "422", "429"} <= set(answers), (task, sorted(answers))
    for method in ("get", "delete"):
        assert {"200", "400", "401", "404"} <= set(spec["paths"]["/v1/jobs/{job_id}"][method]["responses"])
    schemas = spec["components"]["schemas"]
    positions = schemas["MotionIn"]["properties"]["positions"]
    assert positions["minItems"] == MIN_INPUT_FRAMES
    assert positions["items"]["minItems"] == positions["items"]["maxItems"] == 22
    assert positions["items"]["items"]["minItems"] == positions["items"]["items"]["maxItems"] == 3
    assert schemas["InbetweenMotion"]["properties"]["positions"]["minItems"] == MIN_INBETWEEN_FRAMES
    assert "20 fps" in positions["description"]
    assert len(schemas["MotionIn"]["properties"]["joint_names"]["const"]) == 22
    temperature = schemas["Sampling" if "Sampling" in schemas else "GenerateRequest"]["properties"]["temperature"]
    assert [option.get("minimum") for option in temperature["anyOf"]] == [1e-3, None]  # or null: the model's own
    assert "the model's own" in temperature["description"]
    assert schemas["GenerateRequest"]["properties"]["greedy"]["type"] == "boolean"
    motions = schemas["JobResult"]["properties"]["motions"]["anyOf"][0]
    assert motions["items"] == {"$ref": "#/components/schemas/MotionOut"}
    assert schemas["Health"]["properties"]["architecture"]["anyOf"][0] == {"$ref": "#/components/schemas/Architecture"}


def test_405_on_a_job_lists_every_method(server):
    response = requests.put(server.url + "/v1/jobs/nope", json={}, timeout=5)
    assert response.status_code == 405
    assert {"GET", "DELETE"} <= {m.strip() for m in response.headers["allow"].split(",")}


def test_delete_cancels_and_forgets(server):
    job = post(server, "/v1/generate", {"text": "a person runs", "frames": 400, "samples": 8}).json()
    gone = requests.delete(f"{server.url}/v1/jobs/{job['id']}", timeout=5).json()
    assert gone["state"] == "cancelled" and gone["error"]
    assert requests.get(f"{server.url}/v1/jobs/{job['id']}", timeout=5).status_code == 404
    assert requests.delete(f"{server.url}/v1/jobs/{job['id']}", timeout=5).status_code == 404


# --- 4. cancellation: every task, and a wait whose client went away --------------------------------


def test_a_caption_can_be_cancelled(server, joints):
    # Queue it behind a long generation, then cancel it: it never runs.
    blocker = post(server, "/v1/generate", {"text": "a person runs", "frames": 400, "samples": 8}).json()
    caption = post(server, "/v1/caption", {"motion": wire(joints, 120)}).json()
    cancelled = requests.delete(f"{server.url}/v1/jobs/{caption['id']}", timeout=5).json()
    assert cancelled["task"] == "caption" and cancelled["state"] == "cancelled"
    requests.delete(f"{server.url}/v1/jobs/{blocker['id']}", timeout=5)
    server.wait_for_output(rf"job {caption['id']} task=caption .*state=cancelled")


def raw_request(server, method, path, body: bytes = b"", headers=None) -> socket.socket:
    """A request sent over a plain socket, left open."""
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(headers or [])]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return connection


def test_a_job_whose_waiting_client_left_is_cancelled(server):
    body = json.dumps({"text": "a person runs in circles", "frames": 400, "samples": 8, "seed": 7}).encode()
    connection = raw_request(server, "POST", "/v1/generate?wait=true", body)
    # The job is queued or running (8 x 100 tokens once ended inside a 1 s wait on a fast,
    # idle machine), its id known to nobody.
    time.sleep(0.3)
    connection.close()
    line = server.wait_for_output(r"job \w+ task=generate frames=400 state=cancelled .*the client waiting for it went away",
                                  timeout=15)
    assert "was=running" in line or "was=queued" in line
    # The worker is free: a short job finishes at once.
    started = time.monotonic()
    assert post(server, "/v1/generate?wait=true", {"text": "a person", "frames": 8}).json()["state"] == "done"
    assert time.monotonic() - started < 10


# --- 6. read deadlines ---------------------------------------------------------------------------


def closed_within(connection: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within `seconds`, and what it sent."""
    connection.settimeout(seconds)
    received = b""
    try:
        while True:
            chunk = connection.recv(4096)
            if not chunk:
                return True, received
            received += chunk
    except (socket.timeout, TimeoutError):
        return False, received
    except ConnectionResetError:
        return True, received
    finally:
        connection.close()


@pytest.mark.parametrize("sent", [
    b"",  # connects and says nothing
    b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",  # half the headers
    b"POST /v1/generate HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te",
])
def test_a_slow_client_is_closed_within_the_limit(server, sent):
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    started = time.monotonic()
    connection.sendall(sent.replace(b"HOST", f"127.0.0.1:{server.port}".encode()))
    closed, received = closed_within(connection, REQUEST_TIMEOUT + 3)
    assert closed, "the server kept the connection open"
    assert REQUEST_TIMEOUT - 0.5 < time.monotonic() - started < REQUEST_TIMEOUT + 3
    assert received == b"" or received.startswith(b"HTTP/1.1 408")
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


# --- 7. one whole log line per response ----------------------------------------------------------


def settled_log_start(server) -> int:
    """The server's log length once every earlier request's line is in it: a marker
    request's own line is waited for (lines come in order), so a line an earlier test's
    request logs late is not counted as this test's."""
    marker = f"/v1/jobs/marker{time.monotonic_ns()}"
    assert requests.get(server.url + marker, timeout=10).status_code == 404
    line = server.wait_for_output(rf"^GET {re.escape(marker)} 404 ", timeout=10)
    return server.output().splitlines().index(line) + 1


def test_every_response_is_one_whole_log_line(server, joints):
    start = settled_log_start(server)
    made = []

    def client(number):
        for k in range(6):
            kind = (number + k) % 6
            if kind == 0:
                made.append(("GET /health 200", requests.get(server.url + "/health", timeout=10).status_code))
            elif kind == 1:
                made.append(("POST /v1/generate 413", requests.post(server.url + "/v1/generate", data=b"x" * (9 * 2**20),
                                                                    timeout=30).status_code))
            elif kind == 2:
                chunks = iter([b'{"text": ', b'"a"}'])
                made.append(("POST /v1/generate 411", requests.post(server.url + "/v1/generate", data=chunks,
                                                                    timeout=10).status_code))
            elif kind == 3:
                made.append(("GET /health 400", requests.get(server.url + "/health", headers={"Host": "evil.example"},
                                                             timeout=10).status_code))
            elif kind == 4:
                made.append(("POST /v1/generate 422", post(server, "/v1/generate", {"text": " "}).status_code))
            else:
                made.append(("GET /v1/jobs/nope 404", requests.get(server.url + "/v1/jobs/nope", timeout=10).status_code))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    for expected, status in made:
        assert expected.endswith(str(status)), (expected, status)
    time.sleep(0.3)
    lines = server.output().splitlines()[start:]
    request_lines = [line for line in lines if REQUEST_LINE.match(line)]
    assert all(REQUEST_LINE.match(line) or JOB_LINE.match(line) for line in lines), lines
    for expected in {e for e, _ in made}:
        assert sum(line.startswith(expected + " ") for line in request_lines) == sum(e == expected for e, _ in made), expected
    assert len(request_lines) == len(made)


# --- 8. Host and token -------------------------------------------------------------------------------


@pytest.mark.parametrize("host,status", [
    ("127.0.0.1:{port}", 200), ("localhost:{port}", 200), ("[::1]:{port}", 200), ("LOCALHOST:{port}", 200),
    ("evil.example:{port}", 400), ("127.0.0.1.nip.io:{port}", 400), ("127.0.0.1:1", 400), ("localhost", 400), ("", 400),
])
def test_the_host_header_must_name_this_server(server, host, status):
    response = requests.get(server.url + "/health", headers={"Host": host.format(port=server.port)}, timeout=5)
    assert response.status_code == status, response.text
    if status == 400:
        assert "Host" in response.json()["detail"]
        job = requests.post(server.url + "/v1/generate", json={"text": "a person jumps"},
                            headers={"Host": host.format(port=server.port)}, timeout=5)
        assert job.status_code == 400


def test_the_names_a_server_answers_to():
    from server.app import served_hosts

    assert served_hosts("127.0.0.1", 8765) == {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}
    assert served_hosts("::1", 8765) == served_hosts("localhost", 8765) == served_hosts("127.0.0.1", 8765)
    assert served_hosts("192.168.1.5", 80, ["Box.local"]) == {"192.168.1.5:80", "192.168.1.5", "box.local:80", "box.local"}
    assert served_hosts("fe80::1", 9000) == {"[fe80::1]:9000"}
    assert served_hosts("0.0.0.0", 8765) is None  # any address: the required token guards it


def test_token_file_and_environment(tmp_path, monkeypatch):
    from server.cli import _serve_token, build_parser

    token_file = tmp_path / "token"
    token_file.write_text("file-s3cret\n")
    parse = build_parser().parse_args
    assert _serve_token(parse(["serve", "--token-file", str(token_file)])) == "file-s3cret"
    monkeypatch.setenv("MOTIONGPT_TOKEN", "env-s3cret")
    assert _serve_token(parse(["serve"])) == "env-s3cret"
    with pytest.raises(ValueError):
        _serve_token(parse(["serve", "--token-file", str(token_file), "--token", "x"]))
    token_file.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        _serve_token(parse(["serve", "--token-file", str(token_file)]))


# --- 5. graceful shutdown ----------------------------------------------------------------------------


def test_token_from_the_environment_and_sigterm_dropping_every_unfinished_job(model_dir):
    secret = "env-s3cret-token"
    auth = {"Authorization": f"Bearer {secret}"}
    running = Server(model_dir, "--shutdown-timeout", "3", env={"MOTIONGPT_TOKEN": secret})
    try:
        running.wait_ready(headers=auth)
        # 8. The token: required, logged when refused, not in the process list, in the schema.
        assert requests.get(running.url + "/health", timeout=5).status_code == 401
        assert requests.get(running.url + "/health", headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
        assert secret.encode() not in Path(f"/proc/{running.process.pid}/cmdline").read_bytes()
        assert "GET /health 401" in running.output()
        spec = requests.get(running.url + "/openapi.json", headers=auth, timeout=5).json()
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        # 5. SIGTERM with one job running, two queued and a client waiting for a fourth.
        long_job = {"text": "a person runs", "frames": 400, "samples": 8}
        ids = [requests.post(running.url + "/v1/generate", json=long_job, headers=auth, timeout=10).json()["id"]
               for _ in range(3)]
        waited = {}

        def wait_for_one():
            waited["response"] = requests.post(running.url + "/v1/generate?wait=true", json=long_job, headers=auth,
                                               timeout=60)

        waiter = threading.Thread(target=wait_for_one)
        waiter.start()
        time.sleep(0.5)
        started = time.monotonic()
        os.killpg(running.process.pid, signal.SIGTERM)
        running.process.wait(timeout=20)
        assert time.monotonic() - started < 8  # the waiting client did not hold the shutdown
        waiter.join(10)
        assert waited["response"].status_code == 200 and waited["response"].json()["state"] == "cancelled"
        output = running.output()
        for job_id in ids:
            assert re.search(rf"job {job_id} task=generate .*state=cancelled .*error=dropped: the server is stopping",
                             output), output[-3000:]
        assert re.search(r"stopping: 4 unfinished job\(s\) dropped", output), output[-3000:]
    finally:
        running.stop()
