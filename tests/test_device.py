"""--device: the choice (every combination of accelerators, decided without one), the CPU
path through the command line, and training's process set-up.

This machine has no GPU: the CUDA and MPS branches are checked as decisions
(choose_device), never run."""

import subprocess
import sys

import pytest
import torch

from server.device import (DEVICE_CHOICES, DeviceError, choose_device, cuda_available, distributed_backend, mps_available,
                           pick_device)
from server.train.loop import Processes, request_device


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"),
                                                 (False, False, "cpu")])
def test_auto_takes_cuda_then_mps_then_cpu(cuda, mps, expected):
    assert choose_device("auto", cuda=cuda, mps=mps).type == expected


@pytest.mark.parametrize("requested", ["cpu", "cuda", "mps"])
def test_a_named_device_is_taken_when_present(requested):
    assert choose_device(requested, cuda=True, mps=True).type == requested
    assert choose_device("cpu", cuda=True, mps=True).type == "cpu"  # the CPU even with a GPU present


@pytest.mark.parametrize("requested, word", [("cuda", "CUDA"), ("mps", "Metal")])
def test_a_named_device_that_is_missing_is_one_line_not_a_fallback(requested, word):
    with pytest.raises(DeviceError, match=word) as error:
        choose_device(requested, cuda=False, mps=False)
    assert "\n" not in str(error.value) and "--device cpu" in str(error.value)


def test_unknown_device_names_the_choices():
    with pytest.raises(DeviceError, match="auto, cpu, cuda, mps"):
        choose_device("tpu", cuda=False, mps=False)


def test_each_torchrun_process_takes_the_gpu_of_its_local_rank():
    assert choose_device("auto", cuda=True, mps=False, local_rank=3) == torch.device("cuda", 3)
    assert choose_device("cpu", cuda=True, mps=False, local_rank=3) == torch.device("cpu")


def test_backend_is_nccl_on_cuda_and_gloo_elsewhere():
    assert distributed_backend(torch.device("cuda", 0)) == "nccl"
    assert distributed_backend(torch.device("cpu")) == "gloo"
    assert distributed_backend(torch.device("mps")) == "gloo"


def test_this_machine_picks_what_its_torch_offers():
    assert pick_device("auto") == choose_device("auto", cuda_available(), mps_available())
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused_here():
    with pytest.raises(DeviceError):
        pick_device("cuda")


def test_training_processes_take_the_requested_device(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert Processes(device="cpu").device == torch.device("cpu")
    request_device("cpu")
    try:
        assert Processes().device == torch.device("cpu")
    finally:
        request_device("auto")
    assert Processes().device == pick_device("auto")


def _motiongpt(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_every_model_command_and_train_take_device():
    for command in ("serve", "generate", "caption", "predict", "inbetween", "eval", "train", "info"):
        help_text = _motiongpt(command, "--help").stdout
        assert "--device {" + ",".join(DEVICE_CHOICES) + "}" in help_text, command


def test_generate_on_the_cpu_and_a_missing_gpu_in_one_line(small_model_dir, tmp_path):
    out = tmp_path / "walk.npy"
    done = _motiongpt("generate", "a person walks", "--model", str(small_model_dir), "--frames", "16", "--device", "cpu",
                      "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.exists()
    if not cuda_available():
        refused = _motiongpt("generate", "a person walks", "--model", str(small_model_dir), "--device", "cuda",
                             "--out", str(tmp_path / "never.npy"))
        assert refused.returncode != 0
        assert refused.stderr.strip().count("\n") == 0 and "--device cuda" in refused.stderr
        assert not (tmp_path / "never.npy").exists()
