"""`motiongpt eval`'s metrics on cases with known answers, and a whole run on a small
corpus with small trained models."""

import json
from pathlib import Path

import numpy as np
import pytest

from server.cli import main as cli
from server.eval import metrics
from server.eval.captions import action_words, coco_scores, names_action
from server.eval.retrieval import SentenceEncoder
from tests.corpus import write_corpus


def test_r_precision_counts_how_often_the_true_motion_is_nearest():
    rng = np.random.default_rng(0)
    motion = 10.0 * np.eye(64)  # far apart from each other
    assert metrics.r_precision(motion, motion).tolist() == [1.0, 1.0, 1.0]
    # Each text 60% of the way to the next pair's motion: its own motion comes second
    # (except the last of each batch of 32, whose "next" is in another batch).
    text = motion + 0.6 * (np.roll(motion, -1, axis=0) - motion)
    top = metrics.r_precision(text, motion, batch=32)
    assert top.tolist() == [1 / 32, 1.0, 1.0]
    shuffled = metrics.r_precision(rng.normal(size=(320, 8)), rng.normal(size=(320, 8)))
    assert abs(shuffled[0] - 1 / 32) < 0.03  # chance


def test_frechet_distance_of_gaussians_matches_its_closed_form():
    rng = np.random.default_rng(1)
    sample = rng.normal(size=(2000, 4))
    sample -= sample.mean(0)
    real = sample @ np.linalg.inv(np.linalg.cholesky(np.cov(sample, rowvar=False))).T  # mean 0, covariance I exactly
    assert metrics.frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    assert metrics.frechet_distance(real, real + [3.0, 0, 0, 0]) == pytest.approx(9.0)
    assert metrics.frechet_distance(real, 2.0 * real) == pytest.approx(4.0)  # tr(I + 4I - 2 * 2I)
    assert metrics.frechet_distance(real, rng.normal(size=(2000, 4))) < 0.05


def test_diversity_and_multimodality():
    rng = np.random.default_rng(2)
    spread = rng.normal(size=(500, 16))
    assert metrics.diversity(spread) == pytest.approx(np.sqrt(2 * 16), rel=0.1)
    assert metrics.diversity(np.ones((500, 16))) == 0.0
    same = np.repeat(rng.normal(size=(8, 1, 16)), 10, axis=1)
    assert metrics.multimodality(same) == 0.0


def test_tokenizer_measures_see_a_flattened_kick_and_a_lost_jump():
    frames = np.arange(40)
    truth = np.zeros((40, 22, 3))
    truth[:, :, 1] = 0.9
    truth[:, :, 0] = np.linspace(0, 0.7, 40)[:, None]  # the body moves 0.7 m to its left
    truth[:, 10:12, 1] = 0.0
    truth[15:20, 10, 1] = 0.4 * np.sin(np.pi * (frames[15:20] - 14) / 6)  # the left foot kicks up
    flattened = truth.copy()
    flattened[:, 10, 1] *= 0.25
    in_place = truth.copy()
    in_place[:, :, 0] -= in_place[:, :1, 0]
    assert metrics.swing_kept(truth, truth) == pytest.approx(1.0)
    assert metrics.swing_kept(truth, flattened) < 0.5
    still = truth.copy()
    still[:, 10, 1] = 0.0
    assert np.isnan(metrics.swing_kept(still, still))  # nothing swings: nothing to keep
    assert metrics.travel_error(truth, truth) == 0.0 and metrics.travel_error(truth, in_place) == pytest.approx(0.7)


