"""The MotionGPT model: official layout, the project's model directories, the four
tasks as functions and as commands."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from retarget.humanml3d import joints_from_features
from server.model.checkpoint import CheckpointError
from server.model.motiongpt import Sampling
from server.model.store import load_model_dir, load_official, save_model_dir
from server.model.vqvae import VQVAE
from harness.models import SMALL_T5, small_model

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return save_model_dir(model, tmp_path_factory.mktemp("saved") / "small")


@pytest.fixture(scope="module")
def clip():
    return joints_from_features(np.load(DATA / "hml3d_012314_features.npy"))


def motiongpt(*args):
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True)


# --- official release layout --------------------------------------------------------

@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A checkpoint in the release's container (official-size VQ-VAE with random weights,
    a small T5 standing in for flan-t5-base) and a flan-t5-style directory made here:
    a text tokenizer without motion tokens plus the T5 config.json."""
    from transformers import T5Config, T5ForConditionalGeneration

    from server.model.tokenizer import train_tokenizer
    from harness.models import caption_corpus

    folder = tmp_path_factory.mktemp("release")
    t5_dir = folder / "flan-t5"
    tokenizer = train_tokenizer(caption_corpus(), vocab_size=120, codebook_size=512, directory=t5_dir)
    # flan-t5's config.json states its text vocabulary; the loader sizes the model to
    # the tokenizer with the motion tokens, as the release was trained.
    (t5_dir / "config.json").write_text(json.dumps({**SMALL_T5, "model_type": "t5", "vocab_size": 32128}))
    torch.manual_seed(5)
    config = T5Config(**{**SMALL_T5, "vocab_size": len(tokenizer), "tie_word_embeddings": False})
    state = {f"vae.{k}": torch.randn_like(v) * 0.02 for k, v in VQVAE().state_dict().items()}
    state.update({f"lm.language_model.{k}": v for k, v in T5ForConditionalGeneration(config).state_dict().items()})
    state.update({f"_losses.losses_val.{n}": torch.tensor(1.0) for n in ("total", "recons")})
    state["metrics.M2TMetrics.t2m_textencoder.weight"] = torch.zeros(3)
    path = folder / "motiongpt_s3_h3d.tar"
    torch.save({"epoch": 10, "state_dict": state, "lr_schedulers": [], "hyper_parameters": {"lr": 2e-4}}, path)
    return path, t5_dir, state


def test_release_checkpoint_loads_strictly(release):
    path, t5_dir, state = release
    model = load_official(path, t5_dir)
    assert model.codebook_size == 512 and model.vae.config.width == 512
    assert model.lm.config.vocab_size == model.first_code_id + 515
    assert torch.equal(model.vae.quantizer.codebook, state["vae.quantizer.codebook"])
    assert torch.equal(model.lm.lm_head.weight, state["lm.language_model.lm_head.weight"])
    # The release's own statistics are the default.
    assert model.mean.shape == (263,) and abs(float(model.std[0]) - float(np.load(Path("server/model/release_meta/std.npy"))[0])) < 1e-9


def test_info_describes_a_release_checkpoint(release):
    path, t5_dir, _ = release
    result = motiongpt("info", "--checkpoint", str(path), "--t5", str(t5_dir))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout[result.stdout.index("{"):])
    assert info["motion_tokenizer"]["codebook_size"] == 512
    assert info["language_model"]["motion_tokens"] == 515
    assert info["parameters"]["motion_tokenizer"] > 10_000_000


def test_tampered_release_is_refused_with_names(release, tmp_path):
    path, t5_dir, state = release
    broken = dict(state)
    del broken["lm.language_model.lm_head.weight"]
    broken["vae.encoder.model.0.weight"] = torch.zeros(512, 263, 5)
    torch.save({"state_dict": broken}, tmp_path / "broken.tar")
    result = motiongpt("info", "--checkpoint", str(tmp_path / "broken.tar"), "--t5", str(t5_dir))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "encoder.model.0.weight (512, 263, 5) (model: (512, 263, 3))" in result.stderr
    broken["vae.encoder.model.0.weight"] = state["vae.encoder.model.0.weight"]
    torch.save({"state_dict": broken}, tmp_path / "lm_broken.tar")
    with pytest.raises(CheckpointError, match="missing keys: lm_head.weight"):
        load_official(tmp_path / "lm_broken.tar", t5_dir)
    result = motiongpt("info", "--checkpoint", str(path))
    assert result.returncode == 1 and "--t5" in result.stderr
    result = motiongpt("info", "--checkpoint", str(path), "--t5", str(tmp_path / "nowhere"))
    assert result.returncode == 1 and "config.json" in result.stderr


# --- the project's model directory ----------------------------------------------------

