"""`motiongpt download NAME`: fetch a released model from the Hugging Face hub and
install it as a model directory.

The order matters: the licence first (nothing is written until it is accepted), then
the hub's metadata for every file (sizes and checksums) and a disk-space check, then the
files with huggingface_hub (its progress bars; a partial file is kept and a later run
continues it with an HTTP Range request), each verified against the hub's checksum (the
sha256 of LFS files, git's blob hash of the others; a mismatch removes the file). Then
the checkpoint is read once by the strict safe loader and saved as safetensors, so no
later load unpickles anything; the model appears under its name only when complete.
"""

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .catalog import (DOWNLOADABLE, ORIGIN_FILE, Downloadable, HubFile, downloads_folder, installed_models, models_folder,
                      size_on_disk)

# Attempts per file within one run when the connection breaks mid-file; each continues
# where the last stopped. Past them the run fails and the next run continues.
ATTEMPTS = 3
# Room kept free besides what the download and the converted model take.
DISK_MARGIN = 200 * 1024 * 1024


class DownloadError(ValueError):
    """A download that cannot go on; the message says what to do."""


@dataclass(frozen=True)
class RemoteFile:
    file: HubFile
    commit: str
    size: int
    checksum: str  # 64 hex digits: sha256 (LFS); 40: git blob sha1


def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or constants.ENDPOINT).rstrip("/")


def _unreachable(endpoint: str, error: Exception) -> DownloadError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    if len(reason) > 160:
        reason = reason[:157] + "..."
    return DownloadError(f"cannot reach the Hugging Face hub at {endpoint} ({reason}); check the internet connection "
                         "(a proxy: HTTPS_PROXY; a mirror: HF_ENDPOINT) and run the same command again: "
                         "what was downloaded is kept and continued")


def _check_reachable(endpoint: str) -> None:
    """One quick request before huggingface_hub's own, which retries a dead network for
    about 20 seconds."""
    import requests
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint, timeout=15, allow_redirects=False)
    except requests.RequestException as error:
        raise _unreachable(endpoint, error) from None


def _remote_file(file: HubFile, endpoint: str) -> RemoteFile:
    import requests
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    url = hf_hub_url(file.repo, file.filename, revision=file.revision, endpoint=endpoint)
    try:
        metadata = get_hf_file_metadata(url)
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise DownloadError(f"the hub at {endpoint} has no {file.repo}/{file.filename} at {file.revision} "
                            f"(HTTP {status}); is a mirror (HF_ENDPOINT) missing it?") from None
    except requests.RequestException as error:
        raise _unreachable(endpoint, error) from None
    checksum = (metadata.etag or "").lower()
    if metadata.size is None or not metadata.commit_hash or len(checksum) not in (40, 64):
        raise DownloadError(f"the hub at {endpoint} gave no size, commit or checksum for {file.repo}/{file.filename}; "
                            "refusing a file that cannot be verified")
    return RemoteFile(file, metadata.commit_hash, metadata.size, checksum)


def _checksum(path: Path, kind: int) -> str:
    """sha256 of the content (kind 64) or git's blob hash (kind 40), read in 1 MiB blocks."""
    digest = hashlib.sha256() if kind == 64 else hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _staging(downloadable: Downloadable, file: HubFile) -> Path:
    return downloads_folder() / downloadable.name / file.repo.replace("/", "--")


def _fetch(remote: RemoteFile, folder: Path, endpoint: str, log) -> Path:
    """Download one file into `folder` (continuing a partial one) and verify it."""
    import requests
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    file = remote.file
    for attempt in range(1, ATTEMPTS + 1):
        try:
            path = Path(hf_hub_download(file.repo, file.filename, revision=remote.commit, local_dir=folder,
                                        endpoint=endpoint))
            break
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout) as error:
            if attempt == ATTEMPTS:
                raise DownloadError(f"{file.filename}: the connection broke {ATTEMPTS} times ({str(error)[:120]}); "
                                    "run the same command again to continue where it stopped") from None
            log(f"{file.filename}: the connection broke; continuing (attempt {attempt + 1} of {ATTEMPTS})")
        except HfHubHTTPError as error:
            raise DownloadError(f"{file.filename}: the hub refused the download ({str(error).splitlines()[0]}); "
                                "run the same command again later") from None
    actual = _checksum(path, len(remote.checksum))
    if actual != remote.checksum:
        path.unlink()
        (folder / ".cache" / "huggingface" / "download" / f"{file.filename}.metadata").unlink(missing_ok=True)
        raise DownloadError(f"{file.filename} is corrupted (checksum {actual[:16]}..., the hub says {remote.checksum[:16]}...): "
                            "removed it; run the same command again to download it anew")
    return path


