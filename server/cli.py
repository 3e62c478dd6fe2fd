"""The `motiongpt` command line.

Each subcommand imports what it needs when it runs, so light commands such as
`convert` never load torch.
"""

import argparse
import sys
from pathlib import Path


def _convert(args) -> None:
    from retarget.formats import FORMATS, format_from_suffix, read_motion, write_motion

    source_format = args.source_format or format_from_suffix(args.input)
    target_format = args.target_format or format_from_suffix(args.output)
    for role, fmt, path in (("--from", source_format, args.input), ("--to", target_format, args.output)):
        if fmt is None:
            raise ValueError(f"cannot tell the format of {path} from its name: give {role} ({', '.join(FORMATS)})")
    if target_format == "smpl-mesh":
        if not args.smpl_model:
            raise ValueError("--to smpl-mesh needs --smpl-model PATH (your SMPL model file, .pkl or .npz)")
        betas = _parse_betas(args.betas)
        motion = read_motion(args.input, source_format)
        # Imported here: smplx needs torch, and no other conversion may load it.
        from server.smpl_mesh import write_smpl_mesh

        arrays = write_smpl_mesh(motion, args.output, args.smpl_model, betas, gender=args.gender)
        print(f"{args.output}: {motion.frames} frames of a {arrays['vertices'].shape[1]}-vertex SMPL body "
              f"at {motion.fps:g} fps ({source_format} -> smpl-mesh)")
        return
    if args.smpl_model or args.betas:
        raise ValueError("--smpl-model and --betas are for --to smpl-mesh")
    motion = read_motion(args.input, source_format)
    write_motion(motion, args.output, target_format)
    print(f"{args.output}: {motion.frames} frames at {motion.fps:g} fps ({source_format} -> {target_format})")


def _parse_betas(text):
    if not text:
        return None
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--betas must be numbers separated by commas, got {text!r}") from None


def _load_model(args):
    # Imported here: torch and transformers are heavy and `convert` must not need them.
    import os

    from server.model.catalog import resolve_model

    # A name that is not installed fails at once, before torch loads.
    model_directory = resolve_model(args.model)
    from server.device import pick_device
    from server.model.decoding import choose_mode
    import torch
    from transformers.utils import logging as transformers_logging

    from server.model.store import load_any

    # Keep the one-line contract: transformers' advice about tokenizer conversions is
    # not for our users.
    transformers_logging.set_verbosity_error()
    # Decoding is memory-bound: one thread per core this process may use.
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    model = load_any(model=model_directory, checkpoint=args.checkpoint, t5=args.t5, meta=args.meta)
    # The language model goes to the device; the motion tokenizer is small and stays on the CPU.
    model.lm.to(pick_device(args.device))
    requested = getattr(args, "decoding", None)
    model.decoding = choose_mode(requested, model.lm) if requested else model.decoding
    return model


def _sampling(args, model):
    """What the command line chose, the model's own defaults for the rest."""
    return model.default_sampling.with_choices(args.top_k, args.temperature, args.greedy)


def _read_input_motion(args):
    from retarget.formats import format_from_suffix, read_motion

    fmt = args.source_format or format_from_suffix(args.input)
    if fmt is None:
        raise ValueError(f"cannot tell the format of {args.input} from its name: give --from")
    return read_motion(args.input, fmt).resampled(20.0)


def _write_outputs(args, joint_sets) -> None:
    """Write each motion (joint positions at 20 fps) in the format the suffix names."""
    from pathlib import Path

    from retarget.formats import format_from_suffix, write_motion
    from retarget.motion import Motion

    out = Path(args.out)
    fmt = args.format or format_from_suffix(out) or ("joints" if out.suffix.lower() == ".npy" else None)
    if fmt is None:
        raise ValueError(f"cannot tell the output format of {out}: use .bvh, .npz, .json, .npy or --format")
    motions = [Motion.from_positions(joints, 20.0) for joints in joint_sets]
    paths = [out] if len(motions) == 1 else [out.with_name(f"{out.stem}-{k + 1}{out.suffix}") for k in range(len(motions))]
    for motion, path in zip(motions, paths):
        write_motion(motion, path, fmt)
        print(f"{path}: {motion.frames} frames at 20 fps")


def _info(args) -> None:
    import json

    print(json.dumps(_load_model(args).describe(), indent=2))


def _generate(args) -> None:
    model = _load_model(args)
    motions = model.generate(args.text, frames=args.frames, samples=args.samples, seed=args.seed, sampling=_sampling(args, model))
    _write_outputs(args, motions)


