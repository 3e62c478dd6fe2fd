"""Which models there are: the embedded one, the installed ones, the downloadable ones.

Installed models live in a user data folder, one model directory (the project's format)
per name: `$MOTIONGPT_HOME/models/NAME`, where MOTIONGPT_HOME defaults to the platform's
user data folder (Linux: $XDG_DATA_HOME/motiongpt or ~/.local/share/motiongpt; macOS:
~/Library/Application Support/motiongpt; Windows: %LOCALAPPDATA%\\motiongpt). Each
installed model records where it came from in `origin.json` beside its weights.

No torch here: `motiongpt models` and the extension's model list stay light.
"""

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# The model that ships with the project (server/model/default, trained by its scripts).
EMBEDDED_NAME = "motiongpt-default"
EMBEDDED_DIRECTORY = Path(__file__).resolve().parent / "default"
ORIGIN_FILE = "origin.json"
HOME_ENVIRONMENT = "MOTIONGPT_HOME"


@dataclass(frozen=True)
class HubFile:
    repo: str
    filename: str
    revision: str = "main"


@dataclass(frozen=True)
class Downloadable:
    name: str
    description: str
    checkpoint: HubFile
    # The checkpoint's companion files (config and tokenizer), fetched into one folder.
    t5_files: tuple[HubFile, ...]
    licence: str


# What loading the release needs from google/flan-t5-base, and nothing more (its weights
# are in the checkpoint already, 990 MB we do not fetch):
# - config.json: store.load_official builds the T5 from it (T5Config.from_pretrained);
# - spiece.model, tokenizer.json, tokenizer_config.json, special_tokens_map.json:
#   tokenizer.load_tokenizer reads the directory with AutoTokenizer.from_pretrained
#   (legacy=True because spiece.model is there), as the official code
#   (mGPT/archs/mgpt_lm.py) does; tokenizer_config.json and special_tokens_map.json
#   carry the 100 <extra_id_*> tokens that put the motion tokens at the release's ids.
# generation_config.json is not read: the project builds the model from config.json.
FLAN_T5_FILES = ("config.json", "spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

RELEASE_LICENCE = """\
MotionGPT's released model (OpenMotionLab/MotionGPT-base, motiongpt_s3_h3d.tar)

The weights were trained on HumanML3D, whose motions come from AMASS (and HumanAct12).
AMASS and the motion-capture sets in it are licensed for NON-COMMERCIAL SCIENTIFIC
RESEARCH only (https://amass.is.tue.mpg.de/license.html); HumanML3D keeps those terms
(https://github.com/EricGuo5513/HumanML3D). A model trained on that data is offered for
research under the same restrictions: do not use it, or motions made with it, in
commercial work. MotionGPT's code is MIT-licensed (https://github.com/OpenMotionLab/MotionGPT);
flan-t5-base's configuration and tokenizer (google/flan-t5-base) are Apache-2.0.

This is a summary, not legal advice: read the licences above before you accept.
Downloading: about 1 GB from huggingface.co, then converted on this computer."""

DOWNLOADABLE = {
    "motiongpt-release": Downloadable(
        name="motiongpt-release",
        description="MotionGPT's released model (T5-base and the HumanML3D motion tokenizer)",
        checkpoint=HubFile("OpenMotionLab/MotionGPT-base", "motiongpt_s3_h3d.tar"),
        t5_files=tuple(HubFile("google/flan-t5-base", name) for name in FLAN_T5_FILES),
        licence=RELEASE_LICENCE,
    ),
}


@dataclass(frozen=True)
class InstalledModel:
    name: str
    path: Path
    size: int  # bytes on disk
    origin: str

    def to_dict(self) -> dict:
        return {"name": self.name, "path": str(self.path), "size": self.size, "origin": self.origin}


def motiongpt_home() -> Path:
    """The user data folder (MOTIONGPT_HOME, else the platform's)."""
    configured = os.environ.get(HOME_ENVIRONMENT, "").strip()
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "motiongpt"


def models_folder() -> Path:
    return motiongpt_home() / "models"


def downloads_folder() -> Path:
    return motiongpt_home() / "downloads"


def size_on_disk(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def _origin(directory: Path) -> str:
    try:
        origin = json.loads((directory / ORIGIN_FILE).read_text())
    except (OSError, ValueError):
        return "copied here by hand"
    source = origin.get("source", "unknown")
    return f"{source} (commit {origin['commit'][:12]})" if origin.get("commit") else source


def installed_models() -> list[InstalledModel]:
    """The embedded model, then each model directory in the models folder, by name.
    Folders in the middle of an install (NAME.partial) are not models yet."""
    models = []
    if (EMBEDDED_DIRECTORY / "config.json").is_file():
        models.append(InstalledModel(EMBEDDED_NAME, EMBEDDED_DIRECTORY, size_on_disk(EMBEDDED_DIRECTORY),
                                     "embedded: trained by this project's scripts"))
    folder = models_folder()
    if folder.is_dir():
        for directory in sorted(folder.iterdir()):
            if directory.is_dir() and (directory / "config.json").is_file() and not directory.name.endswith(".partial"):
                models.append(InstalledModel(directory.name, directory, size_on_disk(directory), _origin(directory)))
    return models


def model_names() -> list[str]:
    return [model.name for model in installed_models()]


def resolve_model(value) -> Path | None:
    """`--model` as given: None (the embedded model), a model directory, or a name from
    `motiongpt models`. A directory that exists wins over a name."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        return path
    text = str(value)
    for model in installed_models():
        if model.name == text:
            return model.path
    if text in DOWNLOADABLE:
        raise ValueError(f"--model {text}: not installed; run `motiongpt download {text} --accept-licence` first")
    names = ", ".join(model_names()) or "none"
    raise ValueError(f"--model {text}: neither a model directory nor an installed model's name "
                     f"(installed: {names}; downloadable: {', '.join(DOWNLOADABLE)})")
