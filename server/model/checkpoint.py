"""Reading MotionGPT's released checkpoint without running code from it.

The release is a PyTorch Lightning checkpoint: a pickle whose "state_dict" holds the
weights, next to training state and, probably, the training configuration as OmegaConf
objects. `torch.load(weights_only=True)` refuses such objects. Here the pickle is read
by torch's weights-only unpickler, with one addition: the configuration classes it may
meet (OmegaConf, typing and a few plain containers) are read into inert stand-ins that
hold their data and can do nothing. Any other global (a function such as os.system, a
class from elsewhere) makes loading fail with its name. Only "state_dict" is kept.
"""

from pathlib import Path

import torch

# Module prefixes whose objects a Lightning checkpoint stores as configuration. They
# are replaced by stand-ins, never imported.
_CONFIG_MODULES = ("omegaconf", "typing", "collections", "pathlib", "argparse", "enum", "builtins.set")

# Entries of the released state dict that are not model weights: the reference code
# drops keys containing these, then loads strictly.
NON_WEIGHT_MARKERS = ("_losses", "Metrics")


class InertObject:
    """Stands in for a configuration object from a checkpoint: keeps what the pickle
    gives it, does nothing with it."""

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):  # dict-like classes get their items set
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value):  # list-like classes get appended to
        self.__dict__.setdefault("values", []).append(value)


def _stand_in(qualified_name: str):
    module, _, name = qualified_name.rpartition(".")
    return type(name, (InertObject,), {"__module__": module, "__qualname__": name})


class CheckpointError(ValueError):
    """A checkpoint that cannot be read safely or does not match the model."""


def read_lightning_state_dict(path) -> dict:
    """The tensors under "state_dict" of a Lightning checkpoint, read safely."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as error:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({error})") from None
    refused = [name for name in unsafe if not name.startswith(_CONFIG_MODULES)]
    if refused:
        raise CheckpointError(
            f"{path}: refusing to load: the pickle references {', '.join(sorted(refused))}, "
            "which a weights checkpoint has no reason to contain (it could run code)"
        )
    stand_ins = [(_stand_in(name), name) for name in unsafe]
    try:
        with torch.serialization.safe_globals(stand_ins):
            content = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: cannot be read safely ({error})") from None
    state = content.get("state_dict") if isinstance(content, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: has no 'state_dict' (is it a Lightning checkpoint?)")
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}


def split_official_state_dict(state: dict) -> tuple[dict, dict]:
    """Split the released state dict into the VQ-VAE's and the T5 model's weights.

    Losses and evaluator networks are dropped on purpose; any other key outside the two
    models is an error, so nothing is ignored by accident.
    """
    vae, lm, unknown = {}, {}, []
    for key, value in state.items():
        if any(marker in key for marker in NON_WEIGHT_MARKERS):
            continue
        if key.startswith("vae."):
            vae[key[len("vae."):]] = value
        elif key.startswith("lm.language_model."):
            lm[key[len("lm.language_model."):]] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError("unexpected keys outside the VQ-VAE and the language model: " + ", ".join(sorted(unknown)[:10]))
    return vae, lm


def load_strict(module: torch.nn.Module, state: dict, what: str) -> None:
    """load_state_dict(strict) with a message that lists missing, unexpected and
    mis-shaped keys instead of torch's wall of text."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{key} {tuple(state[key].shape)} (model: {tuple(expected[key].shape)})"
        for key in set(state) & set(expected) if state[key].shape != expected[key].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing[:10])}" + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
    if unexpected:
        more = f" and {len(unexpected) - 10} more" if len(unexpected) > 10 else ""
        problems.append(f"unexpected keys: {', '.join(unexpected[:10])}{more}")
    if wrong_shape:
        problems.append(f"shapes differ: {', '.join(wrong_shape[:10])}")
    if problems:
        raise CheckpointError(f"{what} does not match the checkpoint: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def read_stage_config(directory, expected_format: str, what: str, command: str) -> dict:
    """A trained stage's config.json (the motion tokenizer's, the evaluator's), checked
    for its format; `what` and `command` name the stage in the error."""
    import json
    from pathlib import Path

    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: not {what} (no config.json; train one with `{command}`)")
    config = json.loads(config_path.read_text())
    if config.get("format") != expected_format:
        raise CheckpointError(f"{directory}: unknown format {config.get('format')!r} (expected {expected_format!r})")
    return config