def _caption(args) -> None:
    model = _load_model(args)
    print(model.caption(_read_input_motion(args).positions))


def _predict(args) -> None:
    model = _load_model(args)
    motion = _read_input_motion(args)
    _write_outputs(args, [model.predict(motion.positions, args.frames, text=args.text, seed=args.seed, sampling=_sampling(args, model))])


def _inbetween(args) -> None:
    model = _load_model(args)
    motion = _read_input_motion(args)
    filled = model.inbetween(motion.positions, args.mask_start, args.mask_end, text=args.text, seed=args.seed,
                             sampling=_sampling(args, model))
    _write_outputs(args, [filled])


def _serve_token(args) -> str | None:
    """The token from --token-file, --token or $MOTIONGPT_TOKEN (in that order; a file or
    the environment keeps it out of the process list, which any local user can read)."""
    import os

    from server.app import TOKEN_ENVIRONMENT

    if args.token_file and args.token:
        raise ValueError("give --token or --token-file, not both")
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
        if not token:
            raise ValueError(f"the token file {args.token_file} is empty")
        return token
    if args.token:
        print("motiongpt serve: note: --token is visible to every user of this computer in the process list; "
              f"--token-file or ${TOKEN_ENVIRONMENT} is not", file=sys.stderr)
        return args.token
    return os.environ.get(TOKEN_ENVIRONMENT, "").strip() or None


def _serve(args) -> None:
    from server.app import serve
    from server.model.catalog import resolve_model

    resolve_model(args.model)  # a wrong name is one line now, not an error inside the server

    serve(lambda: _load_model(args), host=args.host, port=args.port, token=_serve_token(args),
          allow_hosts=args.allow_host, request_timeout=args.request_timeout, shutdown_timeout=args.shutdown_timeout,
          max_queued=args.max_queued)


DECODING_CHOICES = ("auto", "exact", "fast", "hf")
DECODING_HELP = ("auto (default): exact for small models such as the embedded one (generate's tokens, milliseconds "
                 "behind fast), fast for large ones such as the release; "
                 "exact: float32 weights, generate's tokens (sums in another order: float32 rounding apart), faster; "
                 "fast: int8 weights on a CPU (float16 on a GPU), several times generate at the release's size, slightly "
                 "different tokens; hf: generate itself, bit for bit")


def _add_model_options(parser) -> None:
    from server.device import DEVICE_CHOICES, DEVICE_HELP

    group = parser.add_argument_group("model")
    group.add_argument("--model", help="a model's name from `motiongpt models` (e.g. motiongpt-release) or a model "
                                       "directory (the project's format; default: the embedded model)")
    group.add_argument("--checkpoint", help="MotionGPT's released checkpoint (motiongpt_s3_h3d.tar)")
    group.add_argument("--t5", help="with --checkpoint: the flan-t5-base directory (config.json, tokenizer)")
    group.add_argument("--meta", help="with --checkpoint: folder with the release's mean.npy and std.npy (default: shipped copy)")
    group.add_argument("--threads", type=int, help="CPU threads (default: all this process may use)")
    group.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help=DEVICE_HELP)


def _add_sampling_options(parser) -> None:
    group = parser.add_argument_group("sampling")
    group.add_argument("--seed", type=int, default=0, help="same seed, same result (default 0)")
    group.add_argument("--top-k", type=int, help="sample among the k most likely tokens (default: the model's own, 50)")
    group.add_argument("--temperature", type=float,
                       help="sampling temperature (default: the model's own, 0.7 for the embedded model, 1.0 for the release)")
    group.add_argument("--greedy", action="store_true", help="always take the most likely token")
    group.add_argument("--decoding", choices=DECODING_CHOICES, default="auto", help=DECODING_HELP)


def _add_output_options(parser) -> None:
    from retarget.formats import FORMATS

    parser.add_argument("--out", required=True, help="output file: .bvh, .npz (SMPL), .json (wire), .npy (joints)")
    parser.add_argument("--format", choices=FORMATS, help="output format (default: from the suffix)")


