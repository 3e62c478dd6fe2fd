"""Training both stages on a small corpus: configs, the corpus reader, resuming, the loss
log, DDP under torchrun with two CPU processes, and models the server loads."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.motions import smooth_random_joints
from retarget.humanml3d import features_from_joints, joints_from_features
from retarget.skeleton import JOINT_INDEX, LIMB_ENDS
from server.cli import main as cli
from server.model.store import load_model_dir
from server.train.config import ConfigError
from server.train.augment import mirrored_caption, mirrored_clip, mirrored_joints, names_a_side
from server.train.corpus import Clip, CorpusError, load_clips
from server.model.text_encoder import PromptEmbedder
from server.train.lm import remember_cached, repeated_indices, train_lm
from server.train.vq import POSITIONS, fastest_frames, load_vq_dir, losses, train_vq, windows
from tests.corpus import write_corpus

CONFIGS = Path(__file__).resolve().parent.parent / "server" / "train" / "configs"
VQ_TINY, LM_TINY = CONFIGS / "vq-tiny.toml", CONFIGS / "lm-tiny.toml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def vq_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("vq")
    train_vq(VQ_TINY, out, [f"data.dir='{corpus}'"], log=lambda line: None)
    return out


def rows(run: Path) -> list[dict]:
    with open(run / "losses.csv") as handle:
        return list(csv.DictReader(handle))


def digest(run: Path, rank: int = 0) -> str:
    return (run / "digests" / f"rank{rank}.sha256").read_text().strip()


def test_corpus_reader_splits_captioned_segments_and_normalizes(corpus):
    clips = load_clips(corpus, "train")
    names = [c.name for c in clips]
    assert "000000#0.5-2.5" in names and "000000" in names  # the part caption is a clip of its own
    part = clips[names.index("000000#0.5-2.5")]
    assert len(part.features) == 40 and part.captions == ["a person walks forward briefly"]
    whole = clips[names.index("000000")]
    assert whole.captions == ["a person walks forward", "someone walks forward"]
    everything = np.concatenate([c.features for c in clips if "#" not in c.name])
    assert abs(everything.mean()) < 0.05  # normalized with the train split's statistics


def test_corpus_reader_names_what_is_wrong(corpus, tmp_path):
    broken = write_corpus(tmp_path / "broken", clips=8)
    (broken / "Std.npy").unlink()
    with pytest.raises(CorpusError, match="Std.npy is missing"):
        load_clips(broken, "train")
    other = write_corpus(tmp_path / "other", clips=8)
    np.save(other / "new_joint_vecs" / "000001.npy", np.zeros((10, 12), np.float32))
    with pytest.raises(CorpusError, match="000001.npy: expected finite"):
        load_clips(other, "train")
    with pytest.raises(CorpusError, match="unknown split"):
        load_clips(corpus, "training")


@pytest.mark.parametrize("setting,message", [
    ("train.stepz=3", "unknown key train.stepz"),
    ("train.steps='many'", "train.steps must be int"),
    ("optimizer.lr=1", "unknown section"),
    ("steps=3", "expected section.key=value"),
])
def test_bad_configuration_gets_a_one_line_error(corpus, tmp_path, capsys, setting, message):
    code = cli(["train", "vq", "--config", str(VQ_TINY), "--out", str(tmp_path / "run"), "--set", f"data.dir='{corpus}'",
                "--set", setting])
    error = capsys.readouterr().err.strip()
    assert code == 1 and message in error and "\n" not in error
    assert not (tmp_path / "run").exists()


def test_vq_run_writes_tokenizer_log_and_curve(vq_run, corpus):
    vae, mean, std = load_vq_dir(vq_run / "vq")
    assert vae.config.codebook_size == 32 and mean.shape == (263,)
    log = rows(vq_run)
    assert [r["step"] for r in log] == ["2", "4", "6"]
    assert all(np.isfinite(float(r["loss"])) for r in log) and float(log[-1]["validation_mpjpe_mm"]) > 0
    assert (vq_run / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The tokenizer round-trips a clip's features through codes.
    features = load_clips(corpus, "val")[0].features[:16]
    import torch

    codes = vae.encode(torch.from_numpy(features)[None])
    assert codes.shape == (1, 4) and int(codes.max()) < 32


def test_windows_find_the_fastest_limb_movement():
    rng = np.random.default_rng(0)
    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    clips = []
    for kick in (17, 90, 140):
        features = rng.normal(0, 0.001, (150, 263)).astype(np.float32)
        foot = POSITIONS.start + 3 * (LIMB_ENDS[1] - 1) + 1  # the right foot's height
        features[kick:kick + 3, foot] += 0.4  # a kick: three frames of a foot far up
        clips.append(Clip(f"{kick}", features))
    peaks = fastest_frames(clips, mean, std)
    assert all(kick <= peak <= kick + 3 for kick, peak in zip((17, 90, 140), peaks))  # the foot going up or down
    for epoch in range(20):
        placed = windows(clips, [0, 1, 2], 32, seed=0, epoch=epoch, peaks=peaks, peak_share=1.0).numpy()
        assert all(window[:, foot].max() > 0.3 for window in placed)  # every window holds its clip's kick
    uniform = [windows(clips, [1], 32, seed=0, epoch=epoch).numpy()[0] for epoch in range(40)]
    assert 0 < sum(w[:, foot].max() > 0.3 for w in uniform) < 40  # drawn without peaks, some miss it


def test_decoder_only_keeps_every_code_and_trains_the_limbs(corpus, vq_run, tmp_path):
    settings = [f"data.dir='{corpus}'", f"model.init='{vq_run / 'vq'}'", "train.decoder_only=true",
                "train.steps=40", "train.log_every=10", "train.lr=2e-3", "train.limb_weight=2.0"]
    train_vq(VQ_TINY, tmp_path / "decoder", settings, log=lambda line: None)
    before, _, _ = load_vq_dir(vq_run / "vq")
    after, _, _ = load_vq_dir(tmp_path / "decoder" / "vq")
    old, new = before.state_dict(), after.state_dict()
    # The encoder and codebook are the same bits: a language model's codes keep their meaning.
    assert all(torch.equal(old[k], new[k]) for k in old if not k.startswith("decoder."))
    assert any(not torch.equal(old[k], new[k]) for k in old if k.startswith("decoder."))
    features = torch.from_numpy(load_clips(corpus, "train", statistics=None)[0].features[:32])[None]
    assert torch.equal(before.encode(features), after.encode(features))
    assert "limbs" in rows(tmp_path / "decoder")[0]



def test_vq_action_repeats_draw_more_windows_of_named_actions(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", actions=True)
    lines = []
    train_vq(VQ_TINY, tmp_path / "plain", [f"data.dir='{corpus}'", "train.steps=2"], log=lines.append)
    train_vq(VQ_TINY, tmp_path / "kicks", [f"data.dir='{corpus}'", "train.steps=2", "train.action_repeats={kick = 3}"],
             log=lines.append)
    plain, kicks = (int(line.split()[1]) for line in lines if "training clips" in line)
    assert kicks == plain + 2 * 3  # the train split's kicks (clips 5, 11, 17) twice more
    with pytest.raises(ConfigError, match="does not have: kik"):
        train_vq(VQ_TINY, tmp_path / "typo", [f"data.dir='{corpus}'", "train.action_repeats={kik = 3}"], log=lines.append)


def test_vq_real_variants_add_retimed_and_mirrored_captured_clips(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", real=3)
    lines = []
    train_vq(VQ_TINY, tmp_path / "plain", [f"data.dir='{corpus}'", "train.steps=2"], log=lines.append)
    train_vq(VQ_TINY, tmp_path / "real", [f"data.dir='{corpus}'", "train.steps=2", "train.real_speeds=[0.8, 1.25]",
                                          "train.real_mirrored=true"], log=lines.append)
    plain, real = (int(line.split()[1]) for line in lines if "training clips" in line)
    # 3 real clips at two more speeds (6), then those 9 mirrored.
    assert real == plain + 6 + 9
    with pytest.raises(ConfigError, match="real_speeds"):
        train_vq(VQ_TINY, tmp_path / "bad", [f"data.dir='{corpus}'", "train.real_speeds=[0]"], log=lines.append)


def test_limb_loss_sees_a_kick_the_whole_pose_hides():
    truth = torch.zeros(1, 64, 263)
    foot = POSITIONS.start + 3 * (LIMB_ENDS[1] - 1) + 1  # the right foot's height
    truth[0, 30:36, foot] = torch.tensor([1.0, 2.0, 3.0, 3.0, 2.0, 1.0])  # a kick
    flattened = truth.clone()
    flattened[0, 30:36, foot] *= 0.5  # the kick at half its swing
    parts = losses(truth, flattened, torch.zeros(1, 16, 8), torch.zeros(1, 16, 8))
    assert float(losses(truth, truth, torch.zeros(1, 16, 8), torch.zeros(1, 16, 8))["limbs"]) == 0
    # One column of 263 barely moves the whole pose's loss; among the 12 limb-end columns it shows.
    assert float(parts["limbs"]) > 20 * float(parts["reconstruction"]) > 0


def test_decoder_only_needs_a_tokenizer_to_keep(corpus, tmp_path):
    with pytest.raises(ValueError, match="model.init"):
        train_vq(VQ_TINY, tmp_path / "run", [f"data.dir='{corpus}'", "train.decoder_only=true"], log=lambda line: None)


def test_resumed_run_continues_exactly_where_it_stopped(corpus, tmp_path):
    settings = [f"data.dir='{corpus}'", "train.schedule='constant'"]
    train_vq(VQ_TINY, tmp_path / "straight", settings, log=lambda line: None)
    lines = []
    train_vq(VQ_TINY, tmp_path / "stopped", settings + ["train.steps=4"], log=lines.append)
    train_vq(VQ_TINY, tmp_path / "stopped", settings, log=lines.append)
    assert any("resuming at step 4" in line for line in lines)
    assert [r["step"] for r in rows(tmp_path / "stopped")] == ["2", "4", "6"]
    # Data order, code resets and optimizer state all continue: the weights are the same bits.
    assert digest(tmp_path / "stopped") == digest(tmp_path / "straight")



def test_stop_at_keeps_the_schedule_and_resumes_to_the_end(corpus, tmp_path):
    """train.stop_at writes the result mid-schedule (a stage kept at an earlier step);
    the cosine rate is the full run's, and the same run resumes to the same bits."""
    settings = [f"data.dir='{corpus}'"]
    train_vq(VQ_TINY, tmp_path / "straight", settings, log=lambda line: None)
    train_vq(VQ_TINY, tmp_path / "stopped", settings + ["train.stop_at=4"], log=lambda line: None)
    assert [r["step"] for r in rows(tmp_path / "stopped")] == ["2", "4"]
    assert (tmp_path / "stopped" / "vq" / "vae.safetensors").is_file()  # the result at step 4
    assert [r["lr"] for r in rows(tmp_path / "stopped")] == [r["lr"] for r in rows(tmp_path / "straight")][:2]
    train_vq(VQ_TINY, tmp_path / "stopped", settings, log=lambda line: None)
    assert digest(tmp_path / "stopped") == digest(tmp_path / "straight")
    with pytest.raises(ConfigError, match="train.stop_at"):
        train_vq(VQ_TINY, tmp_path / "bad", settings + ["train.stop_at=-1"], log=lambda line: None)

