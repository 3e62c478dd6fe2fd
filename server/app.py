"""The local model server: FastAPI over one model worker.

    GET    /health                 ready?, model, architecture, version
    POST   /v1/generate            text -> motions           (returns a job at once)
    POST   /v1/caption             motion -> caption
    POST   /v1/predict             motion -> motion continued
    POST   /v1/inbetween           motion with a gap -> gap filled
    GET    /v1/jobs/{id}           state, progress 0..1, result or error
    DELETE /v1/jobs/{id}           cancel and forget
    ?wait=true on a POST returns the finished job in the same request; if that client
    goes away before, the job is cancelled (nobody else knows its id).

Listens on 127.0.0.1 unless told otherwise; any other address needs a token, and with a
token every request must carry it (Authorization: Bearer ...). Every request must name
the server in its Host header (loopback names, or the configured host), so a web page
that rebinds its own name to 127.0.0.1 cannot drive it. No request names a file.

Every limit on a request is checked before a job exists, on the motion as it will be
processed (resampled to the model's 20 fps): a refused request costs no job, and
nothing heavy (resampling, conversion, encoding results) runs on the event loop.
"""

import asyncio
import hmac
import os
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from retarget.contract import (FRAMES_PER_TOKEN, MAX_FRAMES, MIN_INBETWEEN_FRAMES, MIN_INPUT_FRAMES,
                               MODEL_FPS)
from retarget.formats.wire import motion_from_wire, motion_to_wire
from retarget.motion import Motion as CoreMotion

from . import api
from .jobs import Closed, Job, JobQueue, QueueFull

VERSION = "0.1.0"
MAX_BODY_BYTES = 8 * 2**20
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
REQUEST_TIMEOUT = 20.0  # seconds a client has to send a whole request (headers and body)
SHUTDOWN_TIMEOUT = 5.0  # seconds SIGTERM waits for open requests once the jobs are dropped
MAX_CONNECTIONS = 64
TOKEN_ENVIRONMENT = "MOTIONGPT_TOKEN"
MAX_LOG_LINE = 2000

_log_lock = threading.Lock()


def _log(line: str) -> None:
    """One line on stderr, written whole by one write() call (threads and the event
    loop log concurrently; a line must never be split by another)."""
    line = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in line[:MAX_LOG_LINE]) + "\n"
    data = line.encode("utf-8", "backslashreplace")
    with _log_lock:
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, ValueError, OSError):  # stderr replaced by an object without a descriptor
            sys.stderr.write(line)
            sys.stderr.flush()
            return
        sys.stderr.flush()
        while data:
            data = data[os.write(fd, data):]


class ModelHolder:
    """Loads the model once, in the background, so /health answers at once."""

    def __init__(self, load):
        self.model = None
        self.error = None
        self.ready = threading.Event()
        threading.Thread(target=self._load, args=(load,), name="model-loader", daemon=True).start()

    def _load(self, load):
        try:
            model = load()
            self._warm_up(model)
            self.model = model
            _log(f"model ready: {model.name}")
        except Exception as error:  # reported by /health and by every task request
            self.error = f"{type(error).__name__}: {error}"
            _log(f"model failed to load: {self.error}")
        finally:
            self.ready.set()

    @staticmethod
    def _warm_up(model):
        """The model's decoder built before the server says ready (MotionGPT.warm_up). A
        failure here is logged, not fatal: the requests that need the decoder report it."""
        if not hasattr(model, "warm_up"):
            return
        try:
            model.warm_up()
        except Exception as error:
            _log(f"decoder warm-up failed: {type(error).__name__}: {error}")


# --- request checks --------------------------------------------------------------------------


