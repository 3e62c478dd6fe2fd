"""Training configurations are TOML files with three tables:

    [data]   dir: the corpus in HumanML3D's layout
    [model]  the architecture (VQVAEConfig fields for `vq`; T5 and tokenizer sizes for `lm`)
    [train]  steps, batch, learning-rate schedule, checkpoint and log intervals, seed

Command-line `--set section.key=value` overrides a value, so one file serves a quick
test and a long run. The resolved configuration is saved beside the run, and a resumed
run must match it.
"""

import copy
import json
import tomllib
from pathlib import Path

# What every run accepts in [train]; the stage modules add their own defaults.
TRAIN_DEFAULTS = {
    "steps": 1000,
    "batch": 32,  # per process: under torchrun the global batch is batch x processes
    "lr": 2e-4,
    "weight_decay": 0.0,
    "warmup": 100,
    "schedule": "cosine",  # "cosine" decays to min_lr_ratio x lr at the last step; "constant"
    "min_lr_ratio": 0.1,
    "grad_clip": 1.0,
    "log_every": 10,
    "checkpoint_every": 200,
    # Stop after this step (0: at `steps`) and write the result there; the rate still
    # follows the schedule of `steps`, so the same run resumes to its end without it.
    "stop_at": 0,
    "seed": 0,
    "threads": 0,  # torch threads per process; 0 = the cores this process may use / processes
}


class ConfigError(ValueError):
    pass


def load_config(path, defaults: dict, overrides=()) -> dict:
    """The configuration in `path` on top of `defaults` ({section: {key: value}}), then
    `overrides` ("section.key=value", the value parsed as TOML, else kept as text)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        loaded = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    config = copy.deepcopy(defaults)
    for section, values in loaded.items():
        _merge(config, section, values, str(path))
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        _merge(config, section, {name: value}, "--set")
    return config


def _merge(config: dict, section: str, values, source: str) -> None:
    if section not in config:
        raise ConfigError(f"{source}: unknown section [{section}] (known: {', '.join(config)})")
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: [{section}] must be a table")
    for key, value in values.items():
        if key not in config[section]:
            raise ConfigError(f"{source}: unknown key {section}.{key} (known: {', '.join(config[section])})")
        expected = type(config[section][key])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if config[section][key] is not None and not isinstance(value, expected):
            raise ConfigError(f"{source}: {section}.{key} must be {expected.__name__}, got {value!r}")
        config[section][key] = value


def save_config(config: dict, path) -> None:
    Path(path).write_text(json.dumps(config, indent=2, sort_keys=True))


def same_run(saved: dict, current: dict) -> list[str]:
    """Keys whose values differ between a saved run and this one, ignoring the ones a
    resumed run may change (more steps, logging, checkpoint interval, threads)."""
    free = {"steps", "stop_at", "log_every", "checkpoint_every", "threads"}
    differ = []
    for section, values in current.items():
        for key, value in values.items():
            if key in free:
                continue
            if saved.get(section, {}).get(key) != value:
                differ.append(f"{section}.{key}")
    return differ