def test_run_directory_refuses_another_configuration(corpus, tmp_path):
    train_vq(VQ_TINY, tmp_path / "run", [f"data.dir='{corpus}'", "train.steps=2"], log=lambda line: None)
    with pytest.raises(ConfigError, match="model.width"):
        train_vq(VQ_TINY, tmp_path / "run", [f"data.dir='{corpus}'", "model.width=64"], log=lambda line: None)
    train_vq(VQ_TINY, tmp_path / "run", [f"data.dir='{corpus}'", "model.width=64", "train.steps=2"], restart=True,
             log=lambda line: None)
    assert load_vq_dir(tmp_path / "run" / "vq")[0].config.width == 64


def test_training_lowers_the_losses(corpus, tmp_path):
    settings = [f"data.dir='{corpus}'", "train.steps=150", "train.log_every=25", "train.checkpoint_every=50",
                "train.lr=2e-3", "train.warmup=5"]
    train_vq(VQ_TINY, tmp_path / "vq", settings, log=lambda line: None)
    vq_log = rows(tmp_path / "vq")
    assert float(vq_log[-1]["reconstruction"]) < 0.9 * float(vq_log[0]["reconstruction"])
    train_vq(VQ_TINY, tmp_path / "vq-root", settings + ["train.root_weight=1.0"], log=lambda line: None)
    root_log = rows(tmp_path / "vq-root")
    # Weighting the root's features lowers their error faster than the same run without.
    assert float(root_log[-1]["root"]) < float(vq_log[-1]["root"]) and float(root_log[-1]["root"]) < 0.9 * float(root_log[0]["root"])
    train_lm(LM_TINY, tmp_path / "lm", settings + [f"model.vq='{tmp_path / 'vq' / 'vq'}'", "train.lr=3e-3"],
             log=lambda line: None)
    lm_log = rows(tmp_path / "lm")
    chance = np.log(len(load_model_dir(tmp_path / "lm" / "model").tokenizer))  # uniform guessing
    assert float(lm_log[-1]["loss"]) < 0.4 * chance
    validation = [float(r["validation_loss"]) for r in lm_log if r["validation_loss"]]
    assert len(validation) == 3 and validation[-1] < 0.6 * chance