def _invalid(field: tuple, message: str, rule: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", *field], "msg": message, "type": rule}])


def _check_motion_length(motion: api.MotionIn, field: tuple, least: int, most: int) -> int:
    """The motion's frame count at the model's 20 fps, computed without resampling;
    422 outside [least, most]."""
    frames = api.resampled_frames(len(motion.positions), motion.fps)
    if not least <= frames <= most:
        raise _invalid(field + ("positions",),
                       f"the motion has {frames} frames at the model's {MODEL_FPS:g} fps ({len(motion.positions)} "
                       f"frames at {motion.fps:g} fps); it needs {least} to {most}", api.RULE_MOTION_LENGTH)
    return frames


def _check_mask(start: int, end: int, frames: int) -> None:
    if not start < end < frames:
        raise _invalid(("mask_end",), f"need mask_start < mask_end < frames at {MODEL_FPS:g} fps "
                                      f"({start}, {end}, {frames}): a known frame on both sides of the gap", api.RULE_MASK)
    # The model reads (frames - 1) // 4 tokens (features need a next frame); a token is
    # masked when any of its frames is in the gap. One must stay outside.
    tokens = (frames - 1) // FRAMES_PER_TOKEN
    if start < FRAMES_PER_TOKEN and end > (tokens - 1) * FRAMES_PER_TOKEN:
        raise _invalid(("mask_end",), f"the gap [{start}, {end}) covers every {FRAMES_PER_TOKEN}-frame token of the "
                                      f"motion's {frames} frames: keep frames 0-{FRAMES_PER_TOKEN - 1} or frames "
                                      f"{(tokens - 1) * FRAMES_PER_TOKEN}-{frames - 1} outside it, or use generate", api.RULE_MASK)


def _positions_at_model_fps(motion: api.MotionIn) -> np.ndarray:
    """Wire motion -> joint positions at 20 fps (runs in the conversion pool)."""
    data = {"format": motion.format, "fps": motion.fps, "joint_names": motion.joint_names, "positions": motion.positions}
    frames = len(motion.positions)
    # Rotations that do not cover the positions' frames cannot agree with them; they are
    # optional, so such rotations are ignored as disagreeing ones are.
    if (motion.rotations is not None and motion.root_translation is not None
            and len(motion.rotations) == frames and len(motion.root_translation) == frames):
        data.update(rotations=motion.rotations, root_translation=motion.root_translation)
    with np.errstate(all="ignore"):
        positions = motion_from_wire(data).resampled(float(MODEL_FPS)).positions
    if not np.all(np.isfinite(positions)):
        raise ValueError("the motion's joints cannot be placed on the SMPL skeleton (its bones have no length)")
    return positions


REQUEST_BODIES = (api.GenerateRequest, api.CaptionRequest, api.PredictRequest, api.InbetweenRequest)


def body_schema(model) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"},
        "examples": {"example": {"value": api.EXAMPLES[model.__name__]}}}}}}


def _wire(joints: np.ndarray) -> dict:
    return motion_to_wire(CoreMotion.from_positions(joints, float(MODEL_FPS)))


# --- the ASGI guard: Host, token, body size, one log line per response ---------------------


def served_hosts(host: str, port: int, extra=()) -> set[str] | None:
    """The Host header values a server on host:port answers (None: any, for a wildcard
    address, which cannot run without a token)."""
    if host in WILDCARD:
        return None
    names = ["127.0.0.1", "localhost", "[::1]"] if host in LOOPBACK else [f"[{host}]" if ":" in host else host]
    names += [f"[{name}]" if ":" in name and not name.startswith("[") else name for name in extra]
    allowed = set()
    for name in names:
        allowed.add(f"{name}:{port}".lower())
        if port == 80:
            allowed.add(name.lower())
    return allowed


def _printable_path(scope) -> str:
    path = urllib.parse.quote(scope.get("path", ""), safe="/:@!$&'()*+,;=-._~%")[:300]
    query = scope.get("query_string", b"")[:200].decode("latin-1")
    return path + (f"?{urllib.parse.quote(query, safe='=&%+')}" if query else "")


