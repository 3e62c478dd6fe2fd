"""The server under load, bounded: 8 loopback clients for a fixed number of rounds, some
cancelling their jobs, some leaving a `?wait=true` request mid-job. Nothing is lost
(every job the server created ends done, cancelled or failed, with a reason, in exactly
one log line), and the server's memory returns to within 10% of what it was after a
warm-up round of the same mix."""

import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from retarget.formats.wire import motion_to_wire
from retarget.humanml3d import joints_from_features
from retarget.motion import Motion
from harness.server import Server

DATA = Path(__file__).parent / "data"
CLIENTS = 8
ROUNDS = 5
DEADLINE = 150.0  # seconds for the whole load; the test fails rather than run longer
END_LINE = re.compile(r"^job (?P<id>[0-9a-f]{32}) task=(?P<task>\w+) .*state=(?P<state>done|failed|cancelled)"
                      r"(?P<rest>.*)$")


@pytest.fixture(scope="module")
def server(small_model_dir):
    running = Server(small_model_dir, "--threads", "1").wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def clip():
    joints = joints_from_features(np.load(DATA / "hml3d_012314_features.npy"))[:81]
    return motion_to_wire(Motion.from_positions(joints, 24.0))


def bodies(clip, number, k):
    return [
        ("generate", {"text": f"a person walks {number} {k}", "frames": 40 + 8 * k, "samples": 1 + k % 3, "seed": k}),
        ("caption", {"motion": clip}),
        ("predict", {"motion": clip, "frames": 20 + 4 * k, "seed": number}),
        ("inbetween", {"motion": clip, "mask_start": 20, "mask_end": 40, "seed": k}),
    ]


def submit(server, task, body, deadline):
    """POST until accepted (429 means retry); the job as returned."""
    while True:
        assert time.monotonic() < deadline, "load test over its time limit"
        response = requests.post(f"{server.url}/v1/{task}", json=body, timeout=30)
        if response.status_code == 429:
            assert response.headers.get("retry-after")
            time.sleep(0.2)
            continue
        assert response.status_code == 200, response.text
        return response.json()


def run_to_end(server, job, deadline):
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = requests.get(f"{server.url}/v1/jobs/{job['id']}", timeout=10).json()
    return job


def abandon_a_wait(server, deadline) -> str:
    """POST a long generation with ?wait=true over a socket and leave while it waits.
    Returns "left" (the client left a waiting request), "refused" (429: no job made) or
    "finished" (a fast machine ended the job before the client left: a done job)."""
    body = json.dumps({"text": "a person runs around", "frames": 400, "samples": 8}).encode()
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = (f"POST /v1/generate?wait=true HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    connection.sendall(head.encode() + body)
    connection.settimeout(0.2)
    try:
        answered = connection.recv(100)
    except (socket.timeout, TimeoutError):
        answered = b""
    connection.close()
    if not answered:
        return "left"
    assert answered.startswith((b"HTTP/1.1 429", b"HTTP/1.1 200")), answered
    return "refused" if answered.startswith(b"HTTP/1.1 429") else "finished"


def client(server, clip, number, rounds, deadline):
    """One client's work; returns (job ids it created and knows, how its waits ended)."""
    known, waits = [], []
    for k in range(rounds):
        role = number % 4
        if role in (0, 1):  # runs every task to its end, reads the result, deletes the job
            for task, body in bodies(clip, number, k):
                job = run_to_end(server, submit(server, task, body, deadline), deadline)
                known.append(job["id"])
                assert job["state"] == "done", job
                result = job["result"]
                assert (result["captions"] if task == "caption" else result["motions"]), job
                assert requests.delete(f"{server.url}/v1/jobs/{job['id']}", timeout=10).status_code == 200
        elif role == 2:  # cancels a long job, queued or running
            job = submit(server, "generate", {"text": "a person runs", "frames": 400, "samples": 8}, deadline)
            known.append(job["id"])
            time.sleep(0.1 * (k % 3))
            cancelled = requests.delete(f"{server.url}/v1/jobs/{job['id']}", timeout=10).json()
            assert cancelled["state"] in ("cancelled", "done"), cancelled
        else:  # leaves a ?wait=true request mid-job
            waits.append(abandon_a_wait(server, deadline))
    return known, waits


def end_lines(output):
    ends = {}
    for line in output.splitlines():
        match = END_LINE.match(line)
        if match:
            ends.setdefault(match["id"], []).append(match)
    return ends


def settle(server, count_before, expected, deadline):
    """Wait until `expected` more jobs have ended."""
    while len(end_lines(server.output())) - count_before < expected:
        assert time.monotonic() < deadline, f"jobs did not all end:\n{server.output()[-3000:]}"
        time.sleep(0.1)


def run_load(server, clip, clients, rounds):
    deadline = time.monotonic() + DEADLINE
    before = set(end_lines(server.output()))
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda n: client(server, clip, n, rounds, deadline), range(clients)))
    known = [job_id for ids, _ in results for job_id in ids]
    waits = [wait for _, client_waits in results for wait in client_waits]
    abandoned, finished = waits.count("left"), waits.count("finished")
    settle(server, len(before), len(known) + abandoned + finished, deadline)
    ends = {job_id: lines for job_id, lines in end_lines(server.output()).items() if job_id not in before}
    return known, abandoned, finished, ends


def test_eight_clients_lose_nothing_and_memory_comes_back(server, clip):
    # Warm-up: the same mix once, so the allocator, torch's caches and the decoders are
    # at their working size before memory is measured.
    run_load(server, clip, clients=4, rounds=1)
    time.sleep(0.5)
    start = server.rss_bytes()

    started = time.monotonic()
    known, abandoned, finished, ends = run_load(server, clip, clients=CLIENTS, rounds=ROUNDS)
    elapsed = time.monotonic() - started

    assert len(known) == len(set(known))
    assert abandoned >= 1  # the mix did include abandoned waits
    # Every job the server created ended exactly once, with a reason when not done.
    assert all(len(lines) == 1 for lines in ends.values()), [lines[0].string for lines in ends.values() if len(lines) > 1]
    assert set(known) <= set(ends)
    strangers = {job_id: lines[0] for job_id, lines in ends.items() if job_id not in known}
    assert len(strangers) == abandoned + finished, [line.string for line in strangers.values()]
    for job_id, (line,) in ends.items():
        if line["state"] != "done":
            assert "error=" in line["rest"], line.string
    # A wait the client left is cancelled with that reason; one answered before it left is done.
    left = [line for line in strangers.values() if line["state"] != "done"]
    assert len(left) == abandoned, [line.string for line in strangers.values()]
    for line in left:
        assert line["state"] == "cancelled" and "the client waiting for it went away" in line["rest"], line.string
    outcomes = {state: sum(lines[0]["state"] == state for lines in ends.values()) for state in ("done", "cancelled", "failed")}
    assert outcomes["failed"] == 0, outcomes

    time.sleep(1.0)
    end = server.rss_bytes()
    print(f"\nload: {len(ends)} jobs in {elapsed:.1f} s, {outcomes}, {abandoned} waits abandoned, {finished} answered first; "
          f"server memory {start / 2**20:.1f} MB after warm-up, {end / 2**20:.1f} MB after the load")
    assert end <= start * 1.10, (start, end)
    assert requests.get(server.url + "/health", timeout=5).json()["ready"]