def test_model_directory_round_trip(model, model_dir):
    loaded = load_model_dir(model_dir)
    for key, value in model.lm.state_dict().items():
        assert torch.equal(value, loaded.lm.state_dict()[key]), key
    assert torch.equal(model.vae.quantizer.codebook, loaded.vae.quantizer.codebook)
    a = model.generate("a person walks forward", frames=32, seed=4)
    b = loaded.generate("a person walks forward", frames=32, seed=4)
    assert np.array_equal(a[0], b[0])
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "mean.npy").is_file()


def test_pack_stores_half_precision_under_a_new_name(model, model_dir, tmp_path):
    result = motiongpt("pack", str(model_dir), "--out", str(tmp_path / "packed"), "--name", "packed-model")
    assert result.returncode == 0, result.stderr
    assert "'packed-model'" in result.stdout
    full, half = (d / "model.safetensors" for d in (model_dir, tmp_path / "packed"))
    assert half.stat().st_size < 0.6 * full.stat().st_size
    packed = load_model_dir(tmp_path / "packed")
    assert packed.name == "packed-model"
    for key, value in model.lm.state_dict().items():
        loaded = packed.lm.state_dict()[key]
        assert loaded.dtype == torch.float32 and torch.allclose(value, loaded, rtol=1e-3, atol=1e-4), key


def test_pack_takes_a_new_decoder_but_refuses_new_codes(model, model_dir, tmp_path):
    from server.train.vq import save_vq_dir

    decoder_run = VQVAE(model.vae.config)
    decoder_run.load_state_dict(model.vae.state_dict())
    with torch.no_grad():
        for parameter in decoder_run.decoder.parameters():
            parameter.mul_(1.5)  # what a decoder-only run changes
    save_vq_dir(decoder_run, model.mean, model.std, tmp_path / "decoder")
    result = motiongpt("pack", str(model_dir), "--out", str(tmp_path / "packed"), "--vq", str(tmp_path / "decoder"))
    assert result.returncode == 0, result.stderr
    packed = load_model_dir(tmp_path / "packed")
    for key, value in decoder_run.state_dict().items():
        assert torch.allclose(packed.vae.state_dict()[key], value, rtol=1e-3, atol=1e-4), key
    assert not torch.allclose(packed.vae.decoder.model[0].weight, model.vae.decoder.model[0].weight)

    with torch.no_grad():
        decoder_run.quantizer.codebook.add_(0.1)  # new codes: the language model's tokens would mean other motion
    save_vq_dir(decoder_run, model.mean, model.std, tmp_path / "codebook")
    result = motiongpt("pack", str(model_dir), "--out", str(tmp_path / "refused"), "--vq", str(tmp_path / "codebook"))
    assert result.returncode != 0 and "quantizer.codebook" in result.stderr and "decoder-only" in result.stderr
    assert not (tmp_path / "refused").exists()


