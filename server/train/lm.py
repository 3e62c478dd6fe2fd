"""Stage 2: the T5 language model over text and motion tokens.

The corpus's motions are first turned into codes by the stage-1 tokenizer (once per
run, for four frame offsets of every clip: a cheap augmentation), a SentencePiece text
tokenizer is trained on the training captions (offline, here), and T5 learns the task
mix of examples.py with the ordinary sequence-to-sequence cross-entropy. A later stage
starts from a model directory instead (model.init), and may read its prompts through a
pretrained sentence encoder (model.text_encoder).

    motiongpt train lm --config server/train/configs/lm-small.toml --out runs/lm
    motiongpt train lm --config server/train/configs/lm-text.toml --out runs/lm-text

The result, runs/lm/model, is a model directory the server and `motiongpt info` load.
"""

import re
from pathlib import Path

import numpy as np
import torch

from retarget.contract import TASKS
from server.model.motiongpt import MotionGPT
from server.model.store import load_model_dir, save_model_dir
from server.model.tokenizer import load_tokenizer, train_tokenizer

from .config import TRAIN_DEFAULTS, ConfigError
from .augment import mirrored_clip, names_a_side, retimed_clip
from .corpus import MOCAP_PREFIX, Clip, clip_actions, load_clips, repeated_indices
from .loop import (BatchSchedule, Processes, RunDirectory, ScheduledOptimizer, StepResult, run_stage, train_steps,
                   write_digest)
from .examples import INSTRUCTION_CHOICES, make_example
from .vocabulary import cover_characters, missing_characters
from .vq import load_vq_dir

DEFAULTS = {
    "data": {"dir": "", "limit": 0},
    "model": {
        "vq": "",  # the stage-1 result (RUN/vq of `motiongpt train vq`)
        # A model directory to start from (its motion tokenizer, text tokenizer and T5
        # weights; the T5 settings below are then its own): a later training stage
        # continues from the committed model this way.
        "init": "",
        # A pretrained sentence encoder that reads the prompts' words (a name in
        # server.model.text_encoder.TEXT_ENCODERS); "" learns text from the corpus alone.
        "text_encoder": "",
        "name": "motiongpt-small",
        "vocab_size": 1000,  # SentencePiece pieces for text (motion tokens come on top)
        "d_model": 256, "d_ff": 1024, "d_kv": 64, "num_heads": 4, "num_layers": 4, "num_decoder_layers": 4,
        "relative_attention_num_buckets": 32, "dropout_rate": 0.1, "feed_forward_proj": "gated-gelu",
    },
    "train": {**TRAIN_DEFAULTS, "lr": 5e-4, "weight_decay": 0.01, "max_codes": 50, "paraphrase": 0.25, "quote": 0.5,
              "steer": 0.5, "text_to_motion": 0.4, "motion_to_text": 0.25, "prediction": 0.15, "inbetween": 0.2,
              "validation_examples": 64,
              # Every real motion-capture training clip again at each of these speeds (augment.py).
              "real_speeds": [],
              # Every training clip whose captions name a side, again mirrored (augment.py).
              "mirror_sides": False,
              # Action -> how many times a training clip showing it is seen per epoch
              # (from the corpus's clips.jsonl; a clip takes its most repeated action).
              "action_repeats": {},
              # Read each text span's sentence embedding as one more input (text_encoder.py);
              # a model continued from one without it gets a fresh projection for it.
              "sentence_token": False,
              # The share of caption spans given by the sentence token alone in training.
              "sentence_only": 0.0},
}


