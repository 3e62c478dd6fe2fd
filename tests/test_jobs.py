"""The job queue and model loading in-process: expiry, queue limits, cancel, readiness."""

import threading
import time

import pytest

from server.app import ModelHolder
from server.jobs import Job, JobQueue, QueueFull
from server.model.decoding import Cancelled


def blocking_work(release):
    def work(tick):
        release.wait(10)
        if tick():
            raise Cancelled()
        return {"captions": ["ok"]}
    return work


def test_queue_limit_cancel_and_expiry():
    lines = []
    release = threading.Event()
    jobs = JobQueue(max_queued=2, keep_seconds=0.2, log=lines.append)
    running = jobs.submit(Job("caption", blocking_work(release), 1))
    deadline = time.monotonic() + 5
    while running.state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    queued = [jobs.submit(Job("caption", blocking_work(release), 1)) for _ in range(2)]
    with pytest.raises(QueueFull):
        jobs.submit(Job("caption", blocking_work(release), 1))
    assert jobs.cancel(queued[0].id).state == "cancelled"  # a queued job is cancelled at once
    jobs.cancel(running.id)
    release.set()
    assert running.done_event.wait(5) and running.state == "cancelled"
    assert queued[1].done_event.wait(5) and queued[1].state == "done" and queued[1].result == {"captions": ["ok"]}
    assert any(f"job {running.id} task=caption" in line and "duration=" in line for line in lines)
    time.sleep(0.3)
    assert jobs.get(running.id) is None  # finished jobs are dropped after keep_seconds


def test_failures_are_reported_and_the_worker_survives():
    jobs = JobQueue(log=lambda line: None)

    def bad_input(tick):
        raise ValueError("the text is empty")

    def bug(tick):
        raise KeyError("oops")

    first, second = jobs.submit(Job("generate", bad_input, 1)), jobs.submit(Job("generate", bug, 1))
    third = jobs.submit(Job("caption", lambda tick: {"captions": ["fine"]}, 1))
    assert third.done_event.wait(5)
    assert first.state == "failed" and first.error == "the text is empty"
    assert second.state == "failed" and "internal error: KeyError" in second.error
    assert third.state == "done"


def test_model_holder_is_not_ready_until_loaded():
    release = threading.Event()
    holder = ModelHolder(lambda: release.wait(10) and "model")
    assert not holder.ready.is_set() and holder.model is None
    release.set()
    assert holder.ready.wait(5) and holder.model == "model"
    failing = ModelHolder(lambda: (_ for _ in ()).throw(FileNotFoundError("no weights")))
    assert failing.ready.wait(5) and failing.model is None and "no weights" in failing.error