def test_model_directory_problems_are_named(model_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    (copy / "mean.npy").unlink()
    with pytest.raises(CheckpointError, match="mean.npy"):
        load_model_dir(copy)
    with pytest.raises(CheckpointError, match="no such model directory"):
        load_model_dir(tmp_path / "absent")



def test_a_model_directory_records_its_own_sampling(model_dir, tmp_path):
    """A model's config may recommend its sampling (the embedded model: temperature 0.7);
    what a caller leaves unchosen comes from it, and a bad entry is one clear error."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    assert "sampling" not in config  # the defaults are not written
    config["sampling"] = {"top_k": 5, "temperature": 0.2}
    (copy / "config.json").write_text(json.dumps(config))
    recommended = load_model_dir(copy)
    assert recommended.default_sampling == Sampling(top_k=5, temperature=0.2)
    asked = [recommended.generate("a person jumps", frames=40, seed=s)[0] for s in range(3)]
    chosen = [recommended.generate("a person jumps", frames=40, seed=s, sampling=Sampling(top_k=5, temperature=0.2))[0]
              for s in range(3)]
    plain = [recommended.generate("a person jumps", frames=40, seed=s, sampling=Sampling())[0] for s in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(asked, chosen))
    assert not all(np.array_equal(a, b) for a, b in zip(asked, plain))
    assert recommended.default_sampling.with_choices(temperature=1.5) == Sampling(top_k=5, temperature=1.5)
    assert recommended.default_sampling.with_choices(greedy=True).greedy
    save_model_dir(recommended, tmp_path / "again")  # kept through a save (pack, training stages)
    assert json.loads((tmp_path / "again" / "config.json").read_text())["sampling"] == {"top_k": 5, "temperature": 0.2}
    for bad, named in (({"temperature": 0}, "temperature must be positive"), ({"top_k": 0}, "top_k"),
                       ({"temprature": 0.7}, "unknown settings temprature")):
        config["sampling"] = bad
        (copy / "config.json").write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match=named) as error:
            load_model_dir(copy)
        assert "\n" not in str(error.value) and "sampling" in str(error.value)

# --- tasks ------------------------------------------------------------------------------

def test_generate_lengths_seeds_and_samples(model):
    motions = model.generate("a person jumps", frames=42, samples=3, seed=7)
    assert [m.shape for m in motions] == [(40, 22, 3)] * 3
    assert all(np.all(np.isfinite(m)) for m in motions)
    again = model.generate("a person jumps", frames=42, samples=3, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(motions, again))
    greedy = [model.generate("a person jumps", frames=40, seed=s, sampling=Sampling(greedy=True))[0] for s in (1, 2)]
    assert np.array_equal(*greedy)
    free = model.generate("a person jumps", seed=3)[0]
    assert free.shape[0] % 4 == 0 and 4 <= free.shape[0] <= 400


def test_caption_is_text(model, clip):
    caption = model.caption(clip)
    assert isinstance(caption, str) and "<motion_id_" not in caption


def test_predict_keeps_the_given_frames(model, clip):
    given = clip[:61]
    result = model.predict(given, frames=30, seed=2)
    assert result.shape == (61 + 28, 22, 3)
    assert np.array_equal(result[:61], given)
    assert np.all(np.isfinite(result))


def test_inbetween_changes_only_the_gap(model, clip):
    given = clip[:101]
    result = model.inbetween(given, 40, 70, text="a person walks", seed=1)
    assert result.shape == given.shape
    assert np.array_equal(result[:40], given[:40]) and np.array_equal(result[70:], given[70:])
    assert not np.array_equal(result[40:70], given[40:70])


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m, c: m.generate("   "), "empty"),
        (lambda m, c: m.generate("x" * 1001), "too long"),
        (lambda m, c: m.generate("a person", frames=3), "at least 4"),
        (lambda m, c: m.generate("a person", frames=4000), "at most 400 frames"),
        (lambda m, c: m.generate("a person", samples=0), "samples"),
        (lambda m, c: m.generate("a person", sampling=Sampling(top_k=0)), "top_k"),
        (lambda m, c: m.caption(c[:4]), "at least 5 frames"),
        (lambda m, c: m.caption(np.full((10, 22, 3), np.nan)), "NaN"),
        (lambda m, c: m.caption(c[:, :20]), r"\(frames, 22, 3\)"),
        (lambda m, c: m.inbetween(c[:50], 10, 60), "mask"),
        (lambda m, c: m.inbetween(c[:50], 0, 10), "mask"),
        (lambda m, c: m.predict(c[:40], frames=2), "at least 4"),
    ],
)
def test_bad_input_is_a_clear_value_error(model, clip, call, message):
    with pytest.raises(ValueError, match=message):
        call(model, clip)


# --- commands ------------------------------------------------------------------------------

def test_commands_run_the_four_tasks(model_dir, tmp_path):
    result = motiongpt("generate", "a person jumps", "--frames", "120", "--seed", "1", "--model", str(model_dir),
                       "--out", str(tmp_path / "jump.bvh"))
    assert result.returncode == 0, result.stderr
    from retarget.formats import read_motion

    assert read_motion(tmp_path / "jump.bvh", "bvh").frames == 120
    result = motiongpt("generate", "a person jumps", "--frames", "40", "--samples", "2", "--decoding", "fast", "--model", str(model_dir),
                       "--out", str(tmp_path / "jump.npy"))
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "jump-2.npy").shape == (40, 22, 3)
    clip_path = DATA / "hml3d_012314_features.npy"
    result = motiongpt("caption", str(clip_path), "--from", "hml3d", "--model", str(model_dir))
    assert result.returncode == 0, result.stderr
    assert "<motion_id_" not in result.stdout  # an untrained model's caption is noise, but text
    result = motiongpt("predict", str(tmp_path / "jump.bvh"), "--frames", "40", "--model", str(model_dir),
                       "--out", str(tmp_path / "more.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "more.json").read_text())["format"] == "motion/1"
    result = motiongpt("inbetween", str(tmp_path / "jump.bvh"), "--mask-start", "40", "--mask-end", "80",
                       "--model", str(model_dir), "--out", str(tmp_path / "filled.npz"))
    assert result.returncode == 0, result.stderr


def test_commands_fail_in_one_line(model_dir, tmp_path):
    result = motiongpt("generate", "", "--model", str(model_dir), "--out", str(tmp_path / "x.bvh"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "empty" in result.stderr
    assert not (tmp_path / "x.bvh").exists()
    result = motiongpt("generate", "a person", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.bvh"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "nowhere" in result.stderr
    assert not (tmp_path / "x.bvh").exists()
