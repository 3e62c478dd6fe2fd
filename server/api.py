"""The HTTP API's request and response bodies. FastAPI turns these into /openapi.json,
so this file is the API's documentation; malformed input is refused with 422 naming
the field.

Types are strict (`greedy: 0`, `seed: false` or `"1.0"` for a number are refused) and
every limit a single field can state is in the schema. The limits that join fields (a
motion's length once resampled to the model's 20 fps, a mask inside the motion) are in
the descriptions and checked by the server before a job exists (server/app.py)."""

from typing import Annotated, Literal

import numpy as np

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr

from retarget.contract import (FRAMES_PER_TOKEN, MAX_FRAMES, MAX_TEXT_CHARS, MIN_FRAMES, MIN_INBETWEEN_FRAMES,
                               MIN_INPUT_FRAMES, MODEL_FPS, WIRE_FORMAT)
from retarget.skeleton import JOINT_NAMES, rest_positions

MAX_TEXT = MAX_TEXT_CHARS
MAX_SAMPLES = 8
# The longest motion the server reads, counted at the model's 20 fps (100 s): a server
# limit on memory and time, not the model's (the model reads any length it is given).
MAX_INPUT_FRAMES = 2000
MIN_FPS, MAX_FPS = 1.0, 1000.0
# Metres from the origin: far beyond any motion, small enough that no sum of them overflows.
MAX_COORDINATE = 1e4
# Sampling divides the logits by the temperature: below this, finite logits could overflow.
MIN_TEMPERATURE = 1e-3
JOINTS = len(JOINT_NAMES)


def resampled_frames(frames: int, fps: float) -> int:
    """How many frames a motion of `frames` frames at `fps` has at the model's 20 fps,
    computed as retarget.motion.Motion.resampled computes it, without resampling."""
    if frames < 2 or abs(fps - MODEL_FPS) < 1e-9:
        return frames
    return int((frames - 1) / fps * MODEL_FPS + 1e-6) + 1


class Strict(BaseModel):
    # NaN and infinity are not numbers a motion can hold; unknown fields are typos; a
    # number is not a boolean, nor a string a number.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, regex_engine="python-re")




def _whole_number(value):
    # JSON Schema counts 6.0 as an integer; a boolean or a string is not one.
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**63 else value


# An integer: refuses true/false and "6" (strict), accepts 6 and 6.0.
StrictInt = Annotated[int, BeforeValidator(_whole_number)]
Coordinate = Annotated[float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]
Component = Annotated[float, Field(ge=-2.0, le=2.0)]
Point = Annotated[list[Coordinate], Field(min_length=3, max_length=3)]
Quaternion = Annotated[list[Component], Field(min_length=4, max_length=4)]
# Text the model can read: at least one character that is not white space.
Text = Annotated[StrictStr, Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S",
                                  description=f"at least one character other than white space, at most {MAX_TEXT}")]
JointNames = Annotated[list[StrictStr], Field(min_length=JOINTS, max_length=JOINTS, json_schema_extra={"const": list(JOINT_NAMES)})]

MOTION_LENGTH = (f"{MIN_INPUT_FRAMES} to {MAX_INPUT_FRAMES} frames once resampled to the model's {MODEL_FPS:g} fps: "
                 f"floor((frames - 1) * {MODEL_FPS:g} / fps) + 1")


class MotionIn(Strict):
    """A motion in the wire format: joint positions on the SMPL-22 skeleton (metres, Y
    up, +Z forward) with local joint rotations (w, x, y, z). Every frame has the 22 SMPL
    joints in `joint_names` order. It must have MOTION_LENGTH, and bones
    of some length (all joints at one point fit no skeleton: 422 `motion_shape`)."""

    format: Literal[WIRE_FORMAT] = Field(description=f"format version; this server reads {WIRE_FORMAT!r}")
    fps: float = Field(MODEL_FPS, ge=MIN_FPS, le=MAX_FPS, description="frames per second")
    joint_names: JointNames = Field(default_factory=lambda: list(JOINT_NAMES),
                                    description=f"the {JOINTS} SMPL joints, exactly in this order: " + ", ".join(JOINT_NAMES))
    positions: list[Annotated[list[Point], Field(min_length=JOINTS, max_length=JOINTS)]] = Field(
        min_length=MIN_INPUT_FRAMES, max_length=MAX_INPUT_FRAMES,
        description=f"frames x {JOINTS} joints x 3 (metres); {MOTION_LENGTH}")
    rotations: list[Annotated[list[Quaternion], Field(min_length=JOINTS, max_length=JOINTS)]] | None = Field(
        None, max_length=MAX_INPUT_FRAMES,
        description=f"frames x {JOINTS} x 4, optional on input; used with root_translation when they agree with the positions")
    root_translation: list[Point] | None = Field(None, max_length=MAX_INPUT_FRAMES,
                                                 description="frames x 3, optional on input")


