"""The local model server: FastAPI over one model worker.

    GET    /health                 ready?, model, architecture, version
    POST   /v1/generate            text -> motions           (returns a job at once)
    POST   /v1/caption             motion -> caption
    POST   /v1/predict             motion -> motion continued
    POST   /v1/inbetween           motion with a gap -> gap filled
    GET    /v1/jobs/{id}           state, progress 0..1, result or error
    DELETE /v1/jobs/{id}           cancel
    ?wait=true on a POST returns the finished job in the same request.

Listens on 127.0.0.1 unless told otherwise; any other address needs a token, and with a
token every request must carry it (Authorization: Bearer ...). No request names a file.
"""

import asyncio
import hmac
import sys
import threading
import time

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from retarget.formats.wire import motion_from_wire, motion_to_wire
from retarget.motion import Motion as CoreMotion

from . import api
from .jobs import Job, JobQueue, QueueFull

VERSION = "0.1.0"
MAX_BODY_BYTES = 8 * 2**20
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ModelHolder:
    """Loads the model once, in the background, so /health answers at once."""

    def __init__(self, load):
        self.model = None
        self.error = None
        self.ready = threading.Event()
        threading.Thread(target=self._load, args=(load,), name="model-loader", daemon=True).start()

    def _load(self, load):
        try:
            self.model = load()
            _log(f"model ready: {self.model.name}")
        except Exception as error:  # reported by /health and by every task request
            self.error = f"{type(error).__name__}: {error}"
            _log(f"model failed to load: {self.error}")
        finally:
            self.ready.set()


def _motion_positions(motion: api.Motion) -> np.ndarray:
    try:
        return motion_from_wire(motion.model_dump()).resampled(20.0).positions
    except ValueError as error:
        raise HTTPException(422, detail=[{"loc": ["body", "motion"], "msg": str(error), "type": "value_error"}]) from None


def _wire(joints: np.ndarray) -> dict:
    return motion_to_wire(CoreMotion.from_positions(joints, 20.0))


def create_app(load_model, token: str | None = None, max_queued: int = 16, keep_seconds: float = 600.0) -> FastAPI:
    app = FastAPI(title="MotionGPT local server", version=VERSION,
                  description="Text-to-motion, captioning, prediction and in-betweening on this computer.")
    holder = ModelHolder(load_model)
    jobs = JobQueue(max_queued=max_queued, keep_seconds=keep_seconds, log=_log)
    app.state.jobs = jobs

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        # The default handler echoes the offending input, which cannot be JSON when it
        # is NaN; name the field and say what is wrong, without the input.
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        started = time.monotonic()
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return JSONResponse({"detail": "missing or wrong token (Authorization: Bearer ...)"}, status_code=401)
        length = request.headers.get("content-length")
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            # A streamed body of unknown size could be any size: ask for its length.
            return JSONResponse({"detail": "send Content-Length with the body"}, status_code=411)
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        response = await call_next(request)
        _log(f"{request.method} {request.url.path} {response.status_code} {time.monotonic() - started:.3f}s")
        return response

    def model_or_503():
        if not holder.ready.is_set():
            raise HTTPException(503, "the model is still loading", headers={"Retry-After": "2"})
        if holder.model is None:
            raise HTTPException(503, f"the model could not be loaded: {holder.error}")
        return holder.model

    async def submit(job: Job, wait: bool) -> dict:
        try:
            jobs.submit(job)
        except QueueFull:
            raise HTTPException(429, "too many jobs waiting; try again shortly", headers={"Retry-After": "5"}) from None
        if wait:
            # Waiting happens off the event loop, so other requests keep being served.
            await asyncio.get_running_loop().run_in_executor(None, job.done_event.wait)
        return job.view()

    def sampling(request: api.Sampling):
        from .model.motiongpt import Sampling

        return Sampling(greedy=request.greedy, top_k=request.top_k, temperature=request.temperature)

    @app.get("/health", response_model=api.Health)
    def health():
        model = holder.model
        return api.Health(ready=model is not None, version=VERSION, model=model.name if model else None,
                          architecture=model.describe() if model else None, error=holder.error)

    @app.post("/v1/generate", response_model=api.Job)
    async def generate(request: api.GenerateRequest, wait: bool = False):
        model = model_or_503()
        expected = (request.frames or 196) // 4 * request.samples

        def work(tick):
            motions = model.generate(request.text, request.frames, request.samples, request.seed, sampling(request), tick)
            return {"motions": [_wire(m) for m in motions]}

        return await submit(Job("generate", work, expected, request.frames), wait)

    @app.post("/v1/caption", response_model=api.Job)
    async def caption(request: api.CaptionRequest, wait: bool = False):
        model = model_or_503()
        positions = _motion_positions(request.motion)
        return await submit(Job("caption", lambda tick: {"captions": [model.caption(positions)]}, 1, len(positions)), wait)

    @app.post("/v1/predict", response_model=api.Job)
    async def predict(request: api.PredictRequest, wait: bool = False):
        model = model_or_503()
        positions = _motion_positions(request.motion)

        def work(tick):
            joints = model.predict(positions, request.frames, request.text, request.seed, sampling(request), tick)
            return {"motions": [_wire(joints)]}

        return await submit(Job("predict", work, request.frames // 4, request.frames), wait)

    @app.post("/v1/inbetween", response_model=api.Job)
    async def inbetween(request: api.InbetweenRequest, wait: bool = False):
        model = model_or_503()
        positions = _motion_positions(request.motion)
        if not request.mask_start < request.mask_end < len(positions):
            raise HTTPException(422, detail=[{"loc": ["body", "mask_end"], "type": "value_error",
                                              "msg": f"need mask_start < mask_end < frames ({len(positions)})"}])

        def work(tick):
            joints = model.inbetween(positions, request.mask_start, request.mask_end, request.text, request.seed,
                                     sampling(request), tick)
            return {"motions": [_wire(joints)]}

        return await submit(Job("inbetween", work, len(positions) // 4, request.mask_end - request.mask_start), wait)

    @app.get("/v1/jobs/{job_id}", response_model=api.Job)
    def job_state(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id} (finished jobs are kept for {keep_seconds:g} s)")
        return job.view()

    @app.delete("/v1/jobs/{job_id}", response_model=api.Job)
    def cancel(job_id: str):
        job = jobs.cancel(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job.view()

    return app


def serve(load_model, host: str = "127.0.0.1", port: int = 8765, token: str | None = None) -> None:
    """Run the server (blocking). Refuses a non-loopback address without a token."""
    import uvicorn

    if host not in LOOPBACK and not token:
        raise ValueError(f"refusing to listen on {host} without --token: anyone on the network could use the model")
    uvicorn.run(create_app(load_model, token), host=host, port=port, log_level="warning")
