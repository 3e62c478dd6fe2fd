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

from retarget.contract import INSTRUCTIONS, TASKS, motion_string, prompt

# Each task's run-time instruction first (retarget.contract, what serving asks); the
# paraphrases follow. All are instructions that open the prompt, so a model that reads
# its text through a pretrained encoder sees the instruction and the caption apart.
PARAPHRASES = {
    "text_to_motion": ["Show me a motion for:", "Animate this description:", "Give me motion tokens for:"],
    "motion_to_text": ["Describe this motion:", "What is the person doing?", "Caption the motion:"],
    "prediction": ["Continue this motion:", "What happens next?"],
    "inbetween": ["Fill in the masked part:", "Inpaint the motion:"],
}
INSTRUCTION_CHOICES = {task: [INSTRUCTIONS[task], *PARAPHRASES[task]] for task in TASKS}


def make_example(codes, caption: str, codebook_size: int, rng: np.random.Generator, weights: dict,
                 paraphrase: float = 0.25, quote: float = 0.5, steer: float = 0.5) -> tuple[str, str]:
    """One (prompt, answer) pair for a clip's codes and one of its captions."""
    tasks = [t for t in TASKS if weights.get(t, 0) > 0]
    if len(codes) < 3:
        tasks = [t for t in tasks if t in ("text_to_motion", "motion_to_text")]
    p = np.array([weights[t] for t in tasks], dtype=float)
    task = tasks[rng.choice(len(tasks), p=p / p.sum())]
    options = INSTRUCTION_CHOICES[task]
    instruction = options[0] if rng.random() >= paraphrase else options[rng.integers(1, len(options))]
    text = f'"{caption}"' if rng.random() < quote else caption
    length = len(codes)
    if task == "text_to_motion":
        return prompt(task, text=text, instruction=instruction), motion_string(codes, codebook_size)
    if task == "motion_to_text":
        return prompt(task, motion=motion_string(codes, codebook_size), instruction=instruction), caption
    if task == "prediction":
        cut = int(rng.integers(max(1, length // 5), max(2, (3 * length) // 5) + 1))
        cut = min(cut, length - 1)
        given, answer = motion_string(codes[:cut], codebook_size), motion_string(codes[cut:], codebook_size)
    else:
        start = int(rng.integers(max(1, length // 8), min(max(2, length // 3) + 1, length - 1)))
        end = int(rng.integers(max(start + 1, (2 * length) // 3), length))
        masked = range(start, max(end, start + 1))
        given, answer = motion_string(codes, codebook_size, masked), motion_string(codes, codebook_size)
    steering = text if rng.random() < steer else None
    return prompt(task, motion=given, text=steering, instruction=instruction), answer
