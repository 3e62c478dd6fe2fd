"""The instruction mix the language model learns from: each training example is one of
MotionGPT's tasks written as a prompt and its answer.

    text-to-motion     "Generate motion: <caption>"             -> <motion>
    motion-to-text     "Generate text: <motion>"                -> <caption>
    prediction         "Predict motion: <first part>"           -> <the rest>
    in-between         "Complete the masked motion: <masked>"   -> <the whole motion>

Prediction and in-between also come with the caption appended ("text-steered"), as the
server sends them when the user gives a prompt. Most prompts use exactly the templates
the model is asked with at run time (server/model/motiongpt.py); a share uses
paraphrases, and captions are quoted half the time as MotionGPT does, so the model does
not hang on one wording.
"""

import numpy as np

TASKS = ("text_to_motion", "motion_to_text", "prediction", "inbetween")

# Run-time templates first; the paraphrases follow.
TEMPLATES = {
    "text_to_motion": ["Generate motion: {caption}", "Show me a motion for: {caption}",
                       "Animate this description: {caption}", "Give me motion tokens for: {caption}"],
    "motion_to_text": ["Generate text: {motion}", "Describe this motion: {motion}",
                       "What is the person doing in {motion}?", "Caption the motion {motion}"],
    "prediction": ["Predict motion: {motion}", "Continue this motion: {motion}", "What happens next after {motion}?"],
    "inbetween": ["Complete the masked motion: {motion}", "Fill in the masked part of {motion}",
                  "Inpaint the motion {motion}"],
}


def motion_string(codes, codebook_size: int, masked=()) -> str:
    """Codes as MotionGPT writes them into text: start token, codes (masked ones as the
    mask token), end token."""
    masked = set(masked)
    tokens = [f"<motion_id_{codebook_size}>"]
    tokens += [f"<motion_id_{codebook_size + 2}>" if i in masked else f"<motion_id_{c}>" for i, c in enumerate(codes)]
    tokens.append(f"<motion_id_{codebook_size + 1}>")
    return "".join(tokens)


def make_example(codes, caption: str, codebook_size: int, rng: np.random.Generator, weights: dict,
                 paraphrase: float = 0.25, quote: float = 0.5, steer: float = 0.5) -> tuple[str, str]:
    """One (prompt, answer) pair for a clip's codes and one of its captions."""
    tasks = [t for t in TASKS if weights.get(t, 0) > 0]
    if len(codes) < 3:
        tasks = [t for t in tasks if t in ("text_to_motion", "motion_to_text")]
    p = np.array([weights[t] for t in tasks], dtype=float)
    task = tasks[rng.choice(len(tasks), p=p / p.sum())]
    options = TEMPLATES[task]
    template = options[0] if rng.random() >= paraphrase else options[rng.integers(1, len(options))]
    text = f'"{caption}"' if rng.random() < quote else caption
    length = len(codes)
    if task == "text_to_motion":
        return template.format(caption=text), motion_string(codes, codebook_size)
    if task == "motion_to_text":
        return template.format(motion=motion_string(codes, codebook_size)), caption
    if task == "prediction":
        cut = int(rng.integers(max(1, length // 5), max(2, (3 * length) // 5) + 1))
        cut = min(cut, length - 1)
        prompt = template.format(motion=motion_string(codes[:cut], codebook_size))
        answer = motion_string(codes[cut:], codebook_size)
    else:
        start = int(rng.integers(max(1, length // 8), min(max(2, length // 3) + 1, length - 1)))
        end = int(rng.integers(max(start + 1, (2 * length) // 3), length))
        masked = range(start, max(end, start + 1))
        prompt = template.format(motion=motion_string(codes, codebook_size, masked))
        answer = motion_string(codes, codebook_size)
    if rng.random() < steer:
        prompt += f" {text}"
    return prompt, answer