MotionIn.__doc__ = MotionIn.__doc__.replace("MOTION_LENGTH", MOTION_LENGTH)


class InbetweenMotion(MotionIn):
    """A motion to fill a gap in: as MotionIn, with {MIN_INBETWEEN_FRAMES} to {MAX_FRAMES} frames once resampled to
    the model's 20 fps."""

    positions: list[Annotated[list[Point], Field(min_length=JOINTS, max_length=JOINTS)]] = Field(
        min_length=MIN_INBETWEEN_FRAMES, max_length=MAX_INPUT_FRAMES,
        description=f"frames x {JOINTS} joints x 3 (metres); {MIN_INBETWEEN_FRAMES} to {MAX_FRAMES} frames once "
                    f"resampled to the model's {MODEL_FPS:g} fps: floor((frames - 1) * {MODEL_FPS:g} / fps) + 1")


InbetweenMotion.__doc__ = InbetweenMotion.__doc__.format(MIN_INBETWEEN_FRAMES=MIN_INBETWEEN_FRAMES, MAX_FRAMES=MAX_FRAMES)


class SamplingOptions(Strict):
    seed: StrictInt = Field(0, ge=0, le=2**31 - 1, description="same seed, same result")
    # The bounds sit on the number inside the Optional, so the schema states them too.
    top_k: Annotated[int, Field(ge=1, le=1000), BeforeValidator(_whole_number)] | None = Field(
        None, description="sample among the k most likely tokens; null: the model's own (50)")
    temperature: Annotated[float, Field(ge=MIN_TEMPERATURE, le=100)] | None = Field(
        None, description=f"sampling temperature, {MIN_TEMPERATURE:g} to 100; null: the model's own (0.7 for the "
                          "embedded model, 1.0 for MotionGPT's release)")
    greedy: StrictBool = Field(False, description="always take the most likely token (ignores top_k and temperature)")


class GenerateRequest(SamplingOptions):
    text: Text = Field(description="what the motion shows")
    frames: Annotated[int, Field(ge=MIN_FRAMES, le=MAX_FRAMES), BeforeValidator(_whole_number)] | None = Field(
        None, description=f"length at {MODEL_FPS:g} fps, {MIN_FRAMES} to {MAX_FRAMES} (rounded down to "
                                                 f"whole tokens of {FRAMES_PER_TOKEN} frames); null: the model decides")
    samples: StrictInt = Field(1, ge=1, le=MAX_SAMPLES)


class CaptionRequest(Strict):
    motion: MotionIn


class PredictRequest(SamplingOptions):
    motion: MotionIn
    frames: StrictInt = Field(ge=MIN_FRAMES, le=MAX_FRAMES, description=f"frames to add at {MODEL_FPS:g} fps")
    text: Text | None = Field(None, description="optional steering text")


class InbetweenRequest(SamplingOptions):
    """The motion, once resampled to 20 fps, must have {MIN_INBETWEEN_FRAMES} to {MAX_FRAMES}
    frames; the gap [mask_start, mask_end) is counted in those frames, must have a frame on
    each side (mask_end < frames) and must leave at least one {FRAMES_PER_TOKEN}-frame token
    of the motion outside it."""

    motion: InbetweenMotion
    mask_start: StrictInt = Field(ge=1, le=MAX_FRAMES - 2, description=f"first frame to fill (at {MODEL_FPS:g} fps)")
    mask_end: StrictInt = Field(ge=2, le=MAX_FRAMES - 1, description="frame after the last to fill; more than mask_start")
    text: Text | None = Field(None, description="optional steering text")


InbetweenRequest.__doc__ = InbetweenRequest.__doc__.format(
    MIN_INBETWEEN_FRAMES=MIN_INBETWEEN_FRAMES, MAX_FRAMES=MAX_FRAMES, FRAMES_PER_TOKEN=FRAMES_PER_TOKEN)