def test_caption_scores_and_action_words():
    scores = coco_scores(["a person walks forward", "someone jumps"], [["a person walks forward"], ["someone jumps up"]])
    assert scores["bleu_1"] > 0.8 and scores["rouge_l"] > 0.8
    bad = coco_scores(["the cat sat", "blue sky"], [["a person walks forward"], ["someone jumps up"]])
    assert bad["bleu_1"] < 0.1 and bad["cider"] < scores["cider"]
    naming = action_words({"walk": ["a person walks forward", "someone walks slowly"],
                           "jump": ["a person jumps", "someone jumps high"],
                           "sit_down": ["a man sits down on a chair", "she sat down"],
                           "sit_on_floor": ["a man sits on the floor", "someone sat on the ground"]})
    assert {"walk", "forward", "slowly", "walk forward"} <= naming["walk"]
    assert "person" not in naming["walk"] and "sit" not in naming["sit_down"]  # shared with other actions
    # Tenses and plurals count as one word; pairs tell apart actions that share a word.
    assert names_action("the man walked away", "walk", naming) and not names_action("a person jumps", "walk", naming)
    assert names_action("a woman sits down", "sit_down", naming) and not names_action("a woman sits down", "sit_on_floor", naming)
    assert names_action("she jumped, then walked", ["sit_down", "jump"], naming)  # any of a sequence's actions
    # A one-word action's own name names it even where other actions' captions share it:
    # "walks" is in a march's captions, but a walk captioned "walks" is named.
    naming = action_words({"walk": ["a person strolls forward", "someone walks slowly"],
                           "march": ["a soldier walks with high knees", "someone marches"] * 2,
                           "dance": ["a dancer does ballet"], "side_step": ["someone steps to the side"],
                           "stairs_up": ["a person steps up the stairs"]})
    assert "walk" not in action_words({"walk": ["someone walks"], "march": ["a soldier walks"]})["march"]
    assert names_action("a person walks in a straight line", "walk", naming)
    assert names_action("a woman danced", "dance", naming) and names_action("someone dances a waltz", "dance", naming)
    assert not names_action("a person walks in a straight line", "march", naming)
    assert not names_action("a man steps up", "side_step", naming)  # "step" alone names no two-word action