def _partial_bytes(folder: Path) -> int:
    """Bytes of unfinished downloads a run will continue (they need no new room)."""
    partial = folder / ".cache" / "huggingface" / "download"
    return sum(f.stat().st_size for f in partial.glob("*.incomplete")) if partial.is_dir() else 0


def _check_disk_space(downloadable: Downloadable, remotes: list[RemoteFile]) -> None:
    needed = 0
    for remote in remotes:
        folder = _staging(downloadable, remote.file)
        if not (folder / remote.file.filename).is_file():
            needed += remote.size
    needed -= sum(_partial_bytes(_staging(downloadable, f)) for f in {r.file.repo: r.file for r in remotes}.values())
    # The converted model holds the same float32 weights as the checkpoint.
    needed += remotes[0].size + DISK_MARGIN
    home = models_folder().parent
    home.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(home).free
    if free < needed:
        raise DownloadError(f"not enough disk space in {home}: {needed / 1e9:.2f} GB needed (download and converted model), "
                            f"{free / 1e9:.2f} GB free; free some space or set MOTIONGPT_HOME to a larger disk")


def _convert(downloadable: Downloadable, checkpoint: Path, t5_directory: Path, remotes, endpoint: str, log) -> Path:
    """The checkpoint through the strict safe loader into a model directory, made under
    NAME.partial and renamed when complete."""
    import torch

    from .store import load_official, save_model_dir

    target = models_folder() / downloadable.name
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"converting {checkpoint.name} into {target} (safetensors)")
    with torch.inference_mode():
        model = load_official(checkpoint, t5_directory)
    save_model_dir(model, partial)
    host = urlparse(endpoint).netloc or endpoint
    origin = {
        "source": f"{host}/{downloadable.checkpoint.repo} {downloadable.checkpoint.filename}",
        "commit": remotes[0].commit,
        "files": [{"repo": r.file.repo, "file": r.file.filename, "commit": r.commit, "checksum": r.checksum, "size": r.size}
                  for r in remotes],
        "licence": "non-commercial scientific research (HumanML3D / AMASS); see `motiongpt download --help`",
        "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (partial / ORIGIN_FILE).write_text(json.dumps(origin, indent=2))
    partial.rename(target)
    return target


def _bytes_on_disk(folders) -> int:
    """What the download has written so far: finished files and partial ones."""
    return sum(f.stat().st_size for folder in folders if folder.is_dir() for f in folder.rglob("*")
               if f.is_file() and (f.suffix == ".incomplete" or ".cache" not in f.parts))


class _ProgressWatch:
    """Calls progress(fraction of the bytes) twice a second from a thread, by looking at
    the files as huggingface_hub writes them (it offers no callback of its own)."""

    def __init__(self, folders, total: int, progress):
        import threading

        self.folders, self.total, self.progress = folders, max(total, 1), progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.5):
            self.progress(min(1.0, _bytes_on_disk(self.folders) / self.total))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def download(name: str, accept_licence: bool = False, keep_download: bool = False, endpoint: str | None = None,
             log=print, progress=None) -> Path:
    """Download, verify and install the model `name`; returns its directory.
    `progress(fraction)` is told how much of the bytes are here, while downloading."""
    downloadable = DOWNLOADABLE.get(name)
    if downloadable is None:
        raise DownloadError(f"no downloadable model named {name!r} (downloadable: {', '.join(DOWNLOADABLE)})")
    installed = {model.name: model for model in installed_models()}
    if name in installed:
        log(f"{name} is already installed in {installed[name].path}")
        return installed[name].path
    log(downloadable.licence)
    if not accept_licence:
        raise DownloadError("the licence above was not accepted; run again with --accept-licence to accept it")
    endpoint = _endpoint(endpoint)
    _check_reachable(endpoint)
    files = (downloadable.checkpoint, *downloadable.t5_files)
    remotes = [_remote_file(file, endpoint) for file in files]
    _check_disk_space(downloadable, remotes)
    log(f"downloading {sum(r.size for r in remotes) / 1e6:.1f} MB from {endpoint}")
    folders = sorted({_staging(downloadable, remote.file) for remote in remotes})
    with _ProgressWatch(folders, sum(r.size for r in remotes), progress or (lambda fraction: None)):
        paths = [_fetch(remote, _staging(downloadable, remote.file), endpoint, log) for remote in remotes]
    if progress is not None:
        progress(1.0)
    target = _convert(downloadable, paths[0], paths[1].parent, remotes, endpoint, log)
    if keep_download:
        log(f"kept the download in {downloads_folder() / name}")
    else:
        shutil.rmtree(downloads_folder() / name, ignore_errors=True)
    size = size_on_disk(target)
    log(f"installed {name} in {target} ({size / 1e6:.1f} MB); use it with --model {name}")
    return target
