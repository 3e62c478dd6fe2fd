"""The contract between training, the model server and the Blender extension.

Everything both sides of a seam must agree on lives here, once: the model's frame rate
and token size, the length limits, the wire format's version, how motion tokens are
written into text, and the task prompts. Training writes prompts with these functions,
serving builds them with the same functions, the API schema states these limits, and the
extension (which ships this package) plans requests with them. If two of them drifted
apart, the model would silently be asked in words it was never taught.

No torch and no bpy, so every side can import it (the extension ships it with the rest
of retarget/).
"""

from dataclasses import dataclass

from .humanml3d import FPS

# --- motion on the wire ---------------------------------------------------------------

WIRE_FORMAT = "motion/1"
MODEL_FPS = FPS  # the model's frame rate (HumanML3D's 20 fps)
FRAMES_PER_TOKEN = 4  # frames one motion token covers (MotionGPT's VQ-VAE downsamples by 4)
MAX_MOTION_TOKENS = 100  # 400 frames, 20 s at 20 fps; the release was trained on at most 49
MAX_FRAMES = MAX_MOTION_TOKENS * FRAMES_PER_TOKEN  # longest motion the model writes
MIN_FRAMES = FRAMES_PER_TOKEN  # shortest motion the model writes (one token)
MIN_INPUT_FRAMES = FRAMES_PER_TOKEN + 1  # shortest motion the model can read (features need a next frame)
MIN_INBETWEEN_FRAMES = 3 * FRAMES_PER_TOKEN + 1  # a token before the gap, one in it, one after
MAX_TEXT_CHARS = 1000
CAPTION_MAX_TOKENS = 40  # new tokens a caption may take

# --- motion tokens in text ---------------------------------------------------------------

MOTION_TOKEN = "<motion_id_{}>"


def motion_token_strings(codebook_size: int) -> list[str]:
    """The motion tokens a tokenizer adds: codes 0..N-1, then start (N), end (N+1) and
    mask (N+2)."""
    return [MOTION_TOKEN.format(k) for k in range(codebook_size + 3)]


def motion_string(codes, codebook_size: int, masked=()) -> str:
    """Codes as MotionGPT writes them into a prompt or an answer: the start token, the
    codes (masked positions as the mask token), the end token."""
    masked = set(masked)
    start, end, mask = (MOTION_TOKEN.format(codebook_size + k) for k in range(3))
    body = "".join(mask if i in masked else MOTION_TOKEN.format(int(c)) for i, c in enumerate(codes))
    return start + body + end


# --- tasks as prompts ------------------------------------------------------------------

TASKS = ("text_to_motion", "motion_to_text", "prediction", "inbetween")

# The instruction that opens each task's prompt: the release's evaluation templates
# (motiongpt-compat.md). A prompt is the instruction, then the motion (if the task reads
# one), then the caption (text-to-motion's subject, or an optional steering text).
INSTRUCTIONS = {
    "text_to_motion": "Generate motion:",
    "motion_to_text": "Generate text:",
    "prediction": "Predict motion:",
    "inbetween": "Complete the masked motion:",
}


def prompt(task: str, motion: str | None = None, text: str | None = None, instruction: str | None = None) -> str:
    """The prompt for `task` as serving asks it and training teaches it. `instruction`
    replaces the task's own (training's paraphrases)."""
    if task not in INSTRUCTIONS:
        raise ValueError(f"unknown task {task!r} (one of {', '.join(TASKS)})")
    parts = [instruction or INSTRUCTIONS[task]]
    if motion is not None:
        parts.append(motion)
    if text:
        parts.append(text)
    return " ".join(parts)


# --- how a model is asked: the project's contract and the release's ----------------------
#
# Two contracts, one per kind of model. The embedded model was trained by this project's
# scripts and is asked the project's way. MotionGPT's released model was trained by the
# official code, whose arithmetic differs in four places; asking it any other way changes
# what users get (motiongpt-compat.md, "Parity measured against the official code"). A
# model's directory records which contract it follows (store.save_model_dir). All the
# arithmetic of both lives here, so the server, the tests and the extension's planning
# read it from one place.

PROJECT_CONTRACT = "project"
OFFICIAL_CONTRACT = "official"
CONTRACTS = (PROJECT_CONTRACT, OFFICIAL_CONTRACT)

# The official code (mGPT/archs/mgpt_lm.py) pads every prompt to 256 tokens and truncates
# there, writes captions with generate(max_length=40), which counts the decoder start token,
# and was trained on HumanML3D clips of 40 to 196 frames (10 to 49 codes).
OFFICIAL_PROMPT_TOKENS = 256
OFFICIAL_CAPTION_MAX_TOKENS = 39
OFFICIAL_PREDICT_RATIO = 0.2
OFFICIAL_INBETWEEN_RATIO = 0.25
RELEASE_MIN_TOKENS = 10
RELEASE_MAX_TOKENS = 49
PROJECT_PROMPT_TOKENS = 512


