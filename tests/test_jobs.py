"""The job queue and model loading in-process: expiry, queue limits, cancel, readiness."""

import threading
import time
from pathlib import Path

import pytest

from server.app import ModelHolder
from server.jobs import Closed, Job, JobQueue, QueueFull
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


def test_model_holder_warms_the_decoder_before_ready_and_survives_a_failed_warm_up():
    class Model:
        name = "model"

        def __init__(self, fail):
            self.fail, self.started, self.finish = fail, threading.Event(), threading.Event()

        def warm_up(self):
            self.started.set()
            self.finish.wait(5)
            if self.fail:
                raise RuntimeError("no decoder")

    for fail in (False, True):
        model = Model(fail)
        holder = ModelHolder(lambda model=model: model)
        assert model.started.wait(5)
        assert not holder.ready.is_set() and holder.model is None  # warming up: not ready yet
        model.finish.set()
        assert holder.ready.wait(5) and holder.model is model and holder.error is None


def wait_running(job):
    deadline = time.monotonic() + 5
    while job.state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_cancel_ends_a_running_job_at_once_and_the_workers_late_end_is_ignored():
    lines = []
    release = threading.Event()
    jobs = JobQueue(log=lines.append)

    def finishes_anyway(tick):
        release.wait(10)
        return {"captions": ["late"]}

    running = jobs.submit(Job("caption", finishes_anyway, 1))
    wait_running(running)
    assert jobs.cancel(running.id, reason="asked to stop").state == "cancelled"
    assert running.done_event.is_set() and running.error == "asked to stop"
    release.set()
    follower = jobs.submit(Job("caption", lambda tick: {"captions": ["next"]}, 1))
    assert follower.done_event.wait(5)
    assert running.state == "cancelled" and running.result is None  # the late result did not overwrite it
    assert sum(f"job {running.id} " in line for line in lines) == 1


def test_remove_forgets_a_job_and_frees_its_queue_place():
    release = threading.Event()
    jobs = JobQueue(max_queued=1, log=lambda line: None)
    running = jobs.submit(Job("caption", blocking_work(release), 1))
    wait_running(running)
    queued = jobs.submit(Job("caption", blocking_work(release), 1))
    with pytest.raises(QueueFull):
        jobs.submit(Job("caption", blocking_work(release), 1))
    assert jobs.remove(queued.id).state == "cancelled"
    assert jobs.get(queued.id) is None
    jobs.submit(Job("caption", blocking_work(release), 1))  # the cancelled job no longer holds the place
    release.set()


def test_shutdown_logs_every_dropped_job_and_refuses_new_ones():
    lines = []
    release = threading.Event()
    jobs = JobQueue(max_queued=4, log=lines.append)
    running = jobs.submit(Job("generate", blocking_work(release), 1))
    wait_running(running)
    queued = [jobs.submit(Job("predict", blocking_work(release), 1)) for _ in range(3)]
    dropped = jobs.shutdown()
    assert {job.id for job in dropped} == {running.id, *(job.id for job in queued)}
    for job in [running, *queued]:
        assert job.state == "cancelled" and job.done_event.is_set()
        assert any(line.startswith(f"job {job.id} ") and "error=dropped: the server is stopping" in line for line in lines)
    with pytest.raises(Closed):
        jobs.submit(Job("caption", blocking_work(release), 1))
    release.set()


def test_a_caption_asks_tick_before_every_token_and_stops_when_cancelled(tmp_path):
    """Caption decoding is cancellable within one token, like the other tasks (a real
    small model, decoding for real)."""
    import numpy as np

    from retarget.humanml3d import joints_from_features
    from harness.models import small_model

    model = small_model(tmp_path)
    joints = joints_from_features(np.load(Path(__file__).parent / "data" / "hml3d_012314_features.npy"))[:81]
    ticks = []

    def tick():
        ticks.append(1)
        return len(ticks) >= 3

    with pytest.raises(Cancelled):
        model.caption(joints, should_stop=tick)
    assert len(ticks) == 3
    counted = []
    caption = model.caption(joints, should_stop=lambda: counted.append(1) and False)
    assert isinstance(caption, str) and len(counted) >= 1