class Guard:
    """Outermost middleware. Refuses a Host this server does not serve (400), a missing
    or wrong token (401), a body without length (411) or over the limit (413); reads a
    POST body whole before the app sees it; logs one line per response, whatever the
    status, refusals and errors included."""

    def __init__(self, app, allowed_hosts: set[str] | None, token: str | None, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.expected_authorization = f"Bearer {token}".encode() if token else None
        self.max_body = max_body

    def refusal(self, scope) -> tuple[int, str] | None:
        headers = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name, []).append(value)
        hosts = headers.get(b"host", [])
        if self.allowed_hosts is not None:
            if len(hosts) != 1 or hosts[0].decode("latin-1").lower() not in self.allowed_hosts:
                shown = hosts[0].decode("latin-1")[:100] if hosts else "(none)"
                return 400, (f"Host {shown!r} is not an address this server serves "
                             f"({', '.join(sorted(self.allowed_hosts))})")
        if self.expected_authorization is not None:
            given = headers.get(b"authorization", [b""])
            if len(given) != 1 or not hmac.compare_digest(given[0], self.expected_authorization):
                return 401, "missing or wrong token (Authorization: Bearer ...)"
        if scope["method"] == "POST":
            lengths = headers.get(b"content-length")
            if not lengths:
                # A streamed body of unknown size could be any size: ask for its length.
                return 411, "send Content-Length with the body"
            if not lengths[0].isdigit() or int(lengths[0]) > self.max_body:
                return 413, f"request body over {self.max_body} bytes"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        status = None
        note = ""

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refused = self.refusal(scope)
            if refused is not None:
                code, detail = refused
                headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
                await JSONResponse({"detail": detail}, status_code=code, headers=headers)(scope, receive, send_noting_status)
                return
            if scope["method"] == "POST":
                body = await self._read_body(receive)
                if body is None:
                    # Nobody to answer: the client went away or the read deadline closed it.
                    status, note = 408, " (the body never arrived)"
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_noting_status)
        except BaseException:
            if status is None:
                status = 500
            raise
        finally:
            _log(f"{scope['method']} {_printable_path(scope)} {status} {time.monotonic() - started:.3f}s{note}")

    async def _read_body(self, receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:  # Content-Length bounds it already; a guard against a lying transport
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _until_disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


# --- the app ---------------------------------------------------------------------------------


def create_app(load_model, token: str | None = None, max_queued: int = 16, keep_seconds: float = 600.0,
               allowed_hosts: set[str] | None = None) -> FastAPI:
    """The app, wrapped in its Guard. `allowed_hosts` None accepts any Host header."""
    app = FastAPI(title="MotionGPT local server", version=VERSION,
                  description="Text-to-motion, captioning, prediction and in-betweening on this computer. "
                              "Every request must name this server in its Host header"
                              + ("; every request needs `Authorization: Bearer <token>`." if token else "."))
    holder = ModelHolder(load_model)
    jobs = JobQueue(max_queued=max_queued, keep_seconds=keep_seconds, log=_log)
    # Resampling and conversion run here, never on the event loop; two threads, as the
    # machine the server is made for has few cores and the model worker needs one.
    conversions = ThreadPoolExecutor(2, thread_name_prefix="conversion")
    # Parsing holds the GIL for the whole of one body (pydantic's validator does not let
    # go of it), so bodies are parsed one at a time: between two, the event loop runs.
    parsing = ThreadPoolExecutor(1, thread_name_prefix="parsing")
    app.state.jobs = jobs
    app.state.model_holder = holder

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        # The default handler echoes the offending input, which cannot be JSON when it
        # is NaN; name the field and say what is wrong, without the input.
        detail = [{"loc": [str(part) if not isinstance(part, int) else part for part in e.get("loc", ())],
                   "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Starlette names the methods of the first route that matched the path only;
            # a resource served by several routes (GET and DELETE /v1/jobs/{id}) has them all.
            allowed = set()
            for route in app.router.routes:
                if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
                    allowed |= route.methods
            if allowed:
                headers["Allow"] = ", ".join(sorted(allowed))
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=headers)

    def model_or_503():
        if not holder.ready.is_set():
            raise HTTPException(503, "the model is still loading", headers={"Retry-After": "2"})
        if holder.model is None:
            raise HTTPException(503, f"the model could not be loaded: {holder.error}")
        return holder.model

    async def in_pool(function, *args):
        return await asyncio.get_running_loop().run_in_executor(conversions, function, *args)

    async def positions_of(motion: api.MotionIn) -> np.ndarray:
        try:
            return await in_pool(_positions_at_model_fps, motion)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
            raise _invalid(("motion", "positions"), str(error), api.RULE_MOTION_SHAPE) from None

    def job_response(job: Job) -> Response:
        return Response(job.view_json(), media_type="application/json")

    async def submit(job: Job, wait: bool, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def wake():
            # Called by whichever thread ends the job; the loop may be gone at exit.
            try:
                loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))
            except RuntimeError:
                pass

        if wait:
            job.when_finished(wake)
        try:
            jobs.submit(job)
        except QueueFull:
            raise HTTPException(429, "too many jobs waiting; try again shortly", headers={"Retry-After": "5"}) from None
        except Closed:
            raise HTTPException(503, "the server is stopping") from None
        if not wait:
            job.id_known = True
            return job_response(job)
        # Wait on the event loop (no thread per waiting client), and notice the client
        # leaving: the job's id was never given to anyone else, so nobody can want it.
        gone = asyncio.ensure_future(_until_disconnected(request.receive))
        try:
            await asyncio.wait({finished, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not finished.done() and not job.id_known:
            jobs.cancel(job.id, reason="the client waiting for it went away")
        return job_response(job)

    def sampling(request: api.SamplingOptions, model):
        """What the request chose, the model's own defaults for the rest."""
        return model.default_sampling.with_choices(request.top_k, request.temperature, request.greedy)

    task_responses = {**api.REFUSALS, **api.BODY_REFUSALS}

    async def parsed(request: Request, model):
        """The body, parsed and validated off the event loop: an 8 MB motion takes a good
        part of a second to read. (The body is declared with openapi_extra, because a
        body parameter would have FastAPI parse it on the event loop.)"""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type != "application/json" and not content_type.endswith("+json"):
            raise RequestValidationError([{"loc": ("body",), "type": "content_type",
                                           "msg": "send the body as JSON (Content-Type: application/json)"}])
        body = await request.body()
        try:
            return await asyncio.get_running_loop().run_in_executor(parsing, model.model_validate_json, body)
        except ValidationError as error:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]) from None

    @app.get("/health", response_model=api.Health, responses={400: api.REFUSALS[400], 401: api.REFUSALS[401]})
    async def health():  # on the event loop: a thread hop would wait for the GIL behind a parse
        model = holder.model
        return api.Health(ready=model is not None, version=VERSION, model=model.name if model else None,
                          architecture=model.describe() if model else None, error=holder.error)

    @app.post("/v1/generate", response_model=api.Job, responses=task_responses, openapi_extra=body_schema(api.GenerateRequest))
    async def generate(request: Request, wait: bool = False):
        body = await parsed(request, api.GenerateRequest)
        model = model_or_503()
        expected = (body.frames or 196) // FRAMES_PER_TOKEN * body.samples

        def work(tick):
            motions = model.generate(body.text, body.frames, body.samples, body.seed, sampling(body, model), tick)
            return {"motions": [_wire(m) for m in motions]}

        return await submit(Job("generate", work, expected, body.frames), wait, request)

    @app.post("/v1/caption", response_model=api.Job, responses=task_responses, openapi_extra=body_schema(api.CaptionRequest))
    async def caption(request: Request, wait: bool = False):
        body = await parsed(request, api.CaptionRequest)
        model = model_or_503()
        _check_motion_length(body.motion, ("motion",), MIN_INPUT_FRAMES, api.MAX_INPUT_FRAMES)
        positions = await positions_of(body.motion)

        def work(tick):
            return {"captions": [model.caption(positions, should_stop=tick)]}

        # Progress counts the tokens the model's contract lets a caption take.
        return await submit(Job("caption", work, model.contract.caption_max_tokens, len(positions)), wait, request)

    @app.post("/v1/predict", response_model=api.Job, responses=task_responses, openapi_extra=body_schema(api.PredictRequest))
    async def predict(request: Request, wait: bool = False):
        body = await parsed(request, api.PredictRequest)
        model = model_or_503()
        _check_motion_length(body.motion, ("motion",), MIN_INPUT_FRAMES, api.MAX_INPUT_FRAMES)
        positions = await positions_of(body.motion)

        def work(tick):
            joints = model.predict(positions, body.frames, body.text, body.seed, sampling(body, model), tick)
            return {"motions": [_wire(joints)]}

        return await submit(Job("predict", work, body.frames // FRAMES_PER_TOKEN, body.frames), wait, request)

    @app.post("/v1/inbetween", response_model=api.Job, responses=task_responses, openapi_extra=body_schema(api.InbetweenRequest))
    async def inbetween(request: Request, wait: bool = False):
        body = await parsed(request, api.InbetweenRequest)
        model = model_or_503()
        frames = _check_motion_length(body.motion, ("motion",), MIN_INBETWEEN_FRAMES, MAX_FRAMES)
        _check_mask(body.mask_start, body.mask_end, frames)
        positions = await positions_of(body.motion)

        def work(tick):
            joints = model.inbetween(positions, body.mask_start, body.mask_end, body.text, body.seed,
                                     sampling(body, model), tick)
            return {"motions": [_wire(joints)]}

        return await submit(Job("inbetween", work, len(positions) // FRAMES_PER_TOKEN, body.mask_end - body.mask_start),
                            wait, request)

    job_lookup = {400: api.REFUSALS[400], 401: api.REFUSALS[401], **api.NOT_FOUND}

    @app.get("/v1/jobs/{job_id}", response_model=api.Job, responses=job_lookup)
    def job_state(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:100]} (finished jobs are kept for {keep_seconds:g} s)")
        job.id_known = True  # someone besides a waiting client has the id
        return job_response(job)

    @app.delete("/v1/jobs/{job_id}", response_model=api.Job, responses=job_lookup)
    def cancel(job_id: str):
        """Cancel the job if it has not ended (a running one stops within one token) and
        forget it: the answer is its last state, and it is gone afterwards (404)."""
        job = jobs.remove(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id[:100]}")
        return job_response(job)

    def openapi_with_bodies():
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            _, bodies = models_json_schema([(model, "validation") for model in REQUEST_BODIES],
                                           ref_template="#/components/schemas/{model}")
            schema.setdefault("components", {}).setdefault("schemas", {}).update(bodies["$defs"])
            if token:
                schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
                schema["security"] = [{"bearer": []}]
        return app.openapi_schema

    app.openapi = openapi_with_bodies
    app.state.guarded = Guard(app, allowed_hosts, token)
    return app


# --- serving ---------------------------------------------------------------------------------


def _timed_protocol(request_timeout: float):
    """uvicorn's h11 protocol with a deadline on reading each request: uvicorn closes an
    idle keep-alive connection, but not one whose request arrives slowly or not at all
    (a header line a minute holds the connection forever). From a connection's first
    byte, or a request's first byte, the whole request must arrive within the limit;
    otherwise the connection gets 408 if nothing was answered yet, and is closed."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineH11Protocol(H11Protocol):
        read_deadline = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def data_received(self, data):
            super().data_received(data)
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
                if self.read_deadline is None:
                    self._arm()
            else:
                self._disarm()

        def on_response_complete(self):
            self._disarm()
            super().on_response_complete()

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def _arm(self):
            self.read_deadline = self.loop.call_later(request_timeout, self._read_timed_out)

        def _disarm(self):
            if self.read_deadline is not None:
                self.read_deadline.cancel()
                self.read_deadline = None

        def _read_timed_out(self):
            self.read_deadline = None
            if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                return
            if self.cycle is None or self.cycle.response_complete:
                client = "%s:%d" % self.client if self.client else "a client"
                _log(f"- - 408 {request_timeout:g}s (from {client}: no whole request within the limit; closed)")
            if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                                     b"content-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    return DeadlineH11Protocol


def serve(load_model, host: str = "127.0.0.1", port: int = 8765, token: str | None = None, *,
          allow_hosts=(), request_timeout: float = REQUEST_TIMEOUT, shutdown_timeout: float = SHUTDOWN_TIMEOUT,
          max_queued: int = 16, keep_seconds: float = 600.0) -> None:
    """Run the server (blocking). Refuses a non-loopback address without a token.
    SIGTERM: unfinished jobs are dropped (each logged, waiting clients answered), then
    open requests get `shutdown_timeout` seconds."""
    import uvicorn

    if host not in LOOPBACK and not token:
        raise ValueError(f"refusing to listen on {host} without --token: anyone on the network could use the model")
    app = create_app(load_model, token, max_queued=max_queued, keep_seconds=keep_seconds,
                     allowed_hosts=served_hosts(host, port, allow_hosts))
    jobs = app.state.jobs

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            dropped = jobs.shutdown()
            _log(f"stopping: {len(dropped)} unfinished job(s) dropped; open requests get {shutdown_timeout:g} s")
            await super().shutdown(sockets)

    config = uvicorn.Config(app.state.guarded, host=host, port=port, log_level="warning",
                            http=_timed_protocol(request_timeout), timeout_keep_alive=5,
                            timeout_graceful_shutdown=max(1, round(shutdown_timeout)), limit_concurrency=MAX_CONNECTIONS,
                            lifespan="off")
    Server(config).run()
