"""`motiongpt eval`: every task of a model measured on a corpus's test split.

The test split's captions use phrasings that training never saw (the corpus holds them
out), so text-to-motion and captioning are measured on new wordings. Results go to
OUT/results.md (the table the README shows), OUT/results.json and OUT/*.png.

    motiongpt eval --model DIR --data CORPUS --evaluator runs/retrieval/evaluator --out out/eval
"""

import json
from pathlib import Path

import numpy as np

from retarget.humanml3d import features_from_joints, joints_from_features
from server.model.catalog import size_on_disk
from server.train.corpus import MOCAP_PREFIX, clip_actions as read_clip_actions, load_clips, read_statistics, single_actions

from . import metrics
from .captions import action_words, coco_scores, embedding_similarity, names_action
from .prompts import CHECKS, evaluate_prompts

MIN_FRAMES = 40


def held_out_combinations(data: Path) -> set[tuple[str, str]]:
    """The (action, then action) pairs the corpus kept out of training; empty for a corpus
    written before it kept any."""
    path = Path(data) / "corpus.json"
    listed = json.loads(path.read_text()).get("held_out_combinations", []) if path.exists() else []
    return {tuple(text.split(" then ")) for text in listed}


def caption_naming(data: Path, clip_actions: dict[str, list[str]], test: list, written: list[str]) -> dict:
    """Whether each written caption names an action its clip shows, judged by words that
    name each action, learned from the training captions of clips showing one action
    alone (captions.action_words). Empty for a corpus without clips.jsonl."""
    if not clip_actions:
        return {}
    single = {}
    for clip in load_clips(data, "train", min_frames=1):
        actions = clip_actions.get(clip.name.split("#")[0], [])
        if len(actions) == 1:
            single.setdefault(actions[0], []).extend(clip.captions)
    naming = action_words(single)
    judged = [(clip_actions[c.name], names_action(w, clip_actions[c.name], naming), c.name.startswith(MOCAP_PREFIX))
              for c, w in zip(test, written) if c.name in clip_actions]
    synthetic = [hit for _, hit, real in judged if not real]
    real = [hit for _, hit, real in judged if real]
    per_action = {}
    for actions, hit, _ in judged:
        per_action.setdefault(actions[0], []).append(hit)
    # Test clips holding an action combination training never showed (corpus.json lists
    # them): does the caption name both actions of the pair?
    held_out = held_out_combinations(data)
    pairs = [(w, pair) for c, w in zip(test, written) if c.name in clip_actions
             for pair in zip(clip_actions[c.name], clip_actions[c.name][1:]) if pair in held_out]
    both = [all(names_action(w, [action], naming) for action in pair) for w, pair in pairs]
    return {"names_action": float(np.mean(synthetic)) if synthetic else None,
            "names_action_real": float(np.mean(real)) if real else None,
            "names_both_held_out_combination": float(np.mean(both)) if both else None,
            "held_out_combination_pairs": len(both),
            "names_action_per_action": {a: float(np.mean(h)) for a, h in sorted(per_action.items())},
            "actions_without_naming_words": sorted(a for a, units in naming.items() if not units)}


def tokenizer_per_action(clip_actions: dict[str, list[str]], test: list, kept: list[float], travel: list[float]) -> dict:
    """The tokenizer's swing kept and travel error over all clips, and per action over the
    clips showing one action alone, worst first (what the model cannot generate at all)."""
    per_action = {}
    for clip, k, t in zip(test, kept, travel):
        actions = clip_actions.get(clip.name, [])
        if len(actions) == 1:
            per_action.setdefault(actions[0], []).append((k, t))
    # Clips that barely move their limbs have no swing to keep (NaN): averaged without them.
    summary = {action: {"swing_kept": float(np.nanmean([k for k, _ in v])), "travel_error_m": float(np.mean([t for _, t in v]))}
               for action, v in per_action.items() if not np.all(np.isnan([k for k, _ in v]))}
    swinging = [k for k in kept if not np.isnan(k)]
    return {"swing_kept": float(np.mean(swinging)) if swinging else None, "travel_error_m": float(np.mean(travel)),
            "per_action": dict(sorted(summary.items(), key=lambda item: item[1]["swing_kept"]))}


