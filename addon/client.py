"""The model server's HTTP API as seen from Blender: submit a job, follow its progress,
cancel it. Standard library only (urllib), so the extension needs no wheels, and no
bpy, so it runs on a worker thread.

Every failure becomes a ServerError whose message is meant for the status bar.
"""

import ipaddress
import json
import time
import urllib.error
import urllib.parse
import urllib.request

POLL_SECONDS = 0.1


class ServerError(RuntimeError):
    """The server could not do what was asked; str() is a sentence for the user."""


class Unreachable(ServerError):
    """Nothing answers at the server's address."""


class JobCancelled(RuntimeError):
    """The user cancelled the job."""


def is_local(url: str) -> bool:
    """True when `url` names this computer (loopback), which needs no online access."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _detail_of(body: bytes) -> str:
    """The human part of a FastAPI error body ({"detail": str | [{"loc", "msg"}]})."""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(detail, list):
        parts = []
        for item in detail[:3]:
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return "; ".join(parts)
    return str(detail)


class Client:
    """One server. `timeout` bounds each HTTP request and the wait for a job's end."""

    def __init__(self, url: str, timeout: float = 30.0, token: str = "", online_access: bool = True):
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.token = token
        if not is_local(self.url) and not online_access:
            raise ServerError(f"the server {self.url} is not on this computer and Blender's online access is off "
                              "(Preferences > System > Network); use a local server or allow online access")

    def _request(self, method: str, path: str, body: dict | None = None, timeout: float | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = _detail_of(error.read())
            if error.code == 401:
                raise ServerError(f"the server at {self.url} wants a token: set it in the extension's preferences") from None
            if error.code == 503:
                raise ServerError(f"the server at {self.url} is not ready: {detail}") from None
            raise ServerError(f"the server refused the request ({error.code}): {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise Unreachable(f"the MotionGPT server at {self.url} is not reachable ({reason}); "
                              "start it from the MotionGPT panel or with `motiongpt serve`") from None
        except ValueError:
            raise ServerError(f"{self.url} did not answer like a MotionGPT server (no JSON)") from None

    def health(self, timeout: float | None = None) -> dict:
        return self._request("GET", "/health", timeout=timeout)

    def run(self, task: str, body: dict, on_progress=None, should_cancel=None) -> dict:
        """Submit `task` ("generate", "caption", "predict", "inbetween"), wait for it and
        return its result. `should_cancel()` is asked between polls; when it says yes
        the server job is cancelled and JobCancelled is raised."""
        job = self._request("POST", f"/v1/{task}", body)
        deadline = time.monotonic() + self.timeout
        while job["state"] in ("queued", "running"):
            if should_cancel is not None and should_cancel():
                self._cancel_quietly(job["id"])
                raise JobCancelled("cancelled")
            if time.monotonic() > deadline:
                self._cancel_quietly(job["id"])
                raise ServerError(f"the server did not finish the {task} job within {self.timeout:g} s "
                                  "(raise the request timeout in the extension's preferences)")
            if on_progress is not None:
                on_progress(float(job.get("progress", 0.0)))
            time.sleep(POLL_SECONDS)
            job = self._request("GET", f"/v1/jobs/{job['id']}")
        if job["state"] == "cancelled":
            raise JobCancelled("the job was cancelled on the server")
        if job["state"] != "done":
            raise ServerError(f"the {task} job failed on the server: {job.get('error') or job['state']}")
        if on_progress is not None:
            on_progress(1.0)
        return job["result"]

    def _cancel_quietly(self, job_id: str) -> None:
        try:
            self._request("DELETE", f"/v1/jobs/{job_id}", timeout=5)
        except ServerError:
            pass  # the job ends with the server anyway; the user's cancel already holds