def test_retimed_clip_is_the_same_motion_at_another_pace(corpus):
    from server.train.augment import retimed_clip, retimed_joints
    from server.train.corpus import read_statistics

    mean, std = read_statistics(corpus)
    clip = load_clips(corpus, "train")[1]
    joints = joints_from_features(clip.features * std + mean)
    same = retimed_clip(clip, 1.0, mean, std)
    assert same.name == f"{clip.name}@1" and same.captions == clip.captions
    assert np.abs(joints_from_features(same.features * std + mean) - joints[:len(same.features)]).max() < 0.01
    faster = retimed_clip(clip, 2.0, mean, std)
    fast_joints = joints_from_features(faster.features * std + mean)
    assert len(faster.features) == len(clip.features) // 2
    # Half the frames for the same way travelled: each frame's step is twice as long.
    assert np.linalg.norm(fast_joints[-1, 0] - joints[-2, 0]) < 0.05
    step = np.linalg.norm(np.diff(joints[:, 0, [0, 2]], axis=0), axis=-1).mean()
    fast_step = np.linalg.norm(np.diff(fast_joints[:, 0, [0, 2]], axis=0), axis=-1).mean()
    assert fast_step == pytest.approx(2 * step, rel=0.1)
    with pytest.raises(ValueError, match="speed must be positive"):
        retimed_joints(joints, 0.0)