def _add_model_commands(commands) -> None:
    from retarget.formats import FORMATS

    info = commands.add_parser("info", help="load a model and describe it")
    _add_model_options(info)
    info.set_defaults(run=_info)

    generate = commands.add_parser("generate", help="text -> motion")
    generate.add_argument("text")
    generate.add_argument("--frames", type=int, help="length in frames at 20 fps, rounded down to 4 (default: the model decides)")
    generate.add_argument("--samples", type=int, default=1, help="how many motions (files get -1, -2, ...)")
    _add_model_options(generate)
    _add_sampling_options(generate)
    _add_output_options(generate)
    generate.set_defaults(run=_generate)

    serve = commands.add_parser("serve", help="run the local model server (HTTP API for the Blender extension)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need --token)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every request (visible in the process "
                                       "list: prefer --token-file or $MOTIONGPT_TOKEN)")
    serve.add_argument("--token-file", help="read the token from this file (its first line)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests whose Host header names NAME (repeatable; by default only the "
                            "address listened on, and for loopback 127.0.0.1, localhost and [::1])")
    serve.add_argument("--request-timeout", type=float, default=20.0,
                       help="seconds a client has to send a whole request, headers and body (default 20)")
    serve.add_argument("--shutdown-timeout", type=float, default=5.0,
                       help="on SIGTERM, seconds open requests get after unfinished jobs are dropped (default 5)")
    serve.add_argument("--max-queued", type=int, default=16, help="jobs that may wait for the model (default 16)")
    serve.add_argument("--decoding", choices=DECODING_CHOICES, default="auto", help=DECODING_HELP)
    _add_model_options(serve)
    serve.set_defaults(run=_serve)

    def motion_command(name, help_text, run, generates=True):
        """A command that reads a motion file (and writes one when `generates`)."""
        command = commands.add_parser(name, help=help_text)
        command.add_argument("input", help="a motion file (any format `convert` reads)")
        command.add_argument("--from", dest="source_format", choices=FORMATS, help="input format (default: from the suffix)")
        _add_model_options(command)
        if generates:
            command.add_argument("--text", help="optional text to steer the result")
            _add_sampling_options(command)
            _add_output_options(command)
        command.set_defaults(run=run)
        return command

    motion_command("caption", "motion -> text", _caption, generates=False)
    predict = motion_command("predict", "motion -> the motion continued", _predict)
    predict.add_argument("--frames", type=int, required=True, help="frames to add at 20 fps")
    inbetween = motion_command("inbetween", "motion with a gap -> the gap filled", _inbetween)
    inbetween.add_argument("--mask-start", type=int, required=True, help="first frame to fill (20 fps)")
    inbetween.add_argument("--mask-end", type=int, required=True, help="frame after the last to fill")


def _train(args) -> None:
    # Rank 0 alone logs, one line per log interval, on stdout.
    if args.stage == "vq":
        from server.train.vq import train_vq as run
    elif args.stage == "lm":
        from server.train.lm import train_lm as run
    else:
        from server.eval.retrieval import train_retrieval as run
    from server.train.loop import request_device

    request_device(args.device)
    run(args.config, args.out, overrides=args.set, restart=args.restart, log=lambda line: print(line, flush=True))


def _pack(args) -> None:
    import torch

    from server.model.store import load_model_dir, save_model_dir

    from server.model.catalog import resolve_model, size_on_disk

    model = load_model_dir(resolve_model(args.model))
    model.name = args.name or model.name
    if args.vq:
        _swap_decoder(model, args.vq)
    # Half precision halves the file (the repository keeps it); loading converts back
    # to float32, so only storage is rounded.
    out = save_model_dir(model, args.out, dtype=torch.float16)
    size = size_on_disk(out)
    print(f"{out}: {model.name!r}, {size / 1e6:.1f} MB (weights in float16)")


def _swap_decoder(model, vq_dir) -> None:
    """Put a decoder-only tokenizer run's decoder into the model. Anything else that
    differs (encoder, codebook, normalization) would change the codes the language model
    learned, so it is refused."""
    import numpy as np
    import torch

    from server.train.vq import load_vq_dir

    vae, mean, std = load_vq_dir(vq_dir)
    if vae.config != model.vae.config:
        raise SystemExit(f"motiongpt pack: {vq_dir} is a tokenizer shaped {vae.config}, the model's is {model.vae.config}")
    new, old = vae.state_dict(), model.vae.state_dict()
    changed = sorted(k for k in old if not k.startswith("decoder.") and not torch.equal(new[k], old[k]))
    if changed or not (np.array_equal(mean, model.mean) and np.array_equal(std, model.std)):
        raise SystemExit(f"motiongpt pack: {vq_dir} changes the model's codes ({', '.join(changed[:3]) or 'normalization'}): "
                         "only a decoder-only run (`train.decoder_only`) keeps the language model's codes")
    model.vae.load_state_dict(new)


def _eval(args) -> None:
    from server.eval.report import evaluate
    from server.eval.retrieval import load_evaluator
    from server.model.catalog import resolve_model

    model = _load_model(args)
    evaluate(model, load_evaluator(args.evaluator), args.data, args.out, clips=args.clips, samples=args.samples,
             multimodal_texts=args.multimodal_texts, seed=args.seed, log=lambda line: print(line, flush=True),
             model_dir=resolve_model(args.model))
    print((Path(args.out) / "results.md").read_text())


