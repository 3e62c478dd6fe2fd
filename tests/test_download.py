"""`motiongpt download` against a stand-in for the Hugging Face hub on 127.0.0.1
(harness/hub.py) serving a release-layout checkpoint with random weights; `motiongpt
models` and `--model NAME`."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.hub import StandInHub, release_repositories
from server.model.catalog import FLAN_T5_FILES, resolve_model
from retarget.contract import prompt
from server.model.motiongpt import Sampling

CHECKPOINT = "motiongpt_s3_h3d.tar"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    folder = tmp_path_factory.mktemp("release")
    return folder, release_repositories(folder)


@pytest.fixture
def hub(release):
    with StandInHub(release[1]) as stand_in:
        yield stand_in


def motiongpt(home: Path, endpoint: str, *args):
    env = {**os.environ, "MOTIONGPT_HOME": str(home), "HF_ENDPOINT": endpoint, "HF_HOME": str(home / "hf-home"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    env.pop("HF_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def one_line_error(result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("motiongpt ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def installed(release, tmp_path_factory):
    """One download through the stand-in hub: (MOTIONGPT_HOME, the command's result, the hub)."""
    home = tmp_path_factory.mktemp("home")
    with StandInHub(release[1]) as stand_in:
        result = motiongpt(home, stand_in.endpoint, "download", "motiongpt-release", "--accept-licence", "--progress-lines")
    return home, result, stand_in


def test_licence_not_accepted_downloads_and_writes_nothing(hub, tmp_path):
    home = tmp_path / "home"
    result = motiongpt(home, hub.endpoint, "download", "motiongpt-release")
    assert "NON-COMMERCIAL SCIENTIFIC" in result.stdout and "AMASS" in result.stdout
    assert "--accept-licence" in one_line_error(result)
    assert hub.requests == [] and not home.exists()


def test_download_installs_the_model_under_its_name(installed, release):
    home, result, hub = installed
    assert result.returncode == 0, result.stderr
    assert result.stdout.index("NON-COMMERCIAL") < result.stdout.index("installed motiongpt-release")
    # What the extension shows as the bar: fractions of the bytes, growing to 1.
    fractions = [float(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("progress ")]
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    model = home / "models" / "motiongpt-release"
    assert (model / "model.safetensors").is_file() and (model / "config.json").is_file()
    assert not list(model.glob("*.tar")) and not (home / "downloads" / "motiongpt-release").exists()
    # Only flan-t5-base's config and tokenizer were fetched, each once; no weights.
    fetched = sorted(path.rsplit("/", 1)[1] for method, path, _ in hub.requests if method == "GET" and "/resolve/" in path)
    assert fetched == sorted([CHECKPOINT, *FLAN_T5_FILES])
    origin = json.loads((model / "origin.json").read_text())
    assert origin["commit"] == hub.repositories["OpenMotionLab/MotionGPT-base"].commit
    listed = motiongpt(home, hub.endpoint, "models")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("motiongpt-release "))
    assert "MB" in line and "OpenMotionLab/MotionGPT-base" in line and origin["commit"][:12] in line
    assert listed.stdout.startswith("motiongpt-default ")
    as_json = json.loads(motiongpt(home, hub.endpoint, "models", "--json").stdout)
    release_entry = next(m for m in as_json["installed"] if m["name"] == "motiongpt-release")
    assert release_entry["size"] == sum(f.stat().st_size for f in model.iterdir()) and as_json["downloadable"] == []
    info = motiongpt(home, hub.endpoint, "info", "--model", "motiongpt-release")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout[info.stdout.index("{"):])
    assert described["motion_tokenizer"]["codebook_size"] == 512 and described["language_model"]["motion_tokens"] == 515
    # Installed already: a second run downloads nothing.
    again = motiongpt(home, hub.endpoint, "download", "motiongpt-release", "--accept-licence")
    assert again.returncode == 0 and "already installed" in again.stdout


def test_converted_model_decodes_the_same_tokens_as_the_checkpoint(installed, release):
    from server.model.store import load_model_dir, load_official

    home, result, _ = installed
    assert result.returncode == 0, result.stderr
    folder, _ = release
    direct = load_official(folder / CHECKPOINT, folder / "flan-t5-base")
    converted = load_model_dir(home / "models" / "motiongpt-release")
    assert direct.tokenizer.get_vocab() == converted.tokenizer.get_vocab()
    # The converted model is still asked as the release was trained (retarget.contract).
    assert direct.contract.name == converted.contract.name == "official"
    greedy = Sampling(greedy=True)
    # The model decides the length (its end token), then Hugging Face generate on a forced one.
    for text, length, decoding in (("a person walks forward", None, "exact"), ("someone jumps and waves", 12, "hf")):
        direct.decoding = converted.decoding = decoding
        tokens = direct.motion_tokens(prompt("text_to_motion", text=text), length, greedy, 0)
        assert tokens, "a random model that writes no codes tests nothing"
        assert converted.motion_tokens(prompt("text_to_motion", text=text), length, greedy, 0) == tokens
    codes = tokens
    assert torch.equal(torch.from_numpy(direct.features_from_codes(codes)), torch.from_numpy(converted.features_from_codes(codes)))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """MOTIONGPT_HOME for a download run in this process (the command-line runs above show
    the same function's messages as one line)."""
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run_download(hub, **options):
    from server.model.download import download

    return download("motiongpt-release", accept_licence=True, endpoint=hub.endpoint, log=lambda line: None, **options)