def test_sentence_encoder_loads_offline_and_groups_paraphrases(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = SentenceEncoder()
    vectors = encoder.encode(["a person walks forward", "someone strolls ahead", "a man does a backflip"])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_eval_writes_a_table_from_trained_models(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    corpus = write_corpus(tmp_path / "corpus", clips=300, frames=48)
    labels = ["walk", "turn", "wave", "jump", "squat", "kick"]
    (corpus / "clips.jsonl").write_text("".join(
        json.dumps({"id": f"{k:06d}", "actions": [{"action": labels[k % 6]}]}) + "\n" for k in range(300)))
    common = ["--set", f"data.dir='{corpus}'", "--set", "train.threads=2"]
    assert cli(["train", "vq", "--config", "server/train/configs/vq-tiny.toml", "--out", str(tmp_path / "vq"), *common]) == 0
    assert cli(["train", "lm", "--config", "server/train/configs/lm-tiny.toml", "--out", str(tmp_path / "lm"), *common,
                "--set", f"model.vq='{tmp_path / 'vq' / 'vq'}'"]) == 0
    assert cli(["train", "retrieval", "--config", "server/eval/configs/retrieval.toml", "--out", str(tmp_path / "ret"),
                *common, "--set", "train.steps=20", "--set", "train.batch=16"]) == 0
    capsys.readouterr()
    assert cli(["eval", "--model", str(tmp_path / "lm" / "model"), "--data", str(corpus), "--evaluator",
                str(tmp_path / "ret" / "evaluator"), "--out", str(tmp_path / "eval"), "--clips", "32", "--samples", "2",
                "--multimodal-texts", "2"]) == 0
    table = (tmp_path / "eval" / "results.md").read_text()
    assert table in capsys.readouterr().out
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["clips"] == 32 and len(results["text_to_motion"]["r_precision"]) == 3
    assert 0.0 <= results["captioning"]["names_action"] <= 1.0
    assert "held_out_combination_pairs" in results["captioning"]  # reported (this corpus lists none)
    # The speed and size targets, as measured in this run (a report, not a bound).
    assert results["speed"]["frames"] == 196 and results["speed"]["seconds"] > 0 and results["speed"]["hf_generate_seconds"] > 0
    model_bytes = sum(f.stat().st_size for f in (tmp_path / "lm" / "model").rglob("*") if f.is_file())
    assert results["model_files_mb"] == pytest.approx(model_bytes / 1e6)
    assert "Generation of 196 frames" in table and "Model files" in table
    written = results["captioning"]["written"]  # every test clip's caption, for judging again
    assert len(written) == 32 and all(isinstance(w, str) for w in written.values())
    prompts = results["prompts"]
    assert prompts["samples"] == 10 * prompts["prompts"] >= 400 and 0.0 <= prompts["pass_rate"] <= 1.0
    assert f"{prompts['prompts']} prompts x 10 seeds" in table
    assert results["sampling"] == {"top_k": 50, "temperature": 1.0}  # the model's own: this one records none
    assert "people's own words" in table
    assert all(np.isfinite(results["text_to_motion"][k]) for k in ("fid", "matching", "diversity", "multimodality"))
    assert (tmp_path / "eval" / "results.png").read_bytes()[:4] == b"\x89PNG"
    # This corpus has no captured clips, so no separate number for them.
    assert results["reconstruction_mpjpe_mm"] > 0 and results["reconstruction_mpjpe_mm_real"] is None
    tokenizer = results["tokenizer"]
    assert set(tokenizer["per_action"]) <= set(labels) and tokenizer["per_action"] and tokenizer["travel_error_m"] >= 0
    kept = [v["swing_kept"] for v in tokenizer["per_action"].values()]
    assert kept == sorted(kept) and "VQ keeps of the widest foot/wrist swing" in table  # worst first
    # walk, jump and squat clips name no side, so only their checks can be judged.
    checks = results["tokenizer_checks"]
    assert checks and set(checks) <= {"walk_forward", "jump_up", "jump_forward", "lower"}
    assert all(v["clips"] > 0 and 0 <= v["through_tokenizer"] <= 1 for v in checks.values())
    assert "as they are -> through the VQ" in table


def test_the_shipped_evaluator_matches_motions_to_their_words(monkeypatch):
    """server/eval/evaluator, the yardstick the model card's numbers were measured with:
    synthesized motions lie nearest their own action's words."""
    from retarget.humanml3d import features_from_joints
    from server.eval.retrieval import load_evaluator
    from tests.test_path import synthesized

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    evaluator = load_evaluator(Path(__file__).resolve().parent.parent / "server" / "eval" / "evaluator")
    texts = evaluator.texts(["a person walks forward", "a person kicks with the left leg", "a person squats down"])
    motions = evaluator.motions([features_from_joints(synthesized(action, 4.0, seed=1)).astype(np.float32)
                                 for action in ("walk", "kick", "squat")])
    distances = np.linalg.norm(motions[:, None] - texts[None], axis=-1)
    assert distances.argmin(axis=1).tolist() == [0, 1, 2]


def test_the_dev_prompts_are_apart_from_the_reported_ones():
    """Checkpoints are chosen on DEV_PROMPTS so that PROMPTS stays for reporting: no text in
    both, every check known, every sided prompt names its side."""
    from server.eval.prompts import CHECKS, DEV_PROMPTS, PROMPTS

    assert not {p.text for p in DEV_PROMPTS} & {p.text for p in PROMPTS}
    for p in DEV_PROMPTS + PROMPTS:
        assert p.check in CHECKS
        assert p.side is None or p.side in p.text


def test_a_caption_of_a_held_out_combination_counts_when_it_names_both_actions(tmp_path):
    """eval's held-out combinations (corpus.json lists them): a test clip holding one is
    captioned right only when the caption names both of its actions."""
    from server.eval.report import caption_naming
    from server.train.corpus import clip_actions, load_clips

    corpus = write_corpus(tmp_path / "corpus", clips=48, actions=True)
    (corpus / "corpus.json").write_text(json.dumps({"held_out_combinations": ["wave then jump"]}))
    test = load_clips(corpus, "test", min_frames=1)
    actions = clip_actions(corpus) | {clip.name: ["wave", "jump"] for clip in test}
    actions[test[0].name] = ["jump", "wave"]  # the other order is not held out
    written = ["a person waves, then jumps"] * 3 + ["a person waves"] * (len(test) - 3)
    result = caption_naming(corpus, actions, test, written)
    assert result["held_out_combination_pairs"] == len(test) - 1
    assert result["names_both_held_out_combination"] == pytest.approx(2 / (len(test) - 1))
