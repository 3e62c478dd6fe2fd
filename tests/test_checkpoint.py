"""The motion VQ-VAE against the official checkpoint's layout, and safe loading."""

import json
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from server.model.checkpoint import CheckpointError, load_strict, read_lightning_state_dict, split_official_state_dict
from server.model.vqvae import VQVAE, VQVAEConfig

KEYS = Path(__file__).resolve().parent.parent / "server" / "model" / "official_vae_keys.json"


@pytest.fixture(scope="module")
def omegaconf_like():
    """A class that pickles as omegaconf.dictconfig.DictConfig, as the release's
    configuration does; OmegaConf itself is not installed (and must not be needed)."""
    module = types.ModuleType("omegaconf.dictconfig")

    class DictConfig:
        def __init__(self, content):
            self.content = content

    DictConfig.__module__ = "omegaconf.dictconfig"
    DictConfig.__qualname__ = "DictConfig"
    module.DictConfig = DictConfig
    package = types.ModuleType("omegaconf")
    package.dictconfig = module
    sys.modules.update({"omegaconf": package, "omegaconf.dictconfig": module})
    yield DictConfig
    del sys.modules["omegaconf.dictconfig"], sys.modules["omegaconf"]


def lightning_checkpoint(path, vae: VQVAE, config_class, extra_state=None):
    """A checkpoint in the release's container layout."""
    state = {f"vae.{k}": v for k, v in vae.state_dict().items()}
    state.update({f"_losses.losses_train.{n}": torch.tensor(0.5) for n in ("total", "recons", "commit")})
    state["metrics.TM2TMetrics.textencoder.weight"] = torch.zeros(4, 4)
    state.update(extra_state or {})
    torch.save({"epoch": 999, "global_step": 12, "state_dict": state, "optimizer_states": [{"lr": 1e-4}],
                "hyper_parameters": config_class({"model": {"vae": "vq"}})}, path)
    return path


def small_vae(seed=0):
    torch.manual_seed(seed)
    model = VQVAE(VQVAEConfig(width=32, code_dim=16, codebook_size=24, depth=2))
    model.quantizer.codebook.normal_()
    return model


def test_official_size_has_the_released_keys_and_shapes():
    official = json.loads(KEYS.read_text())
    ours = {f"vae.{k}": list(v.shape) for k, v in VQVAE().state_dict().items()}
    assert ours == official


def test_encode_decode_shapes_and_frames_per_token():
    model = small_vae()
    features = torch.randn(2, 196, 263)
    codes = model.encode(features)
    assert codes.shape == (2, 49) and codes.dtype == torch.int64
    assert int(codes.max()) < 24
    assert model.decode(codes).shape == (2, 196, 263)
    with pytest.raises(ValueError, match="multiple of 4"):
        model.encode(torch.randn(1, 10, 263))
    with pytest.raises(ValueError, match="0..23"):
        model.decode(torch.tensor([[24]]))


def test_release_layout_loads_strictly_and_safely(tmp_path, omegaconf_like):
    source = small_vae(seed=1)
    path = lightning_checkpoint(tmp_path / "release.ckpt", source, omegaconf_like)
    # Users do not have OmegaConf: read the file with the class nowhere to be found.
    hidden = {name: sys.modules.pop(name) for name in ("omegaconf", "omegaconf.dictconfig")}
    try:
        vae_state, lm_state = split_official_state_dict(read_lightning_state_dict(path))
    finally:
        sys.modules.update(hidden)
    assert lm_state == {}
    assert not [k for k in vae_state if "_losses" in k or "Metrics" in k]
    loaded = VQVAE(source.config)
    load_strict(loaded, vae_state, "the VQ-VAE")
    features = torch.randn(1, 64, 263)
    with torch.inference_mode():
        assert torch.equal(loaded.encode(features), source.encode(features))
        assert torch.equal(loaded.decode(source.encode(features)), source.decode(source.encode(features)))


def test_missing_and_misshaped_keys_are_named(tmp_path, omegaconf_like):
    state = {f"vae.{k}": v for k, v in small_vae().state_dict().items()}
    del state["vae.encoder.model.0.bias"]
    state["vae.decoder.model.6.weight"] = torch.zeros(263, 32, 5)
    torch.save({"state_dict": state}, tmp_path / "bad.ckpt")
    vae_state, _ = split_official_state_dict(read_lightning_state_dict(tmp_path / "bad.ckpt"))
    with pytest.raises(CheckpointError) as error:
        load_strict(VQVAE(small_vae().config), vae_state, "the VQ-VAE")
    message = str(error.value)
    assert "missing keys: encoder.model.0.bias" in message
    assert "decoder.model.6.weight (263, 32, 5) (model: (263, 32, 3))" in message


def test_unknown_keys_are_not_dropped_silently(tmp_path):
    torch.save({"state_dict": {"vae.x": torch.zeros(1), "something.else": torch.zeros(1)}}, tmp_path / "c.ckpt")
    with pytest.raises(CheckpointError, match="something.else"):
        split_official_state_dict(read_lightning_state_dict(tmp_path / "c.ckpt"))


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {"vae.x": torch.zeros(1)}, "payload": RunsCode(marker)}, tmp_path / "evil.ckpt")
    with pytest.raises(CheckpointError, match=r"refusing to load: the pickle references posix\.system"):
        read_lightning_state_dict(tmp_path / "evil.ckpt")
    assert not marker.exists()


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_lightning_state_dict(tmp_path / "absent.ckpt")
    (tmp_path / "text.ckpt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_lightning_state_dict(tmp_path / "text.ckpt")
    torch.save([torch.zeros(1)], tmp_path / "list.ckpt")
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        read_lightning_state_dict(tmp_path / "list.ckpt")
