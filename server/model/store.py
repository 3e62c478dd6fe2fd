"""Loading and saving models.

Two sources, one MotionGPT:

- the project's own format, a directory with `model.safetensors` (keys `vae.*` and
  `lm.*`), `config.json`, the tokenizer files and `mean.npy` / `std.npy`;
- MotionGPT's released checkpoint (`motiongpt_s3_h3d.tar`) with flan-t5-base's
  directory (its config.json and tokenizer) and the release's normalization statistics
  (shipped here in release_meta/, MIT licence, OpenMotionLab/MotionGPT).

Both load strictly: a key missing, unexpected or of another shape is an error that
names it.

A model directory also records which contract the model is asked by
(retarget.contract: "project" for the models this project trains, "official" for the
release, converted or not); a directory without the field is the project's.
"""

import json
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import T5Config, T5ForConditionalGeneration

from retarget.contract import OFFICIAL_CONTRACT, model_contract

from .checkpoint import CheckpointError, load_strict, read_lightning_state_dict, split_official_state_dict
from .motiongpt import MotionGPT, Sampling
from .text_encoder import PromptEmbedder, SentenceEncoder, TextEncoderMissing
from .tokenizer import load_tokenizer
from .vqvae import VQVAE, VQVAEConfig

FORMAT = "motiongpt-model/1"
RELEASE_META = Path(__file__).resolve().parent / "release_meta"
# The model that ships with the project, trained by its own scripts (see the README's model card).
DEFAULT_MODEL = Path(__file__).resolve().parent / "default"
# T5 ties these to `shared`; safetensors stores one copy.
_TIED = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


def save_model_dir(model: MotionGPT, directory, dtype: torch.dtype = torch.float32) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"vae.{k}": v for k, v in model.vae.state_dict().items()}
    tensors.update({f"lm.{k}": v for k, v in model.lm.state_dict().items() if k not in _TIED})
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    save_file(tensors, str(directory / "model.safetensors"))
    config = {"format": FORMAT, "name": model.name, "contract": model.contract.name, "vae": model.vae.config.to_dict(),
              "t5": model.lm.config.to_dict()}
    if model.prompt_embedder is not None:
        # Which pretrained encoder reads the prompts (its weights come from its package,
        # not from this directory), and the instructions the model was taught.
        config["text_encoder"] = {"name": model.prompt_embedder.encoder.name,
                                  "instructions": model.prompt_embedder.instructions}
        if model.prompt_embedder.sentence_token:
            config["text_encoder"]["sentence_token"] = True
    if model.default_sampling != Sampling():
        config["sampling"] = {"top_k": model.default_sampling.top_k, "temperature": model.default_sampling.temperature}
    (directory / "config.json").write_text(json.dumps(config, indent=2, default=str))
    model.tokenizer.save_pretrained(str(directory))
    np.save(directory / "mean.npy", model.mean)
    np.save(directory / "std.npy", model.std)
    return directory


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise CheckpointError(f"{path}: {what} is missing")
    return path


def _recorded_sampling(directory: Path, recorded: dict) -> Sampling:
    """The sampling a model's config recommends (top_k, temperature), checked."""
    unknown = set(recorded) - {"top_k", "temperature"}
    try:
        if unknown:
            raise ValueError(f"unknown settings {', '.join(sorted(unknown))}")
        sampling = replace(Sampling(), **recorded)  # unset settings keep Sampling's own defaults
        sampling.validate()
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{directory}: config.json's sampling: {error}") from None
    return sampling