def official_prediction_prefix(tokens: int) -> int:
    """Codes of a `tokens`-code motion the release sees when it learns to continue it:
    placeholder_fulfill's `int(token_length * predict_ratio + 1)` pieces of the motion
    string, the first of which is the start token (9 of 49). Kept in the official float
    arithmetic, not as a floor, so every T gives the official count."""
    return int(tokens * OFFICIAL_PREDICT_RATIO + 1) - 1


def official_inbetween_span(tokens: int) -> tuple[int, int]:
    """Codes [first, end) of a `tokens`-code motion the release masks for in-betweening:
    placeholder_fulfill keeps `int(T*0.25 + 1)` pieces (start token + codes), masks up to
    piece `int(T*0.75 + 1)`: [floor(0.25T), floor(0.75T)) (12..36 of 49)."""
    head = int(tokens * OFFICIAL_INBETWEEN_RATIO + 1)
    tail = int(tokens * (1 - OFFICIAL_INBETWEEN_RATIO) + 1)
    return head - 1, tail - 1


def _release_windows() -> list[tuple[int, int]]:
    """(window, shortest continuation) for every prefix length the release was trained
    on: a prefix of k codes came from motions of several lengths T (those with
    official_prediction_prefix(T) == k); the shortest of them was continued by the
    fewest codes."""
    shortest = {}
    for tokens in range(RELEASE_MIN_TOKENS, RELEASE_MAX_TOKENS + 1):
        window = official_prediction_prefix(tokens)
        shortest[window] = min(shortest.get(window, tokens), tokens - window)
    return sorted(shortest.items())


_RELEASE_WINDOWS = _release_windows()  # [(2, 8), (3, 12), ..., (9, 36)]


@dataclass(frozen=True)
class ModelContract:
    """How one kind of model is asked: prompt padding, caption length, the prediction
    window, the in-between mask. `name` is what a model directory's config.json records."""

    name: str
    prompt_tokens: int  # prompts are truncated here
    pad_prompts: bool  # pad every prompt to prompt_tokens (the official call) or to the batch's longest
    caption_max_tokens: int  # new tokens a caption may take (the decoder start token not counted)
    model_decides_prediction_length: bool

    def prediction_window(self, given: int, wanted: int) -> int:
        """How many of the `given` codes (the newest) the model reads to continue the motion
        by `wanted` codes.

        Project: every given code. Official: the release learned to continue the first
        20% of a motion (official_prediction_prefix) with the rest of it, so it reads
        the window it was trained on whose motions were all continued by at least
        `wanted` codes (the smallest such window: a fifth of the motion the continuation
        completes), at most 9 (of 49, its longest motions) and never more than given."""
        if given < 1 or wanted < 1:
            raise ValueError(f"prediction needs at least one given and one wanted code, got {given} and {wanted}")
        if not self.model_decides_prediction_length:
            return given
        window = next((k for k, shortest in _RELEASE_WINDOWS if shortest >= wanted), _RELEASE_WINDOWS[-1][0])
        return min(window, given)

    def inbetween_codes(self, mask_start: int, mask_end: int, tokens: int) -> range:
        """The codes of a `tokens`-code motion to mask for frames [mask_start, mask_end).

        Project: every code that holds a masked frame. Official: the codes whose first
        frame the range covers, counting from floor(mask_start / 4) to floor(mask_end / 4):
        for the release's own frame range ([T, 3T) of 4T frames, the reference demo) this
        is official_inbetween_span(T) for every T. A range inside one code masks that code.
        Codes past the motion's last are left out (empty: the range starts after them)."""
        step = FRAMES_PER_TOKEN
        if not 0 <= mask_start < mask_end:
            raise ValueError(f"the mask [{mask_start}, {mask_end}) is not a range of frames")
        first = mask_start // step
        if self.name == OFFICIAL_CONTRACT:
            end = max(mask_end // step, first + 1)
        else:
            end = -(-mask_end // step)
        return range(first, min(end, tokens))


MODEL_CONTRACTS = {
    PROJECT_CONTRACT: ModelContract(PROJECT_CONTRACT, prompt_tokens=PROJECT_PROMPT_TOKENS, pad_prompts=False,
                                    caption_max_tokens=CAPTION_MAX_TOKENS, model_decides_prediction_length=False),
    OFFICIAL_CONTRACT: ModelContract(OFFICIAL_CONTRACT, prompt_tokens=OFFICIAL_PROMPT_TOKENS, pad_prompts=True,
                                     caption_max_tokens=OFFICIAL_CAPTION_MAX_TOKENS, model_decides_prediction_length=True),
}


def model_contract(name: str | None) -> ModelContract:
    """The contract called `name`; None (a model directory saved before contracts were
    recorded) is the project's."""
    if name is None:
        return MODEL_CONTRACTS[PROJECT_CONTRACT]
    if name not in MODEL_CONTRACTS:
        raise ValueError(f"unknown model contract {name!r} (one of {', '.join(CONTRACTS)})")
    return MODEL_CONTRACTS[name]