def _example_motion(frames: int = 20) -> dict:
    """A short motion for the schema's examples: the rest pose, feet on the floor,
    gliding forward 2 cm a frame."""
    pose = rest_positions()
    pose[:, 1] -= pose[:, 1].min()
    glide = np.arange(frames)[:, None, None] * np.array([0.0, 0.0, 0.02])
    return {"format": WIRE_FORMAT, "fps": float(MODEL_FPS), "positions": np.round(pose[None] + glide, 3).tolist()}


# Request examples for the schema (and so for its readers and for fuzzers' first cases).
EXAMPLES = {
    "GenerateRequest": {"text": "a person walks forward", "frames": 40, "seed": 1},
    "CaptionRequest": {"motion": _example_motion()},
    "PredictRequest": {"motion": _example_motion(), "frames": 20},
    "InbetweenRequest": {"motion": _example_motion(), "mask_start": 8, "mask_end": 12, "text": "a person walks"},
}


# --- responses -----------------------------------------------------------------------------


class MotionOut(BaseModel):
    """A motion the server wrote, in the wire format, at the model's 20 fps."""

    format: Literal[WIRE_FORMAT]
    fps: float
    joint_names: list[str] = Field(description="the 22 SMPL joints, in order")
    positions: list[list[list[float]]] = Field(description="frames x 22 x 3 (metres)")
    rotations: list[list[list[float]]] = Field(description="frames x 22 x 4 (w, x, y, z)")
    root_translation: list[list[float]] = Field(description="frames x 3")


class JobResult(BaseModel):
    motions: list[MotionOut] | None = Field(None, description="wire-format motions (generate, predict, inbetween)")
    captions: list[str] | None = Field(None, description="captions (caption)")


class Job(BaseModel):
    id: str
    task: Literal["generate", "caption", "predict", "inbetween"]
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    result: JobResult | None = None
    error: str | None = Field(None, description="why a job failed or was cancelled")


class Open(BaseModel):
    # What a model describes may grow; the fields named here are always there.
    model_config = ConfigDict(extra="allow")


class LanguageModel(Open):
    encoder_layers: int
    decoder_layers: int
    d_model: int
    vocabulary: int
    motion_tokens: int


class MotionTokenizer(Open):
    codebook_size: int
    frames_per_token: int


class ModelSampling(Open):
    top_k: int
    temperature: float


class Architecture(Open):
    name: str
    text_encoder: str | None = None
    sampling: ModelSampling | None = Field(None, description="what a request whose top_k or temperature is null gets")
    contract: str | None = Field(None, description="how the model is asked: 'project' (models trained here) or 'official' "
                                                   "(MotionGPT's release: prompts padded to 256 tokens, 39-token captions, "
                                                   "prediction from the window it was trained on)")
    language_model: LanguageModel
    motion_tokenizer: MotionTokenizer
    parameters: dict[str, int]


class Health(BaseModel):
    ready: bool = Field(description="the model is loaded and jobs are accepted")
    version: str
    model: str | None = Field(None, description="the model's name, once loaded")
    architecture: Architecture | None = None
    error: str | None = Field(None, description="why the model could not be loaded")


# The `type` of a 422 for a rule that joins fields, which no JSON Schema keyword states.
RULE_MOTION_LENGTH = "motion_length"  # frames once resampled to 20 fps outside the task's range
RULE_MASK = "mask"  # the gap not inside the motion, or covering all of it
RULE_MOTION_SHAPE = "motion_shape"  # joints that no SMPL-22 skeleton fits (bones of no length)


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="where: body, query or path, then the field")
    msg: str
    type: str = Field(description=f"the rule broken; for rules that join fields: {RULE_MOTION_LENGTH}, {RULE_MASK}, "
                                  f"{RULE_MOTION_SHAPE}")


class Invalid(BaseModel):
    detail: list[ValidationIssue]


class Refusal(BaseModel):
    detail: str


REFUSALS = {
    400: {"model": Refusal, "description": "the Host header names no address this server serves"},
    401: {"model": Refusal, "description": "a token is set and the request lacks it (Authorization: Bearer ...)"},
    422: {"model": Invalid, "description": "malformed input; `loc` names the field and `msg` the limit"},
}
BODY_REFUSALS = {
    411: {"model": Refusal, "description": "a body without Content-Length"},
    413: {"model": Refusal, "description": "a body over 8 MB"},
    429: {"model": Refusal, "description": "too many jobs waiting (Retry-After says when to try again)",
          "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}},
    503: {"model": Refusal, "description": "the model is loading or could not be loaded, or the server is stopping"},
}
NOT_FOUND = {404: {"model": Refusal, "description": "no such job (finished jobs are kept 10 minutes; a deleted one is gone)"}}