def test_real_speeds_must_be_positive(corpus, vq_run, tmp_path, capsys):
    code = cli(["train", "lm", "--config", str(LM_TINY), "--out", str(tmp_path / "run"), "--set", f"data.dir='{corpus}'",
                "--set", f"model.vq='{vq_run / 'vq'}'", "--set", "train.real_speeds=[1.2, 0]"])
    assert code != 0 and "train.real_speeds must be positive numbers" in capsys.readouterr().err


def test_action_repeats_show_clips_of_named_actions_more_often():
    features = np.zeros((30, 263), np.float32)
    clips = [Clip("000000", features), Clip("000001#0.5-1", features), Clip("000002", features),
             Clip("cmu0001@1.25", features), Clip("000003", features)]
    actions = {"000000": ["walk"], "000001": ["walk", "kick"], "000002": ["punch", "kick"], "000003": ["jump"]}
    # A clip takes its most repeated action; a caption segment and a retimed clip are their clip's.
    assert repeated_indices(clips, actions, {"kick": 3, "punch": 2}) == [0, 1, 1, 1, 2, 2, 2, 3, 4]
    assert repeated_indices(clips, actions, {}) == [0, 1, 2, 3, 4]
    assert repeated_indices(clips, {}, {}) == [0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match="does not have: kik"):
        repeated_indices(clips, actions, {"kik": 2})
    with pytest.raises(ConfigError, match="whole numbers of at least 1"):
        repeated_indices(clips, actions, {"kick": 0})
    with pytest.raises(ConfigError, match="needs the corpus's clips.jsonl"):
        repeated_indices(clips, {}, {"kick": 2})