def clip_codes(vae, clips: list[Clip], max_codes: int, batch: int = 64) -> list[list[np.ndarray]]:
    """Each clip's codes for frame offsets 0..3 (a motion shifted by a frame or two is
    the same motion, tokenized a little differently). Windows of the same length are
    encoded together: the encoder is convolutional, so a batch gives each window the
    codes it gets alone."""
    step = vae.config.frames_per_token
    windows = {}  # length -> [(clip, offset)]
    for number, clip in enumerate(clips):
        for offset in range(step):
            usable = min((len(clip.features) - offset) // step, max_codes) * step
            if usable >= step:
                windows.setdefault(usable, []).append((number, offset))
    found = {}
    with torch.inference_mode():
        for usable, members in windows.items():
            for start in range(0, len(members), batch):
                group = members[start:start + batch]
                features = np.stack([clips[n].features[o:o + usable] for n, o in group])
                codes = vae.encode(torch.from_numpy(features)).numpy().astype(np.int16)
                found.update(zip(group, codes))
    return [[found[(n, o)] for o in range(step) if (n, o) in found] for n in range(len(clips))]


def cached_clip_codes(vae, clips: list[Clip], max_codes: int, folder: Path, write: bool = True) -> list[list[np.ndarray]]:
    """clip_codes, kept in the run's folder for the next start of the same run (the run
    directory refuses another configuration, so the corpus and the tokenizer are the
    same; the clip names and the tokenizer's weights are checked all the same)."""
    import hashlib

    digest = hashlib.sha256()
    for clip in clips:
        digest.update(f"{clip.name}:{len(clip.features)};".encode())
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    path = folder / f"codes-{digest.hexdigest()[:16]}.pt"
    if path.is_file():
        return [[np.asarray(v) for v in variants] for variants in torch.load(path, weights_only=False)]
    coded = clip_codes(vae, clips, max_codes)
    if write:  # one process writes (under DDP every rank computes the same codes)
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save(coded, partial)
        partial.replace(path)
    return coded


def remember_cached(embedder, texts, folder: Path, write: bool = True) -> None:
    """The sentence encoder's states of `texts`, computed once and kept in the run's
    folder for its next start (minutes on a CPU for a corpus's captions); keyed by the
    texts and the encoder's name. States of the same encoder kept for another set of
    texts (an earlier stage's, copied into this run's cache) are reused: only new texts
    are computed."""
    import hashlib

    texts = sorted(set(texts))
    name = embedder.encoder.name
    key = hashlib.sha256("\n".join([name, *texts]).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", name)
    path = folder / f"text-states-{slug}-{key}.pt"
    legacy = folder / f"text-states-{key}.pt"  # the name before states were reused across sets
    if path.is_file() or legacy.is_file():
        embedder.kept.update(torch.load(path if path.is_file() else legacy, weights_only=True))
        return
    wanted = set(texts)
    for earlier in sorted(folder.glob(f"text-states-{slug}-*.pt")):
        embedder.kept.update({t: s for t, s in torch.load(earlier, weights_only=True).items() if t in wanted})
    embedder.remember(texts)
    if write:  # one process writes (under DDP every rank computes the same states)
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save({t: embedder.kept[t] for t in texts}, partial)
        partial.replace(path)


def build_examples(coded, clips, indices, seed: int, epoch: int, codebook_size: int, train: dict):
    prompts, answers = [], []
    weights = {task: train[task] for task in TASKS}
    for index in indices:
        rng = np.random.default_rng([seed, epoch, index])
        variants = coded[index]
        codes = variants[rng.integers(len(variants))].tolist()
        caption = clips[index].captions[rng.integers(len(clips[index].captions))]
        prompt, answer = make_example(codes, caption, codebook_size, rng, weights,
                                      train["paraphrase"], train["quote"], train["steer"])
        prompts.append(prompt)
        answers.append(answer)
    return prompts, answers


def encode_batch(model: MotionGPT, prompts, answers, device):
    inputs = model.prompt_inputs(prompts, max_tokens=256)
    tokenizer = model.tokenizer
    labels = tokenizer(answers, return_tensors="pt", padding=True, truncation=True, max_length=256).input_ids
    labels[labels == tokenizer.pad_token_id] = -100  # padding is not a target
    return {**{k: v.to(device) for k, v in inputs.items()}, "labels": labels.to(device)}


def tokenizer_texts(clips: list[Clip]) -> list[str]:
    """What the text tokenizer learns its pieces from: the training captions and the
    prompt templates' words."""
    words = _all_instructions()
    return [caption for clip in clips for caption in clip.captions] + words * 20


def train_lm(config_path, out, overrides=(), restart: bool = False, log=print) -> Path:
    return run_stage(_train, DEFAULTS, config_path, out, overrides, restart, log)


def _train(config: dict, out: Path, processes: Processes, restart: bool, log) -> Path:
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    data, model_config, train = config["data"], config["model"], config["train"]
    processes.set_threads(train["threads"])
    run = RunDirectory(out, config, processes, restart)
    if model_config["init"]:
        model = load_model_dir(model_config["init"])
        model.name = model_config["name"]
        if model_config["vq"]:
            # A tokenizer continued from the init model's (`train vq` with model.init):
            # same codebook size and normalization, codes that moved with the corpus.
            _replace_tokenizer(model, model_config["vq"])
        vae, mean, std = model.vae, model.mean, model.std
    else:
        model = _fresh_model(model_config, train, out, processes, data)
        vae, mean, std = model.vae, model.mean, model.std
    if model_config["text_encoder"] and model.prompt_embedder is None:
        torch.manual_seed(train["seed"])
        model.read_prompts_with(model_config["text_encoder"], instructions=_all_instructions())
    _read_sentences(model, train)
    # Motions are normalized as the tokenizer was trained, whatever corpus this is.
    step_frames = vae.config.frames_per_token
    clips = [c for c in load_clips(data["dir"], "train", min_frames=step_frames, limit=data["limit"] or None,
                                   statistics=(mean, std)) if c.captions]
    if not all(isinstance(speed, (int, float)) and speed > 0 for speed in train["real_speeds"]):
        raise ConfigError(f"train.real_speeds must be positive numbers, got {train['real_speeds']!r}")
    real = [c for c in clips if c.name.startswith(MOCAP_PREFIX)]
    # Only clips that stay at least a code long at the new speed.
    retimed = [retimed_clip(c, speed, mean, std) for speed in train["real_speeds"] for c in real
               if len(c.features) / speed >= step_frames + 2]
    clips += retimed
    mirrored = [mirrored_clip(c, mean, std) for c in clips
                if any(names_a_side(caption) for caption in c.captions)] if train["mirror_sides"] else []
    clips += mirrored
    # Checked here, before the minutes of caption states and codes; applied after coding,
    # so the codes cache stays the corpus's own.
    order = repeated_indices(clips, clip_actions(data["dir"]), train["action_repeats"])
    if model_config["init"]:
        # Characters this corpus's captions use that the model's pieces cannot spell.
        missing = missing_characters(model, (caption for clip in clips for caption in clip.captions))
        if missing:
            model = cover_characters(model, Path(model_config["init"]) / "spiece.model", missing, out / "tokenizer")
            if processes.main:
                log(f"lm: the caption vocabulary gains {len(missing)} characters: {' '.join(missing)}")
    if model.prompt_embedder is not None:
        # Every caption's sentence-encoder states, once: the encoder is frozen, so a
        # step only looks them up (quoted captions are texts of their own).
        captions = {caption for clip in clips for caption in clip.captions}
        texts = captions | ({f'"{c}"' for c in captions} if train["quote"] > 0 else set())
        remember_cached(model.prompt_embedder, texts, out / "cache", write=processes.main)
    lm = model.lm.to(processes.device)
    wrapped = processes.wrap(lm)
    optimizer = ScheduledOptimizer(lm.parameters(), train)
    state = {"model": lm, "optimizer": optimizer}
    step = run.resume(state)

    coded = cached_clip_codes(vae, clips, train["max_codes"], out / "cache", write=processes.main)
    repeats = len(order) - len(clips)
    clips, coded = [clips[i] for i in order], [coded[i] for i in order]
    validation = _validation_batch(model, data["dir"], train, processes.device)
    schedule = BatchSchedule(len(clips), train["batch"], train["seed"], processes)
    if processes.main:
        log(f"lm: {len(clips)} captioned training clips ({len(real)} real capture, {len(retimed)} of it retimed, "
            f"{len(mirrored)} mirrored, {repeats} repeats of train.action_repeats), "
            f"text vocabulary {model.first_code_id}, "
            f"{sum(p.numel() for p in lm.parameters()) / 1e6:.1f} M parameters, {schedule.per_epoch} steps per epoch on each of "
            f"{processes.world} process(es); {'resuming at step ' + str(step) if step else 'starting'}; {train['steps']} steps")

    def compute(epoch, indices):
        prompts, answers = build_examples(coded, clips, indices, train["seed"], epoch, vae.config.codebook_size, train)
        wrapped.train()
        return StepResult(wrapped(**encode_batch(model, prompts, answers, processes.device)).loss)

    def at_checkpoint():
        return {} if validation is None else {"validation_loss": _validation_loss(lm, validation)}

    step = train_steps("lm", run, state, processes, train, schedule, step, compute, log, at_checkpoint)
    result = out / "model"
    if processes.main:
        lm.eval()
        save_model_dir(model, result)
        run.plot("language model")
        log(f"lm: done at step {step}; model in {result}")
    write_digest(lm, out, processes)
    return result


def _read_sentences(model: MotionGPT, train: dict) -> None:
    """train.sentence_token and train.sentence_only, checked and applied."""
    embedder = model.prompt_embedder
    share = train["sentence_only"]
    if not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise ConfigError(f"train.sentence_only must be a share in [0, 1), got {share!r}")
    if train["sentence_token"] and embedder is None:
        raise ConfigError("train.sentence_token needs a model that reads prompts through a text encoder (model.text_encoder)")
    if train["sentence_token"] and not embedder.sentence_token:
        torch.manual_seed(train["seed"])
        embedder.add_sentence_token()
    if share and not (embedder is not None and embedder.sentence_token):
        raise ConfigError("train.sentence_only needs the sentence token (train.sentence_token = true)")
    if embedder is not None:
        embedder.sentence_only = float(share)


def _replace_tokenizer(model: MotionGPT, vq_directory) -> None:
    vae, mean, std = load_vq_dir(vq_directory)
    if vae.config.codebook_size != model.codebook_size or vae.config.frames_per_token != model.frames_per_token:
        raise ValueError(f"model.vq {vq_directory} has {vae.config.codebook_size} codes of {vae.config.frames_per_token} frames; "
                         f"the model of model.init has {model.codebook_size} of {model.frames_per_token}")
    model.vae, model.mean, model.std = vae, np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)


def _fresh_model(model_config: dict, train: dict, out: Path, processes: Processes, data: dict) -> MotionGPT:
    """A model with fresh T5 weights on the stage-1 motion tokenizer, with a text
    tokenizer trained on the corpus's captions."""
    if not model_config["vq"]:
        raise ValueError("model.vq is not set: give the motion tokenizer from `motiongpt train vq` (RUN/vq), "
                         "or model.init, a model directory to continue from")
    vae, mean, std = load_vq_dir(model_config["vq"])
    # The tokenizer is part of the run: built once (rank 0), reused when resuming.
    tokenizer_dir = out / "tokenizer"
    if processes.main and not (tokenizer_dir / "spiece.model").exists():
        clips = [c for c in load_clips(data["dir"], "train", min_frames=vae.config.frames_per_token,
                                       limit=data["limit"] or None, statistics=(mean, std)) if c.captions]
        train_tokenizer(tokenizer_texts(clips), model_config["vocab_size"], vae.config.codebook_size, tokenizer_dir)
    processes.barrier()
    tokenizer = load_tokenizer(tokenizer_dir, vae.config.codebook_size)
    t5 = {k: v for k, v in model_config.items() if k not in ("vq", "name", "vocab_size", "init", "text_encoder")}
    model = MotionGPT.untrained(tokenizer, vae.config, t5, mean, std, name=model_config["name"], seed=train["seed"])
    model.vae = vae
    with torch.no_grad():
        # Hugging Face initializes an untied output layer with unit variance, which gives
        # logits of size sqrt(d_model) and a first loss near 50; MotionGPT starts from
        # pretrained T5 and never meets this. Scale it as the tied layer would be.
        model.lm.lm_head.weight.normal_(0.0, model.lm.config.d_model ** -0.5)
    return model


def _all_instructions() -> list[str]:
    return [instruction for options in INSTRUCTION_CHOICES.values() for instruction in options]


def _validation_batch(model: MotionGPT, directory, train, device):
    """A fixed set of validation examples (same every time), or None without val clips."""
    vae = model.vae
    try:
        clips = [c for c in load_clips(directory, "val", min_frames=vae.config.frames_per_token,
                                       statistics=(model.mean, model.std)) if c.captions]
    except ValueError:
        return None
    clips = clips[:train["validation_examples"]]
    if not clips:
        return None
    coded = clip_codes(vae, clips, train["max_codes"])
    prompts, answers = build_examples(coded, clips, range(len(clips)), 12345, 0, vae.config.codebook_size,
                                      {**train, "paraphrase": 0.0, "quote": 0.0})
    with torch.no_grad():
        return encode_batch(model, prompts, answers, device)


@torch.no_grad()
def _validation_loss(lm, batch) -> float:
    lm.eval()
    return float(lm(**batch).loss)