def _data(args) -> None:
    import json
    import time

    from server.data.synth import write_corpus

    started = time.monotonic()
    out = write_corpus(args.out, args.clips, seed=args.seed, workers=args.workers, force=args.force,
                       mocap=not args.no_mocap, log=lambda line: print(line, flush=True))
    seconds = time.monotonic() - started
    total = json.loads((out / "corpus.json").read_text())["clips"]
    print(f"{out}: {total} clips ({args.clips} synthetic) in {seconds:.1f} s ({total / seconds:.0f} clips/s)")


def _add_data_commands(commands) -> None:
    data = commands.add_parser("data", help="make training data")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    synth = actions.add_parser("synth", help="synthesize a labelled motion corpus in HumanML3D's layout",
                               description="Synthesize captioned motions (locomotion, jumps, gestures, whole-body "
                                           "actions, idle) on the SMPL-22 skeleton at 20 fps, written as HumanML3D's "
                                           "layout with train/val/test splits; test captions use held-out phrasings.")
    synth.add_argument("--out", required=True, help="the corpus directory (must be new or empty, or give --force)")
    synth.add_argument("--clips", type=int, default=10000)
    synth.add_argument("--seed", type=int, default=0, help="the same seed writes the same files")
    synth.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    synth.add_argument("--force", action="store_true", help="replace a non-empty --out")
    synth.add_argument("--no-mocap", action="store_true", help="leave out the CMU motion-capture clips")
    synth.set_defaults(run=_data)


def _add_train_commands(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train the motion tokenizer (vq), the language model (lm) or the evaluator (retrieval)",
        description=(
            "Train one stage on a corpus in HumanML3D's layout. Runs resume from OUT/checkpoint.pt; "
            "losses go to OUT/losses.csv and OUT/losses.png. The same command runs under "
            "`torchrun --nproc_per_node N -m server.cli train ...` with DDP."
        ),
    )
    train.add_argument("stage", choices=("vq", "lm", "retrieval"),
                       help="vq: motion VQ-VAE (stage 1); lm: T5 over text and motion tokens (stage 2); "
                            "retrieval: the motion-text model `motiongpt eval` measures with")
    train.add_argument("--config", required=True, help="a TOML file (see server/train/configs/)")
    train.add_argument("--out", required=True, help="the run directory (vq writes OUT/vq, lm OUT/model, retrieval OUT/evaluator)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a configuration value, e.g. --set train.steps=100 --set data.dir=corpus")
    train.add_argument("--restart", action="store_true", help="discard OUT's checkpoint and log and start over")
    from server.device import DEVICE_CHOICES, DEVICE_HELP

    train.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                       help=DEVICE_HELP + "; under torchrun each process takes the GPU of its LOCAL_RANK")
    train.set_defaults(run=_train)

    pack = commands.add_parser("pack", help="store a trained model compactly (float16), e.g. as the embedded default",
                               description="Copy a model directory (OUT/model of `motiongpt train lm`) with its "
                                           "weights in float16. The embedded default model is made this way.")
    pack.add_argument("model", help="a model directory")
    pack.add_argument("--out", required=True, help="the new model directory")
    pack.add_argument("--name", help="the model's name as the server reports it (default: keep it)")
    pack.add_argument("--vq", help="a decoder-only `train vq` result (RUN/vq) whose decoder replaces the model's")
    pack.set_defaults(run=_pack)

    evaluation = commands.add_parser("eval", help="measure a model on a corpus's test split (writes results.md, .json, .png)")
    _add_model_options(evaluation)
    evaluation.add_argument("--data", required=True, help="the corpus (HumanML3D layout) whose test split is measured")
    evaluation.add_argument("--evaluator", required=True, help="the retrieval model (`motiongpt train retrieval` -> OUT/evaluator)")
    evaluation.add_argument("--out", required=True, help="where results.md, results.json and results.png go")
    evaluation.add_argument("--clips", type=int, default=256, help="test clips to measure (default 256)")
    evaluation.add_argument("--samples", type=int, default=10, help="motions per text for multimodality")
    evaluation.add_argument("--multimodal-texts", type=int, default=32, help="texts used for multimodality")
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument("--decoding", choices=DECODING_CHOICES, default="auto",
                            help=DECODING_HELP + " (measure fast mode's cost in quality against exact)")
    evaluation.set_defaults(run=_eval)