def test_interrupted_download_continues_where_it_stopped(hub, home, release):
    from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE

    from server.model.download import ATTEMPTS, DownloadError

    # huggingface_hub writes whole 10 MiB chunks: a cut at a chunk's end keeps every byte
    # sent, so each continuation must start exactly there.
    cuts = [k * DOWNLOAD_CHUNK_SIZE for k in range(1, ATTEMPTS + 1)]
    assert len(release[1]["OpenMotionLab/MotionGPT-base"][CHECKPOINT]) > cuts[-1] + DOWNLOAD_CHUNK_SIZE
    hub.cut[CHECKPOINT] = list(cuts)
    with pytest.raises(DownloadError, match="run the same command again to continue where it stopped"):
        run_download(hub)
    # Within the run each broken connection was continued from the byte it stopped at.
    assert hub.ranges(CHECKPOINT) == [None, *(f"bytes={cut}-" for cut in cuts[:-1])]
    assert not (home / "models" / "motiongpt-release").exists()
    installed = run_download(hub, keep_download=True)
    # The next run asked only for the rest, and the file it put together is the release's.
    assert hub.ranges(CHECKPOINT)[ATTEMPTS:] == [f"bytes={cuts[-1]}-"]
    kept = home / "downloads" / "motiongpt-release" / "OpenMotionLab--MotionGPT-base" / CHECKPOINT
    assert kept.read_bytes() == release[1]["OpenMotionLab/MotionGPT-base"][CHECKPOINT]
    assert (installed / "model.safetensors").is_file()


def test_corrupted_files_are_refused_and_removed(hub, home):
    from server.model.download import DownloadError

    staging = home / "downloads" / "motiongpt-release"
    hub.corrupt.add(CHECKPOINT)  # an LFS file: checked by its sha256
    with pytest.raises(DownloadError, match=f"{CHECKPOINT} is corrupted .* removed it"):
        run_download(hub)
    assert not (staging / "OpenMotionLab--MotionGPT-base" / CHECKPOINT).exists()
    hub.corrupt = {"config.json"}  # a plain git file: checked by its blob hash
    with pytest.raises(DownloadError, match="config.json is corrupted"):
        run_download(hub)
    assert not (staging / "google--flan-t5-base" / "config.json").exists()
    assert (staging / "OpenMotionLab--MotionGPT-base" / CHECKPOINT).is_file()  # verified, kept for the next run
    assert not (home / "models").exists() or not any((home / "models").iterdir())


def test_no_network_gives_one_line_that_says_what_to_do(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = motiongpt(tmp_path / "home", closed, "download", "motiongpt-release", "--accept-licence")
    line = one_line_error(result)
    assert f"cannot reach the Hugging Face hub at {closed}" in line and "run the same command again" in line
    assert not (tmp_path / "home" / "models").exists()


def test_not_enough_disk_space_is_found_before_downloading(hub, home, monkeypatch):
    from server.model import download

    # More room than any disk has, so the check must refuse.
    monkeypatch.setattr(download, "DISK_MARGIN", 10**18)
    with pytest.raises(download.DownloadError, match="not enough disk space"):
        run_download(hub)
    assert hub.ranges(CHECKPOINT) == []


def test_model_names_and_paths(tmp_path, monkeypatch, release):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    # Names are resolved before anything loads: any folder with a config.json is listed.
    small_model_dir = release[0] / "flan-t5-base"
    assert resolve_model(None) is None
    assert resolve_model(str(small_model_dir)) == small_model_dir
    assert (resolve_model("motiongpt-default") / "config.json").is_file()
    with pytest.raises(ValueError, match="not installed; run `motiongpt download motiongpt-release --accept-licence`"):
        resolve_model("motiongpt-release")
    with pytest.raises(ValueError, match=r"installed: motiongpt-default; downloadable: motiongpt-release"):
        resolve_model("no-such-model")
    (tmp_path / "home" / "models").mkdir(parents=True)
    (tmp_path / "home" / "models" / "mine").symlink_to(small_model_dir, target_is_directory=True)
    assert resolve_model("mine") == tmp_path / "home" / "models" / "mine"
    result = motiongpt(tmp_path / "home", "http://127.0.0.1:9", "info", "--model", "no-such-model")
    assert "neither a model directory nor an installed model's name" in one_line_error(result)
