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