def _download(args) -> None:
    from server.model.download import download

    progress = (lambda fraction: print(f"progress {fraction:.4f}", flush=True)) if args.progress_lines else None
    try:
        download(args.name, accept_licence=args.accept_licence, keep_download=args.keep_download,
                 log=lambda line: print(line, flush=True), progress=progress)
    except KeyboardInterrupt:
        raise ValueError("interrupted; run the same command again to continue where it stopped") from None


def _models(args) -> None:
    import json

    from server.model.catalog import DOWNLOADABLE, installed_models, models_folder

    models = installed_models()
    missing = [d for name, d in DOWNLOADABLE.items() if name not in {m.name for m in models}]
    if args.json:
        print(json.dumps({"folder": str(models_folder()), "installed": [m.to_dict() for m in models],
                          "downloadable": [{"name": d.name, "description": d.description} for d in missing]}, indent=2))
        return
    width = max(len(m.name) for m in models + missing) if models or missing else 0
    for model in models:
        print(f"{model.name:<{width}}  {model.size / 1e6:8.1f} MB  {model.origin}  ({model.path})")
    for d in missing:
        print(f"{d.name:<{width}}  {'':>11}  not installed: motiongpt download {d.name} --accept-licence ({d.description})")


def _add_catalog_commands(commands) -> None:
    from server.model.catalog import DOWNLOADABLE, HOME_ENVIRONMENT

    licences = "\n\n".join(d.licence for d in DOWNLOADABLE.values())
    download = commands.add_parser(
        "download", help="download a released model and install it under its name (see `motiongpt models`)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=("Download a model from the Hugging Face hub, verify every file against the hub's checksums and "
                     "convert it into a model directory (safetensors) in the user data folder "
                     f"(${HOME_ENVIRONMENT}/models). An interrupted download continues when run again. "
                     "HF_ENDPOINT selects a mirror of the hub.\n\n" + licences))
    download.add_argument("name", choices=sorted(DOWNLOADABLE), help="the model to download")
    download.add_argument("--accept-licence", action="store_true", help="accept the licence shown (required)")
    download.add_argument("--keep-download", action="store_true",
                          help="keep the downloaded checkpoint after converting it (default: delete it)")
    download.add_argument("--progress-lines", action="store_true",
                          help="print 'progress FRACTION' lines on stdout while downloading (for the Blender extension)")
    download.set_defaults(run=_download)
    models = commands.add_parser("models", help="list the models --model NAME accepts (size on disk, origin) "
                                                "and the ones `download` installs")
    models.add_argument("--json", action="store_true", help="machine-readable (for the Blender extension)")
    models.set_defaults(run=_models)


def build_parser() -> argparse.ArgumentParser:
    from retarget.formats import FORMATS

    parser = argparse.ArgumentParser(prog="motiongpt", description="Text-to-motion tools for the MotionGPT Blender extension.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser(
        "convert",
        help="convert a motion between file formats",
        description=(
            "Convert a motion on the SMPL-22 skeleton between formats. hml3d: (T, 263) npy of "
            "HumanML3D features; joints: (T, 22, 3) npy, metres, Y up; smpl: npz with poses "
            "(T, 66 axis-angle), trans, betas, mocap_framerate (files without up_axis are read "
            "as AMASS's Z up); bvh: BVH with the SMPL-22 joint names. hml3d and joints are 20 fps. "
            "Features need two frames per feature frame: T joint frames give T-1 feature frames. "
            "smpl-mesh (output only): the motion on an SMPL body from your own model file, as npz with "
            "vertices (T, V, 3), faces, joints and the SMPL parameters."
        ),
    )
    convert.add_argument("--from", dest="source_format", choices=FORMATS, help="input format (default: from the suffix)")
    convert.add_argument("--to", dest="target_format", choices=FORMATS + ("smpl-mesh",),
                         help="output format (default: from the suffix); smpl-mesh: per-frame vertices of an SMPL "
                              "body (npz), needs --smpl-model")
    convert.add_argument("--smpl-model", help="with --to smpl-mesh: your SMPL model file (.pkl or .npz) or its folder")
    convert.add_argument("--betas", help="with --to smpl-mesh: body shape, comma-separated (default: the mean shape)")
    convert.add_argument("--gender", default="neutral", help="with --to smpl-mesh and a model folder: which model "
                                                             "file (default: neutral)")
    convert.add_argument("input")
    convert.add_argument("output")
    convert.set_defaults(run=_convert)
    _add_model_commands(commands)
    _add_catalog_commands(commands)
    _add_train_commands(commands)
    _add_data_commands(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError) as error:  # CheckpointError is a ValueError
        print(f"motiongpt {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
