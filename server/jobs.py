"""Jobs: one model worker, a bounded queue, progress, cancellation, expiry, shutdown.

The model is not shared between threads: a single worker thread runs one job at a time.
A job's work function receives a `tick()` to call before every decoded token; it
updates the progress and says whether the job was cancelled, so a cancelled job frees
the worker within one token.

A job ends exactly once (done, failed or cancelled, with the reason for the last two),
and every end is one log line: cancelled while queued, cancelled while running (the
worker's own late end is then ignored), or dropped because the server stops.
"""

import json
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from server.model.decoding import Cancelled


class QueueFull(Exception):
    pass


class Closed(Exception):
    """The server is stopping: no new jobs."""


@dataclass
class Job:
    task: str
    work: object  # callable(tick) -> result dict
    expected_tokens: int
    frames: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = "queued"
    progress: float = 0.0
    error: str | None = None
    cancelled: bool = False
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    done_event: threading.Event = field(default_factory=threading.Event)
    tokens: int = 0
    # The result as JSON, encoded once by the worker: views of a big result cost no
    # encoding on the event loop, and one bytes object is freed at once when dropped.
    result_json: bytes | None = None
    callbacks: list = field(default_factory=list)
    # Whether anyone but a ?wait=true client has the id (it was returned, or looked up):
    # only a job nobody else knows is cancelled when its waiting client leaves.
    id_known: bool = False

    def tick(self) -> bool:
        self.tokens += 1
        self.progress = min(0.99, self.tokens / max(1, self.expected_tokens))
        return self.cancelled

    @property
    def result(self) -> dict | None:
        return None if self.result_json is None else json.loads(self.result_json)

    def view(self) -> dict:
        return {"id": self.id, "task": self.task, "state": self.state, "progress": self.progress,
                "result": self.result, "error": self.error}

    def view_json(self) -> bytes:
        """The view as JSON bytes (the result pre-encoded)."""
        head = json.dumps({"id": self.id, "task": self.task, "state": self.state, "progress": self.progress,
                           "error": self.error})
        return head[:-1].encode() + b', "result": ' + (self.result_json or b"null") + b"}"

    def when_finished(self, callback) -> None:
        """Call `callback()` once the job has ended (at once if it has)."""
        self.callbacks.append(callback)
        if self.done_event.is_set() and callback in self.callbacks:
            self.callbacks.remove(callback)
            callback()


class JobQueue:
    def __init__(self, max_queued: int = 16, keep_seconds: float = 600.0, log=None):
        self.max_queued = max_queued
        self.pending: deque[Job] = deque()
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.closed = False
        self.keep_seconds = keep_seconds
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.worker = threading.Thread(target=self._run, name="model-worker", daemon=True)
        self.worker.start()

    def submit(self, job: Job) -> Job:
        self._expire()
        with self.lock:
            if self.closed:
                raise Closed
            if len(self.pending) >= self.max_queued:
                raise QueueFull
            self.pending.append(job)
            self.jobs[job.id] = job
            self.wake.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        self._expire()
        with self.lock:
            return self.jobs.get(job_id)

    def cancel(self, job_id: str, reason: str = "cancelled by a client") -> Job | None:
        """Cancel a queued or running job at once (a running one stops at its next
        token); a finished job is returned as it is."""
        job = self.get(job_id)
        if job is not None:
            self._cancel(job, reason)
        return job

    def remove(self, job_id: str, reason: str = "cancelled by a client") -> Job | None:
        """Cancel the job if it has not ended, then forget it (DELETE)."""
        job = self.cancel(job_id, reason)
        if job is not None:
            with self.lock:
                self.jobs.pop(job_id, None)
        return job

    def shutdown(self, reason: str = "dropped: the server is stopping") -> list[Job]:
        """Refuse new jobs and end every queued or running one as cancelled, each with a
        log line; returns them."""
        with self.lock:
            self.closed = True
            live = [job for job in self.jobs.values() if job.state in ("queued", "running")]
            self.wake.notify_all()
        for job in live:
            self._cancel(job, reason)
        return live

    def _cancel(self, job: Job, reason: str) -> None:
        job.cancelled = True
        with self.lock:
            if job in self.pending:
                self.pending.remove(job)
        self._finish(job, "cancelled", error=reason)

    def _finish(self, job: Job, state: str, result_json: bytes | None = None, error=None) -> None:
        with self.lock:
            if job.finished is not None:
                return  # ended already (cancelled while running): the first end stands
            job.finished = time.monotonic()
            previous = job.state
            job.state, job.result_json, job.error = state, result_json, error
            if state == "done":
                job.progress = 1.0
            callbacks, job.callbacks = job.callbacks, []
        job.done_event.set()
        for callback in callbacks:
            callback()
        frames = f" frames={job.frames}" if job.frames else ""
        self.log(f"job {job.id} task={job.task}{frames} state={state} was={previous} "
                 f"duration={job.finished - job.created:.2f}s" + (f" error={error}" if error else ""))

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.pending and not self.closed:
                    self.wake.wait()
                if self.closed:
                    return
                job = self.pending.popleft()
                if job.cancelled:
                    continue
                job.state = "running"
            try:
                encoded = _encode(job.work(job.tick))
            except Cancelled:
                self._finish(job, "cancelled", error="cancelled")
            except ValueError as error:
                self._finish(job, "failed", error=str(error))
            except Exception as error:  # a bug: keep the worker alive and say what happened
                self._finish(job, "failed", error=f"internal error: {type(error).__name__}: {error}")
            else:
                self._finish(job, "cancelled", error="cancelled") if job.cancelled else self._finish(job, "done", encoded)

    def _expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            for job_id in [j.id for j in self.jobs.values() if j.finished and now - j.finished > self.keep_seconds]:
                del self.jobs[job_id]


def _encode(result: dict) -> bytes:
    try:
        return json.dumps(result, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        raise ValueError("the model produced numbers that are not finite (NaN or infinity)") from None