def load_model_dir(directory) -> MotionGPT:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    config = json.loads(_require(directory / "config.json", "the model's config.json").read_text())
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{directory}: unknown model format {config.get('format')!r} (expected {FORMAT!r})")
    try:
        contract = model_contract(config.get("contract"))
    except ValueError as error:
        raise CheckpointError(f"{directory}: {error}") from None
    known = {f.name for f in fields(VQVAEConfig)}
    vae = VQVAE(VQVAEConfig(**{k: v for k, v in config["vae"].items() if k in known}))
    lm = T5ForConditionalGeneration(T5Config(**config["t5"]))
    encoder = None
    if config.get("text_encoder"):
        try:
            encoder = SentenceEncoder(config["text_encoder"]["name"])
        except TextEncoderMissing as error:
            raise CheckpointError(f"{directory}: {error}") from None
        lm.prompt_projection = PromptEmbedder.projection_for(encoder, lm.config.d_model)
        if config["text_encoder"].get("sentence_token"):
            lm.prompt_sentence_projection = PromptEmbedder.projection_for(encoder, lm.config.d_model)
    tensors = load_file(str(_require(directory / "model.safetensors", "the weights file model.safetensors")))
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    load_strict(vae, {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}, "the VQ-VAE")
    lm_state = {k[3:]: v for k, v in tensors.items() if k.startswith("lm.")}
    if "shared.weight" in lm_state:
        lm_state.update({key: lm_state["shared.weight"] for key in _TIED})
    load_strict(lm, lm_state, "the language model")
    stray = [k for k in tensors if not k.startswith(("vae.", "lm."))]
    if stray:
        raise CheckpointError(f"{directory}: unexpected tensors {', '.join(stray[:5])}")
    tokenizer = load_tokenizer(directory, vae.config.codebook_size)
    mean = np.load(_require(directory / "mean.npy", "mean.npy"))
    std = np.load(_require(directory / "std.npy", "std.npy"))
    model = MotionGPT(vae, lm, tokenizer, mean, std, name=config.get("name", directory.name), contract=contract)
    model.default_sampling = _recorded_sampling(directory, config.get("sampling") or {})
    if encoder is not None:
        model.prompt_embedder = PromptEmbedder(encoder, lm, tokenizer, config["text_encoder"].get("instructions", ()))
    return model


def load_official(checkpoint, t5_directory, meta_directory=RELEASE_META) -> MotionGPT:
    """MotionGPT's released checkpoint, unchanged."""
    t5_directory = Path(t5_directory)
    meta_directory = Path(meta_directory)
    _require(t5_directory / "config.json", "flan-t5-base's config.json (give --t5 the flan-t5-base directory)")
    state = read_lightning_state_dict(checkpoint)
    vae_state, lm_state = split_official_state_dict(state)
    codebook = vae_state.get("quantizer.codebook")
    if codebook is None:
        raise CheckpointError(f"{checkpoint}: has no motion codebook (vae.quantizer.codebook)")
    vae = VQVAE(VQVAEConfig(codebook_size=codebook.shape[0], code_dim=codebook.shape[1]))
    load_strict(vae, vae_state, "the VQ-VAE")
    tokenizer = load_tokenizer(t5_directory, vae.config.codebook_size)
    t5_config = T5Config.from_pretrained(str(t5_directory), local_files_only=True)
    t5_config.vocab_size = len(tokenizer)
    t5_config.tie_word_embeddings = False
    lm = T5ForConditionalGeneration(t5_config)
    load_strict(lm, lm_state, "the language model")
    mean = np.load(_require(meta_directory / "mean.npy", "the release's mean.npy"))
    std = np.load(_require(meta_directory / "std.npy", "the release's std.npy"))
    return MotionGPT(vae, lm, tokenizer, mean, std, name=f"MotionGPT release ({Path(checkpoint).name})",
                     contract=OFFICIAL_CONTRACT)


def load_any(model=None, checkpoint=None, t5=None, meta=None) -> MotionGPT:
    """What the command line and the server load: a model directory, or an official
    checkpoint with its flan-t5-base directory."""
    if checkpoint is not None:
        if t5 is None:
            raise CheckpointError("an official checkpoint needs --t5 DIR (the flan-t5-base directory with config.json and tokenizer)")
        return load_official(checkpoint, t5, meta or RELEASE_META)
    if model is None:
        if not (DEFAULT_MODEL / "config.json").is_file():
            raise CheckpointError(f"the embedded default model is missing from {DEFAULT_MODEL}; "
                                  "give --model DIR or --checkpoint FILE --t5 DIR")
        model = DEFAULT_MODEL
    return load_model_dir(model)
