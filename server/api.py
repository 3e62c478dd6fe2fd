"""The HTTP API's request and response bodies. FastAPI turns these into /openapi.json,
so this file is the API's documentation; malformed input is refused with 422 naming
the field."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from retarget.contract import MAX_FRAMES, MAX_TEXT_CHARS, MIN_FRAMES, MODEL_FPS, WIRE_FORMAT
from retarget.skeleton import JOINT_NAMES

MAX_TEXT = MAX_TEXT_CHARS
MAX_SAMPLES = 8
MAX_INPUT_FRAMES = 2000


class Strict(BaseModel):
    # NaN and infinity are not numbers a motion can hold; unknown fields are typos.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Motion(Strict):
    """A motion in the wire format: joint positions on the SMPL-22 skeleton (metres, Y
    up, +Z forward) with local joint rotations (w, x, y, z)."""

    format: Literal[WIRE_FORMAT] = Field(description=f"format version; this server reads {WIRE_FORMAT!r}")
    fps: float = Field(20.0, gt=0, le=1000)
    joint_names: list[str] = Field(default_factory=lambda: list(JOINT_NAMES), description="the SMPL-22 joints, in order")
    positions: list[list[list[float]]] = Field(description="frames x 22 x 3")
    rotations: list[list[list[float]]] | None = Field(None, description="frames x 22 x 4, optional on input")
    root_translation: list[list[float]] | None = Field(None, description="frames x 3, optional on input")

    @field_validator("joint_names")
    @classmethod
    def _names(cls, names):
        if list(names) != list(JOINT_NAMES):
            raise ValueError("joint_names must be the 22 SMPL joints in order: " + ", ".join(JOINT_NAMES))
        return names

    @field_validator("positions")
    @classmethod
    def _positions(cls, positions):
        if len(positions) == 0 or len(positions) > MAX_INPUT_FRAMES:
            raise ValueError(f"a motion has 1 to {MAX_INPUT_FRAMES} frames, got {len(positions)}")
        if any(len(frame) != 22 or any(len(joint) != 3 for joint in frame) for frame in positions):
            raise ValueError("positions must be frames x 22 x 3")
        return positions


class Sampling(Strict):
    seed: int = Field(0, ge=0, le=2**31 - 1, description="same seed, same result")
    top_k: int = Field(50, ge=1, le=1000)
    temperature: float = Field(1.0, gt=0, le=100)
    greedy: bool = False


class GenerateRequest(Sampling):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="what the motion shows")
    frames: int | None = Field(None, ge=MIN_FRAMES, le=MAX_FRAMES,
                               description=f"length at {MODEL_FPS} fps (rounded down to whole tokens); null: the model decides")
    samples: int = Field(1, ge=1, le=MAX_SAMPLES)


class CaptionRequest(Strict):
    motion: Motion


class PredictRequest(Sampling):
    motion: Motion
    frames: int = Field(ge=MIN_FRAMES, le=MAX_FRAMES, description=f"frames to add at {MODEL_FPS} fps")
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT)


class InbetweenRequest(Sampling):
    motion: Motion
    mask_start: int = Field(ge=1, description="first frame to fill")
    mask_end: int = Field(ge=2, description="frame after the last to fill")
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT)


class JobResult(BaseModel):
    motions: list[dict] | None = Field(None, description="wire-format motions (generate, predict, inbetween)")
    captions: list[str] | None = Field(None, description="captions (caption)")


class Job(BaseModel):
    id: str
    task: Literal["generate", "caption", "predict", "inbetween"]
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    result: JobResult | None = None
    error: str | None = None


class Health(BaseModel):
    ready: bool
    version: str
    model: str | None = None
    architecture: dict | None = None
    error: str | None = None