def _generate_features(model, caption: str, frames: int, seed: int, sampling) -> np.ndarray:
    return model.generated_features(caption, max(1, frames // model.frames_per_token), sampling, seed)


# Corpus actions the prompt checks can judge: action -> (check, the parameter naming its side).
ACTION_CHECKS = {"jump": ("jump_up", None), "jump_backward": ("jump_backward", None), "jump_sideways": ("jump_side", "side"),
                 "walk": ("walk_forward", None), "walk_backward": ("walk_backward", None), "run": ("run", None),
                 "jog": ("jog", None), "squat": ("lower", None), "kick": ("kick", "leg"), "wave": ("wave", "hand"),
                 "punch": ("punch", "hand"), "raise_arms": ("raise", "hand"), "turn": ("turn", "side"),
                 "side_step": ("sideways", "side"), "stand": ("stay", None)}


def clip_check(action: str | None, params: dict) -> tuple[str, str | None] | None:
    """The prompt check a corpus clip of one action should pass, with the parameter naming
    its side, or None: a walk in another direction has none, and a jump drawn forward is
    judged as a forward jump (judged as a jump in place, 57 of 178 corpus jumps failed)."""
    if action == "walk" and params.get("direction", "forward") != "forward":
        return None
    if action == "jump" and params.get("direction") == "forward":
        return "jump_forward", None
    return ACTION_CHECKS.get(action)


def tokenizer_checks(model, data: Path, mean: np.ndarray, std: np.ndarray) -> dict:
    """The prompt checks on held-out corpus clips (val and test) that show one action, as
    they are and passed through the tokenizer's codes and back: the most the language model
    could pass generating that action. A swing ratio hides a kick whose foot keeps its
    path but not its height; the check does not."""
    entries = single_actions(data)
    if not entries:  # a corpus without clips.jsonl (HumanML3D): no actions to check
        return {}
    step = model.frames_per_token
    counts = {}
    for split in ("val", "test"):
        for clip in load_clips(data, split, min_frames=2 * step):
            action, params = entries.get(clip.name, (None, {}))
            judged = clip_check(action, params)
            if judged is None:
                continue
            check, side_key = judged
            side = params.get(side_key) if side_key else None
            if side_key and side not in ("left", "right"):
                continue
            raw = clip.features[: len(clip.features) // step * step] * std + mean
            truth = joints_from_features(raw)
            decoded = joints_from_features(model.features_from_codes(model.codes_from_features(raw)))
            tally = counts.setdefault(check, [0, 0, 0])
            tally[0] += 1
            tally[1] += bool(CHECKS[check](truth, side)[0])
            tally[2] += bool(CHECKS[check](decoded, side)[0])
    return {check: {"clips": n, "as_they_are": kept / n, "through_tokenizer": coded / n}
            for check, (n, kept, coded) in sorted(counts.items())}


# What speed is measured on, here and in benchmarks/generate.py: one procedure for both.
SPEED_PROMPTS = ["a person walks forward", "someone jumps in place twice", "a man waves with the right hand",
                 "a woman squats three times"]


def seconds_per_motion(model, mode: str, repeats: int, frames: int = 196) -> float:
    """Seconds to generate `frames` frames from text with decoding `mode`: the best of
    `repeats` runs per prompt, averaged over SPEED_PROMPTS, after one warm-up (which
    builds the decoder). The model's own decoding is restored afterwards."""
    import time

    chosen = model.decoding
    try:
        model.decoding = mode
        model.generate(SPEED_PROMPTS[0], frames=frames, seed=0)
        best = []
        for prompt in SPEED_PROMPTS:
            runs = []
            for seed in range(repeats):
                start = time.perf_counter()
                motion = model.generate(prompt, frames=frames, seed=seed)[0]
                runs.append(time.perf_counter() - start)
                assert len(motion) == frames, len(motion)
            best.append(min(runs))
    finally:
        model.decoding = chosen
    return sum(best) / len(best)


def generation_seconds(model, frames: int = 196, repeats: int = 3) -> dict:
    """The model's decoding against Hugging Face `generate` timed in the same run
    (machines are noisy), and the threads torch used."""
    import torch

    seconds = seconds_per_motion(model, model.decoding, repeats, frames)
    # A model that decodes with `generate` itself is its own reference: timed once.
    reference = seconds if model.decoding == "hf" else seconds_per_motion(model, "hf", repeats, frames)
    return {"frames": frames, "seconds": seconds, "decoding": model.decoding, "hf_generate_seconds": reference,
            "threads": torch.get_num_threads()}


def evaluate(model, evaluator, data, out, clips: int = 256, multimodal_texts: int = 32, samples: int = 10,
             seed: int = 0, log=print, model_dir=None) -> dict:
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mean, std = read_statistics(data)
    usable = [c for c in load_clips(data, "test", min_frames=MIN_FRAMES) if c.captions and "#" not in c.name]
    # Synthesized clips up to `clips`, and every real motion-capture clip held out.
    test = [c for c in usable if not c.name.startswith(MOCAP_PREFIX)][:clips]
    test += [c for c in usable if c.name.startswith(MOCAP_PREFIX)]
    if len(test) < 32:
        raise ValueError(f"{data}: the test split has {len(test)} captioned clips of {MIN_FRAMES}+ frames; at least 32 are needed")
    raw = [c.features * std + mean for c in test]
    sampling = model.default_sampling  # what users get when they do not choose
    results = {"clips": len(test), "model": model.name, "text_encoder": model.describe()["text_encoder"],
               "sampling": {"top_k": sampling.top_k, "temperature": sampling.temperature},
               "motion_capture_clips": sum(c.name.startswith(MOCAP_PREFIX) for c in test)}

    log("eval: generation speed")
    results["speed"] = generation_seconds(model)
    if model_dir is not None:
        # The model directory's own files (the text encoder comes from its package).
        results["model_files_mb"] = size_on_disk(Path(model_dir)) / 1e6

    log(f"eval: text-to-motion on {len(test)} clips")
    captions = [c.captions[0] for c in test]
    generated = [_generate_features(model, caption, len(f), seed + i, sampling) for i, (caption, f) in enumerate(zip(captions, raw))]
    text_embeddings = evaluator.texts(captions)
    real_embeddings = evaluator.motions(raw)
    generated_embeddings = evaluator.motions(generated)
    top = metrics.r_precision(text_embeddings, generated_embeddings)
    real_top = metrics.r_precision(text_embeddings, real_embeddings)
    per_text = np.stack([evaluator.motions([_generate_features(model, captions[i], len(raw[i]), 1000 + s, sampling)
                                            for s in range(samples)]) for i in range(min(multimodal_texts, len(test)))])
    results["text_to_motion"] = {
        "r_precision": top.tolist(), "real_r_precision": real_top.tolist(),
        "fid": metrics.frechet_distance(real_embeddings, generated_embeddings),
        "matching": metrics.matching_distance(text_embeddings, generated_embeddings),
        "real_matching": metrics.matching_distance(text_embeddings, real_embeddings),
        "diversity": metrics.diversity(generated_embeddings), "real_diversity": metrics.diversity(real_embeddings),
        "multimodality": metrics.multimodality(per_text),
    }

    log("eval: captioning")
    joints = [joints_from_features(f) for f in raw]
    written = [model.caption(j) for j in joints]
    references = [c.captions for c in test]
    results["captioning"] = {**coco_scores(written, references),
                             "embedding_similarity": embedding_similarity(evaluator.sentences, written, references)}
    clip_actions = read_clip_actions(data)
    results["captioning"].update(caption_naming(data, clip_actions, test, written))
    results["captioning"]["examples_real"] = [{"reference": c.captions[0], "generated": w} for c, w in zip(test, written)
                                              if c.name.startswith(MOCAP_PREFIX)]
    results["captioning"]["examples"] = [{"reference": r[0], "generated": w} for r, w in zip(references[:8], written[:8])]
    # Every caption by clip, so a changed judge can be applied again without the model.
    results["captioning"]["written"] = {c.name: w for c, w in zip(test, written)}

    log("eval: motion tokenizer reconstruction")
    errors, kept, travel = [], [], []
    for f in raw:
        usable = (len(f) // model.frames_per_token) * model.frames_per_token
        decoded = model.features_from_codes(model.codes_from_features(f[:usable]))
        truth, guess = joints_from_features(f[:usable]), joints_from_features(decoded)
        errors.append(np.linalg.norm((truth - truth[:, :1]) - (guess - guess[:, :1]), axis=-1).mean())
        kept.append(metrics.swing_kept(truth, guess))
        travel.append(metrics.travel_error(truth, guess))
    results["reconstruction_mpjpe_mm"] = 1000 * float(np.mean(errors))
    # Captured motion apart: a tokenizer fitted to the synthesized corpus can rebuild it
    # several times worse, which the mean over mostly synthesized clips hides.
    real_errors = [e for c, e in zip(test, errors) if c.name.startswith(MOCAP_PREFIX)]
    results["reconstruction_mpjpe_mm_real"] = 1000 * float(np.mean(real_errors)) if real_errors else None
    results["tokenizer"] = tokenizer_per_action(clip_actions, test, kept, travel)
    results["tokenizer_checks"] = tokenizer_checks(model, data, mean, std)

    log("eval: prediction and in-between")
    ade, fde, boundary, filled_real, filled_generated = [], [], [], [], []
    for i, j in enumerate(joints):
        given = max(model.frames_per_token + 1, int(0.4 * len(j)))
        predicted = model.predict(j[:given], frames=len(j) - given, seed=seed + i, sampling=sampling)
        horizon = min(len(predicted), len(j))
        error = np.linalg.norm(predicted[given:horizon] - j[given:horizon], axis=-1).mean(-1)
        ade.append(error.mean())
        fde.append(error[-1])
        start, end = len(j) // 4, (3 * len(j)) // 4
        filled = model.inbetween(j, start, end, seed=seed + i, sampling=sampling)
        boundary.append(np.linalg.norm(filled[[start, end - 1]] - j[[start, end - 1]], axis=-1).mean())
        filled_real.append(features_from_joints(j[start - 1:end + 1]))
        filled_generated.append(features_from_joints(filled[start - 1:end + 1]))
    results["prediction"] = {"ade_m": float(np.mean(ade)), "fde_m": float(np.mean(fde))}
    results["inbetween"] = {"boundary_error_m": float(np.mean(boundary)),
                            "fid": metrics.frechet_distance(evaluator.motions(filled_real), evaluator.motions(filled_generated))}

    log("eval: prompts in people's own words")
    results["prompts"] = evaluate_prompts(model, log=log)

    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown_table(results))
    _plots(results, out)
    log(f"eval: wrote {out / 'results.md'}")
    return results


def markdown_table(r: dict) -> str:
    t, c = r["text_to_motion"], r["captioning"]
    rows = [
        ("Text-to-motion R-precision top-1 / 2 / 3", " / ".join(f"{v:.3f}" for v in t["r_precision"]),
         " / ".join(f"{v:.3f}" for v in t["real_r_precision"])),
        ("Text-to-motion FID", f"{t['fid']:.3f}", "0"),
        ("Matching distance", f"{t['matching']:.3f}", f"{t['real_matching']:.3f}"),
        ("Diversity", f"{t['diversity']:.3f}", f"{t['real_diversity']:.3f}"),
        ("Multimodality", f"{t['multimodality']:.3f}", ""),
        ("Caption BLEU-1 / BLEU-4", f"{c['bleu_1']:.3f} / {c['bleu_4']:.3f}", ""),
        ("Caption ROUGE-L / CIDEr", f"{c['rouge_l']:.3f} / {c['cider']:.3f}", ""),
        ("Caption embedding similarity (MiniLM cosine)", f"{c['embedding_similarity']:.3f}", ""),
    ]
    if c.get("names_action") is not None:
        rows.append(("Caption names an action the clip shows (synthesized clips)", f"{c['names_action']:.1%}", ""))
    if c.get("names_action_real") is not None:
        rows.append((f"Caption names an action the clip shows (real motion capture, {r['motion_capture_clips']} clips)",
                     f"{c['names_action_real']:.1%}", ""))
    if c.get("names_both_held_out_combination") is not None:
        rows.append((f"Caption names both actions of a held-out combination ({c['held_out_combination_pairs']} pairs)",
                     f"{c['names_both_held_out_combination']:.1%}", ""))
    if "prompts" in r:
        p = r["prompts"]
        seeds = p["samples"] // p["prompts"]
        rows.append((f"Prompts in people's own words pass their physical check ({p['prompts']} prompts x {seeds} seeds)",
                     f"{p['pass_rate']:.1%} (prompts passing most seeds: {p['prompt_pass_rate']:.1%})", ""))
        rows.append(("Named side and turn direction right", f"{p['side_accuracy']:.1%}", ""))
    rows += [
        ("VQ reconstruction MPJPE, all test clips (real motion capture alone)",
         f"{r['reconstruction_mpjpe_mm']:.1f} mm" + (f" ({r['reconstruction_mpjpe_mm_real']:.1f} mm)"
                                                     if r.get("reconstruction_mpjpe_mm_real") is not None else ""), ""),
    ]
    if "tokenizer" in r:
        k = r["tokenizer"]
        worst = ", ".join(f"{a} {v['swing_kept']:.2f}" for a, v in list(k["per_action"].items())[:3])
        if k["swing_kept"] is not None:
            rows.append(("VQ keeps of the widest foot/wrist swing (worst actions)",
                         f"{k['swing_kept']:.2f}" + (f" ({worst})" if worst else ""), "1"))
        rows.append(("VQ travel error (where the pelvis ends)", f"{k['travel_error_m']:.3f} m", "0"))
    if "speed" in r:
        v = r["speed"]
        rows.append((f"Generation of {v['frames']} frames from text ({v['threads']} threads; the same run's Hugging Face generate)",
                     f"{v['seconds']:.2f} s, {v['decoding']} decoding ({v['hf_generate_seconds']:.2f} s)", ""))
    if r.get("model_files_mb") is not None:
        rows.append(("Model files (the text encoder comes from its package)", f"{r['model_files_mb']:.1f} MB", ""))
    if r.get("tokenizer_checks"):
        # The checks the tokenizer costs most, worst first.
        lost = sorted(r["tokenizer_checks"].items(), key=lambda item: item[1]["through_tokenizer"] - item[1]["as_they_are"])
        rows.append(("Prompt checks on held-out corpus clips of one action, as they are -> through the VQ (worst)",
                     ", ".join(f"{check} {v['as_they_are']:.0%} -> {v['through_tokenizer']:.0%} ({v['clips']})"
                               for check, v in lost[:3]), ""))
    rows += [
        ("Prediction ADE / FDE", f"{r['prediction']['ade_m']:.3f} m / {r['prediction']['fde_m']:.3f} m", ""),
        ("In-between boundary error", f"{r['inbetween']['boundary_error_m'] * 1000:.1f} mm", ""),
        ("In-between FID (filled part)", f"{r['inbetween']['fid']:.3f}", "0"),
    ]
    lines = [f"Model `{r['model']}` on {r['clips']} held-out test clips (held-out caption phrasings).", ""]
    if r.get("text_encoder"):
        lines += [f"The model reads prompts with {r['text_encoder']}, and so does the retrieval evaluator behind "
                  "R-precision, FID, matching and the caption similarity: a shared encoder flatters those numbers.", ""]
    lines += ["| metric | model | real motion |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {real} |" for name, value, real in rows]
    return "\n".join(lines) + "\n"


def _plots(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    t = results["text_to_motion"]
    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4), dpi=100)
    ks = np.arange(1, 4)
    axes[0].bar(ks - 0.2, t["r_precision"], 0.4, label="generated")
    axes[0].bar(ks + 0.2, t["real_r_precision"], 0.4, label="real")
    axes[0].set_xticks(ks, [f"top-{k}" for k in ks])
    axes[0].set_ylim(0, 1)
    axes[0].set_title("text-to-motion R-precision")
    axes[0].legend()
    per_action = results["captioning"].get("names_action_per_action", {})
    if per_action:
        axes[1].barh(list(per_action), list(per_action.values()))
        axes[1].set_xlim(0, 1)
        axes[1].set_title("caption names the action")
    else:
        axes[1].axis("off")
    figure.tight_layout()
    figure.savefig(out / "results.png")
    pyplot.close(figure)
