"""Jobs: one model worker, a bounded queue, progress, cancellation, expiry.

The model is not shared between threads: a single worker thread runs one job at a time.
A job's work function receives a `tick()` to call before every decoded token; it
updates the progress and says whether the job was cancelled, so a cancelled job frees
the worker within one token.
"""

import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

from server.model.decoding import Cancelled


class QueueFull(Exception):
    pass


@dataclass
class Job:
    task: str
    work: object  # callable(tick) -> result dict
    expected_tokens: int
    frames: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = "queued"
    progress: float = 0.0
    result: dict | None = None
    error: str | None = None
    cancelled: bool = False
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    done_event: threading.Event = field(default_factory=threading.Event)
    tokens: int = 0

    def tick(self) -> bool:
        self.tokens += 1
        self.progress = min(0.99, self.tokens / max(1, self.expected_tokens))
        return self.cancelled

    def view(self) -> dict:
        return {"id": self.id, "task": self.task, "state": self.state, "progress": self.progress,
                "result": self.result, "error": self.error}


class JobQueue:
    def __init__(self, max_queued: int = 16, keep_seconds: float = 600.0, log=None):
        self.pending = queue.Queue(maxsize=max_queued)
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.keep_seconds = keep_seconds
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.worker = threading.Thread(target=self._run, name="model-worker", daemon=True)
        self.worker.start()

    def submit(self, job: Job) -> Job:
        self._expire()
        with self.lock:
            try:
                self.pending.put_nowait(job)
            except queue.Full:
                raise QueueFull from None
            self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        self._expire()
        with self.lock:
            return self.jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None and job.state in ("queued", "running"):
            job.cancelled = True
            if job.state == "queued":
                self._finish(job, "cancelled")
        return job

    def _finish(self, job: Job, state: str, result=None, error=None) -> None:
        job.state, job.result, job.error = state, result, error
        if state == "done":
            job.progress = 1.0
        job.finished = time.monotonic()
        job.done_event.set()
        frames = f" frames={job.frames}" if job.frames else ""
        self.log(f"job {job.id} task={job.task}{frames} state={state} duration={job.finished - job.created:.2f}s"
                 + (f" error={error}" if error else ""))

    def _run(self) -> None:
        while True:
            job = self.pending.get()
            if job.cancelled or job.state != "queued":
                continue
            job.state = "running"
            try:
                result = job.work(job.tick)
            except Cancelled:
                self._finish(job, "cancelled")
            except ValueError as error:
                self._finish(job, "failed", error=str(error))
            except Exception as error:  # a bug: keep the worker alive and say what happened
                self._finish(job, "failed", error=f"internal error: {type(error).__name__}: {error}")
            else:
                self._finish(job, "cancelled" if job.cancelled else "done", result=None if job.cancelled else result)

    def _expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            for job_id in [j.id for j in self.jobs.values() if j.finished and now - j.finished > self.keep_seconds]:
                del self.jobs[job_id]
