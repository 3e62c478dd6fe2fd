"""One server job at a time, run on a worker thread (no bpy here).

The operator reads the scene on Blender's main thread, hands a `work` function to a
Job, and writes the result back on the main thread when the job is done. In
background mode (scripts, tests) the same Job runs on the calling thread instead,
since timers and modal handlers do not run there.
"""

import threading

from .client import JobCancelled


class Job:
    """work(report_progress, should_cancel) -> result, with progress and cancel."""

    def __init__(self, label: str, work):
        self.label = label
        self._work = work
        self.progress = 0.0
        self.result = None
        self.error = None  # an exception, when the work failed
        self.cancelled = False
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._thread = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _report(self, progress: float) -> None:
        self.progress = min(1.0, max(self.progress, float(progress)))

    def run_here(self) -> "Job":
        try:
            self.result = self._work(self._report, self._cancel.is_set)
        except JobCancelled:
            self.cancelled = True
        except Exception as error:  # reported to the user by the operator
            self.error = error
        finally:
            if self._cancel.is_set() and self.error is None:
                self.cancelled = True
            self._done.set()
        return self

    def start(self) -> "Job":
        self._thread = threading.Thread(target=self.run_here, name=f"motiongpt {self.label}", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


# The job the panel shows (progress bar, Cancel) until its operator has written the
# result; None when idle.
active = {"job": None}


def current():
    return active["job"]
