"""Where the model runs: `--device auto|cpu|cuda|mps`, in one place.

auto takes a CUDA GPU if torch sees one, then Apple's Metal (MPS), then the CPU. A device
asked for by name that this torch cannot use is a one-line error, not a silent fallback:
a user who typed `--device cuda` wants to know that the GPU is not being used.

Training under torchrun: each process takes the GPU of its LOCAL_RANK, and the process
group talks NCCL between CUDA GPUs and gloo otherwise (CPU, and MPS, which NCCL does not
serve). torch is imported inside the functions: the command line reads the choices
without loading it.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DEVICE_HELP = "where the model runs: auto (a CUDA GPU, then Apple MPS, then the CPU; default), cpu, cuda, mps"


class DeviceError(ValueError):
    """A device was asked for that this machine's torch cannot use."""


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_device(requested: str, cuda: bool, mps: bool, local_rank: int = 0) -> "torch.device":
    """The device for `requested`, given which accelerators exist (the decision alone,
    so it is testable on a machine without them)."""
    import torch

    requested = (requested or "auto").lower()
    if requested not in DEVICE_CHOICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got {requested!r}")
    if requested == "auto":
        requested = "cuda" if cuda else "mps" if mps else "cpu"
    elif requested == "cuda" and not cuda:
        raise DeviceError("--device cuda: this torch sees no CUDA GPU (a CPU-only torch, or no driver); "
                          "use --device cpu or auto, or install torch with CUDA")
    elif requested == "mps" and not mps:
        raise DeviceError("--device mps: Apple's Metal is not available here (macOS 12.3+ on Apple silicon or an "
                          "AMD GPU); use --device cpu or auto")
    if requested == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(requested)


def pick_device(requested: str = "auto", local_rank: int = 0) -> "torch.device":
    """The device for `requested` on this machine (see choose_device)."""
    import torch

    device = choose_device(requested, cuda_available(), mps_available(), local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def distributed_backend(device: "torch.device") -> str:
    """torch.distributed's backend for processes on `device`."""
    return "nccl" if device.type == "cuda" else "gloo"


def synchronize(device: "torch.device") -> None:
    """Wait for the device's queued work (timings on a GPU need it; nothing on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