def test_mirrored_clip_swaps_sides_in_motion_and_words():
    assert mirrored_caption("Left kick, then a turn to the right (counter-clockwise)") == \
        "Right kick, then a turn to the left (clockwise)"
    assert mirrored_caption("he walks leftward with his bright torch") == "he walks rightward with his bright torch"
    assert names_a_side("turns clockwise") and not names_a_side("a person walks forward brightly")
    frames = np.arange(40)
    joints = smooth_random_joints(frames=40, seed=3)
    joints[15:25, JOINT_INDEX["left_foot"], 1] += 0.4 * np.sin(np.pi * (frames[15:25] - 14) / 11)
    joints[:, :, 0] += 0.02 * frames[:, None]  # drifting toward the body's left
    assert np.array_equal(mirrored_joints(mirrored_joints(joints)), joints)
    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    clip = Clip("000007#0.5-2", features_from_joints(joints).astype(np.float32), ["kicks with the left foot"])
    mirror = mirrored_clip(clip, mean, std)
    assert mirror.name == "000007#0.5-2~mirror" and mirror.captions == ["kicks with the right foot"]
    before, after = joints_from_features(clip.features), joints_from_features(mirror.features)
    rise = lambda motion, foot: np.ptp(motion[:, JOINT_INDEX[foot], 1])  # noqa: E731
    assert rise(after, "right_foot") == pytest.approx(rise(before, "left_foot"), abs=0.03)
    assert rise(after, "left_foot") == pytest.approx(rise(before, "right_foot"), abs=0.03)
    # The clip drifts to the body's left (+x at the start); its mirror to the right.
    assert before[-1, 0, 0] - before[0, 0, 0] > 0.5 and after[-1, 0, 0] - after[0, 0, 0] < -0.5


def test_lm_run_makes_a_model_that_loads_and_runs_all_tasks(vq_run, tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus", real=3, actions=True)
    lines = []
    model_dir = train_lm(LM_TINY, tmp_path, [f"data.dir='{corpus}'", f"model.vq='{vq_run / 'vq'}'", "train.real_speeds=[0.8, 1.25]",
                                             "train.mirror_sides=true", "train.action_repeats={kick = 3}"],
                         log=lines.append)
    # 18 training clips, 3 of them real; clips 5, 11 and 17 kick with the left foot: each
    # mirrored, and each kick (mirrored too) seen twice more.
    assert any("(3 real capture, 6 of it retimed, 3 mirrored, 12 repeats of train.action_repeats)" in line for line in lines)
    assert (tmp_path / "tokenizer" / "spiece.model").exists()
    model = load_model_dir(model_dir)
    motions = model.generate("a person walks forward", frames=24, seed=1)
    assert motions[0].shape == (24, 22, 3) and np.all(np.isfinite(motions[0]))
    assert isinstance(model.caption(motions[0]), str)
    assert model.predict(motions[0], frames=8).shape == (32, 22, 3)
    assert model.inbetween(motions[0], 8, 16).shape == (24, 22, 3)
    assert cli(["info", "--model", str(model_dir)]) == 0
    assert '"codebook_size": 32' in capsys.readouterr().out


def _torchrun(*args) -> subprocess.CompletedProcess:
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "server.cli", "train", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_torchrun_two_processes_keep_identical_weights_and_resume(corpus, tmp_path):
    run = tmp_path / "vq"
    _torchrun("vq", "--config", str(VQ_TINY), "--out", str(run), "--set", f"data.dir='{corpus}'", "--set", "train.steps=4")
    resumed = _torchrun("vq", "--config", str(VQ_TINY), "--out", str(run), "--set", f"data.dir='{corpus}'")
    assert "resuming at step 4" in resumed.stdout
    assert resumed.stdout.count("vq step 6") == 1  # rank 0 alone logs
    assert digest(run, 0) == digest(run, 1)
    assert [r["step"] for r in rows(run)] == ["2", "4", "6"]
    lm = tmp_path / "lm"
    _torchrun("lm", "--config", str(LM_TINY), "--out", str(lm), "--set", f"data.dir='{corpus}'",
              "--set", f"model.vq='{run / 'vq'}'")
    assert digest(lm, 0) == digest(lm, 1)
    assert load_model_dir(lm / "model").codebook_size == 32


def test_second_stage_reads_prompts_through_the_sentence_encoder_and_resumes_exactly(corpus, vq_run, tmp_path):
    """A stage that continues from a model directory (model.init) and switches it to a
    pretrained text encoder: its motion side is kept, it trains, and a stopped run
    resumes to the same weights."""
    first = train_lm(LM_TINY, tmp_path / "first", [f"data.dir='{corpus}'", f"model.vq='{vq_run / 'vq'}'"],
                     log=lambda line: None)
    settings = [f"data.dir='{corpus}'", f"model.init='{first}'", "model.text_encoder='all-MiniLM-L6-v2'",
                "train.quote=0.0", "train.schedule='constant'"]
    whole = train_lm(LM_TINY, tmp_path / "whole", settings, log=lambda line: None)
    train_lm(LM_TINY, tmp_path / "parts", settings + ["train.steps=4"], log=lambda line: None)
    train_lm(LM_TINY, tmp_path / "parts", settings, log=lambda line: None)
    assert digest(tmp_path / "whole") == digest(tmp_path / "parts")
    model = load_model_dir(whole)
    assert model.describe()["text_encoder"] == "all-MiniLM-L6-v2"
    start = load_model_dir(first)
    assert np.array_equal(model.codes_from_features(np.zeros((16, 263), np.float32)),
                          start.codes_from_features(np.zeros((16, 263), np.float32)))  # same motion tokenizer
    motions = model.generate("someone leaps into the air", frames=16, seed=0)
    assert motions[0].shape == (16, 22, 3) and np.all(np.isfinite(motions[0]))
    assert isinstance(model.caption(motions[0]), str)



def test_a_stage_can_add_the_sentence_token_and_trains_it(corpus, vq_run, tmp_path):
    """train.sentence_token gives a continued model the sentence token (a fresh
    projection that training moves); train.sentence_only needs it and is a share."""
    first = train_lm(LM_TINY, tmp_path / "first", [f"data.dir='{corpus}'", f"model.vq='{vq_run / 'vq'}'"],
                     log=lambda line: None)
    settings = [f"data.dir='{corpus}'", f"model.init='{first}'", "model.text_encoder='all-MiniLM-L6-v2'",
                "train.quote=0.0"]
    with pytest.raises(ConfigError, match="needs the sentence token"):
        train_lm(LM_TINY, tmp_path / "refused", settings + ["train.sentence_only=0.3"], log=lambda line: None)
    with pytest.raises(ConfigError, match=r"share in \[0, 1\)"):
        train_lm(LM_TINY, tmp_path / "refused2", settings + ["train.sentence_token=true", "train.sentence_only=1.5"],
                 log=lambda line: None)
    run = train_lm(LM_TINY, tmp_path / "sentences", settings + ["train.sentence_token=true", "train.sentence_only=0.5"],
                   log=lambda line: None)
    model = load_model_dir(run)
    assert model.prompt_embedder.sentence_token
    torch.manual_seed(0)  # the fresh projection the stage started from
    fresh = PromptEmbedder.projection_for(model.prompt_embedder.encoder, model.lm.config.d_model)
    assert not torch.allclose(model.lm.prompt_sentence_projection.weight, fresh.weight)
    motions = model.generate("someone leaps into the air", frames=16, seed=0)
    assert motions[0].shape == (16, 22, 3) and np.all(np.isfinite(motions[0]))


def test_caption_states_of_an_earlier_stage_are_reused_for_a_new_set_of_texts(tmp_path):
    from server.model.text_encoder import SentenceEncoder

    encoder = SentenceEncoder("all-MiniLM-L6-v2")
    computed = []
    token_states = encoder.token_states
    encoder.token_states = lambda texts: computed.append(list(texts)) or token_states(texts)
    first = PromptEmbedder(encoder, None, None)
    remember_cached(first, ["a person walks", "a person jumps"], tmp_path)
    assert computed[-1] == ["a person jumps", "a person walks"]
    second = PromptEmbedder(encoder, None, None)  # a later stage, with mirrored captions added
    computed.clear()
    remember_cached(second, ["a person walks", "a person jumps", "kicks with the right foot"], tmp_path)
    assert computed == [["kicks with the right foot"]]
    assert torch.equal(second.kept["a person walks"], first.kept["a person walks"])
    assert len(list(tmp_path.glob("text-states-all-MiniLM-L6-v2-*.pt"))) == 2
    third = PromptEmbedder(encoder, None, None)
    computed.clear()
    remember_cached(third, ["kicks with the right foot", "a person jumps"], tmp_path)
    assert not any(computed)  # every text is in an earlier file
