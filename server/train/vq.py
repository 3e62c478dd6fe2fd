"""Stage 1: the motion VQ-VAE, trained on windows of normalized features.

Loss, as MotionGPT (after T2M-GPT) trains its motion tokenizer: smooth-L1 reconstruction
of the features, extra weight on the root-relative joint positions (features 4:67), and
a commitment term pulling encoder outputs to their codes. Three additions, because a
tokenizer trained on this corpus lost whole motions (a jump to the side came back as a
jump in place, a kick's foot kept a third of its height): extra weight on the root's four
features (its turn rate, ground velocity and height); a share of windows placed around
each clip's fastest foot or wrist movement, so brief movements like a kick are whole in
more windows; and a loss on the feet's and wrists' positions and velocities
(limb_weight), since a foot's swing is one of 263 features and a smoothed kick costs the
whole-pose loss almost nothing. With decoder_only the encoder and codebook stay as
model.init has them, so every motion keeps its codes and a language model trained on
them stays valid (`motiongpt pack --vq` then puts the decoder into that model).

The codebook itself is not trained by gradients: it follows an exponential moving
average of the encoder outputs assigned to each code, and a code nobody uses is reset to
a random recent encoder output (dead-code reset), so all codes stay in play.

    motiongpt train vq --config server/train/configs/vq-small.toml --out runs/vq
"""

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from retarget.humanml3d import POSITION_FEATURES as POSITIONS
from retarget.humanml3d import ROOT_FEATURES as ROOT
from retarget.humanml3d import joints_from_features, root_relative_positions
from retarget.skeleton import LIMB_ENDS
from server.model.vqvae import VQVAE, VQVAEConfig

from .augment import mirrored_clip, retimed_clip
from .config import TRAIN_DEFAULTS, ConfigError
from .corpus import MOCAP_PREFIX, Clip, clip_actions, load_clips, read_statistics, repeated_indices
from .loop import (BatchSchedule, Processes, RunDirectory, ScheduledOptimizer, StepResult, run_stage, train_steps,
                   write_digest)

FORMAT = "motiongpt-vq/1"
LIMB_COLUMNS = [joint - 1 for joint in LIMB_ENDS]  # root_relative_positions leaves the root out

DEFAULTS = {
    "data": {"dir": "", "limit": 0},
    # model.init: a model directory (or RUN/vq) whose tokenizer this run continues from.
    "model": {**{f.name: f.default for f in fields(VQVAEConfig)}, "init": ""},
    "train": {**TRAIN_DEFAULTS, "window": 64, "commitment": 0.02, "position_weight": 0.5, "root_weight": 0.0,
              "peak_share": 0.0, "limb_weight": 0.0, "decoder_only": False, "ema_decay": 0.99,
              "dead_share": 0.125, "validation_clips": 64,
              # Action -> how many times a clip showing it gives a window per epoch (as for the
              # language model): a brief, rare movement such as a punch's strike gets codes of its own.
              "action_repeats": {},
              # Real motion capture is 3% of the corpus and unlike the synthesized motion in
              # style: 2.7's tokenizer, trained on the corpus as it is, rebuilt held-out
              # captured walks at 78-108 mm (root-relative joints), synthesized clips at 17 mm. Each real clip can also
              # be played at these speeds and mirrored (left and right swapped), as for the
              # language model.
              "real_speeds": [], "real_mirrored": False},
}


class EMACodebook:
    """The codebook's moving averages. Every process adds the same all-reduced statistics
    and draws reset vectors broadcast from rank 0, so the codebook stays identical on all
    processes without being a gradient-trained parameter."""

    def __init__(self, codebook: torch.Tensor, decay: float, dead_share: float, processes: Processes):
        self.codebook = codebook  # the model's buffer, updated in place
        self.decay = decay
        self.dead_share = dead_share
        self.processes = processes
        size, dim = codebook.shape
        self.count = torch.zeros(size, device=codebook.device)
        self.sum = torch.zeros(size, dim, device=codebook.device)
        self.ready = torch.zeros((), dtype=torch.bool)

    def _random_rows(self, vectors: torch.Tensor, count: int) -> torch.Tensor:
        rows = vectors[torch.randint(len(vectors), (count,), device=vectors.device)].contiguous()
        return self.processes.broadcast(rows)

    @torch.no_grad()
    def update(self, vectors: torch.Tensor, codes: torch.Tensor) -> dict:
        size = len(self.codebook)
        if not self.ready:
            # Start from encoder outputs, so no code begins far from the data.
            self.codebook.copy_(self._random_rows(vectors, size))
            self.sum.copy_(self.codebook)
            self.count.fill_(1.0)
            self.ready.fill_(True)
            return {"perplexity": 0.0, "dead_codes": 0.0}
        counts = torch.bincount(codes, minlength=size).float()
        sums = torch.zeros_like(self.sum).index_add_(0, codes, vectors)
        self.processes.all_reduce_sum(counts)
        self.processes.all_reduce_sum(sums)
        self.count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # A code is dead when it gets under a share of an even split of the vectors;
        # with MotionGPT's batch (4096 vectors, 512 codes) a share of 1/8 is its 1.0.
        used = self.count >= self.dead_share * counts.sum() / size
        replacement = self._random_rows(vectors, size)
        self.codebook.copy_(torch.where(used[:, None], self.sum / self.count.clamp(min=1e-6)[:, None], replacement))
        share = counts / counts.sum()
        perplexity = torch.exp(-(share * torch.log(share + 1e-10)).sum())
        return {"perplexity": float(perplexity), "dead_codes": float((~used).sum())}

    def start_from_codebook(self) -> None:
        """Continue from a trained codebook: each code a running mean of weight one, so
        the first batches move it toward the new data without discarding it."""
        self.sum.copy_(self.codebook)
        self.count.fill_(1.0)
        self.ready.fill_(True)

    def state_dict(self):
        return {"count": self.count, "sum": self.sum, "ready": self.ready}

    def load_state_dict(self, state):
        self.count.copy_(state["count"])
        self.sum.copy_(state["sum"])
        self.ready.copy_(state["ready"])


class Autoencoding(nn.Module):
    """The VQ-VAE's training pass: encode, snap to codes (straight-through), decode."""

    def __init__(self, vae: VQVAE):
        super().__init__()
        self.vae = vae

    def forward(self, features):
        encoded = self.vae.encoder(features.transpose(1, 2)).transpose(1, 2)  # (B, N, D)
        flat = encoded.reshape(-1, encoded.shape[-1])
        codes = self.vae.quantizer.quantize(flat.detach())
        quantized = self.vae.quantizer.dequantize(codes).view_as(encoded)
        # Straight-through: the decoder sees the codes, the encoder gets its gradient.
        passed = encoded + (quantized - encoded).detach()
        reconstruction = self.vae.decoder(passed.transpose(1, 2)).transpose(1, 2)
        return reconstruction, encoded, quantized, codes


def losses(features, reconstruction, encoded, quantized) -> dict:
    limbs, true_limbs = (root_relative_positions(f)[..., LIMB_COLUMNS, :] for f in (reconstruction, features))
    return {
        "reconstruction": F.smooth_l1_loss(reconstruction, features),
        "positions": F.smooth_l1_loss(reconstruction[..., POSITIONS], features[..., POSITIONS]),
        "root": F.smooth_l1_loss(reconstruction[..., ROOT], features[..., ROOT]),
        # Feet and wrists, where they are and how fast they move: a smoothed kick loses
        # little of the whole pose's loss but most of its own swing.
        "limbs": F.smooth_l1_loss(limbs, true_limbs) + F.smooth_l1_loss(limbs.diff(dim=1), true_limbs.diff(dim=1)),
        "commitment": F.mse_loss(encoded, quantized.detach()),
    }


def fastest_frames(clips: list[Clip], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Each clip's frame where a foot or wrist moves fastest relative to the pelvis."""
    peaks = []
    for clip in clips:
        limbs = root_relative_positions(clip.features * std + mean)[:, LIMB_COLUMNS]
        speed = np.linalg.norm(np.diff(limbs, axis=0), axis=-1).max(axis=1)
        peaks.append(int(np.argmax(speed)) + 1)
    return np.array(peaks)


def windows(clips: list[Clip], indices: list[int], window: int, seed: int, epoch: int,
            peaks: np.ndarray | None = None, peak_share: float = 0.0) -> torch.Tensor:
    """One random window of each clip, reproducible from (seed, epoch, clip); a share of
    them (peak_share) placed so the clip's fastest frame lies in the window's middle half."""
    batch = []
    for index in indices:
        features = clips[index].features
        rng = np.random.default_rng([seed, epoch, index])
        last = len(features) - window
        if peaks is not None and rng.random() < peak_share:
            low, high = peaks[index] - 3 * window // 4, peaks[index] - window // 4
            start = int(np.clip(rng.integers(low, high + 1), 0, last))
        else:
            start = int(rng.integers(0, last + 1))
        batch.append(features[start:start + window])
    return torch.from_numpy(np.stack(batch))


def save_vq_dir(vae: VQVAE, mean: np.ndarray, std: np.ndarray, directory) -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(directory / "vae.safetensors"))
    (directory / "config.json").write_text(json.dumps({"format": FORMAT, "vae": vae.config.to_dict()}, indent=2))
    np.save(directory / "mean.npy", mean)
    np.save(directory / "std.npy", std)
    return directory


def load_vq_dir(directory) -> tuple[VQVAE, np.ndarray, np.ndarray]:
    from safetensors.torch import load_file

    from server.model.checkpoint import load_strict, read_stage_config

    directory = Path(directory)
    config = read_stage_config(directory, FORMAT, "a trained motion tokenizer", "motiongpt train vq")
    vae = VQVAE(VQVAEConfig(**config["vae"]))
    load_strict(vae, load_file(str(directory / "vae.safetensors")), "the VQ-VAE")
    return vae.eval(), np.load(directory / "mean.npy"), np.load(directory / "std.npy")


def _initial_tokenizer(init, vae_config: VQVAEConfig) -> tuple[VQVAE, np.ndarray, np.ndarray]:
    """The tokenizer of a model directory or of a `train vq` result, checked against the
    configured shape."""
    from server.model.store import load_model_dir

    init = Path(init)
    if (init / "vae.safetensors").is_file():
        vae, mean, std = load_vq_dir(init)
    else:
        model = load_model_dir(init)
        vae, mean, std = model.vae, model.mean, model.std
    if vae.config != vae_config:
        raise ValueError(f"model.init {init} has a tokenizer shaped {vae.config}, but the configuration asks for {vae_config}")
    return vae.train(), mean, std


@torch.no_grad()
def reconstruction_error_mm(vae: VQVAE, clips: list[Clip], mean, std) -> float:
    """MPJPE (mm) of clips passed through codes and back: joint positions relative to the
    pelvis, as MotionGPT reports its tokenizer's reconstruction."""
    errors = []
    step = vae.config.frames_per_token
    for clip in clips:
        usable = (len(clip.features) // step) * step
        features = torch.from_numpy(clip.features[:usable])[None]
        decoded = vae.decode(vae.encode(features))[0].numpy()
        truth = joints_from_features(clip.features[:usable] * std + mean)
        guess = joints_from_features(decoded * std + mean)
        truth, guess = truth - truth[:, :1], guess - guess[:, :1]
        errors.append(np.linalg.norm(truth - guess, axis=-1).mean())
    return 1000.0 * float(np.mean(errors))


def _with_real_variants(clips: list[Clip], order: list[int], train: dict, mean, std) -> tuple[list[Clip], list[int]]:
    """The clips and epoch order with each real capture clip's variants added once each
    (train.real_speeds, train.real_mirrored): variants that keep a whole window."""
    speeds = train["real_speeds"]
    if not isinstance(speeds, list) or not all(isinstance(v, (int, float)) and v > 0 for v in speeds):
        raise ConfigError(f"train.real_speeds must be a list of positive numbers, got {speeds!r}")
    real = [c for c in clips if c.name.startswith(MOCAP_PREFIX)]
    variants = [retimed_clip(c, speed, mean, std) for speed in speeds for c in real]
    if train["real_mirrored"]:
        variants += [mirrored_clip(c, mean, std) for c in real + variants]
    variants = [c for c in variants if len(c.features) >= train["window"]]
    return clips + variants, order + list(range(len(clips), len(clips) + len(variants)))


def train_vq(config_path, out, overrides=(), restart: bool = False, log=print) -> Path:
    return run_stage(_train, DEFAULTS, config_path, out, overrides, restart, log)


def _train(config: dict, out: Path, processes: Processes, restart: bool, log) -> Path:
    data, train = config["data"], config["train"]
    processes.set_threads(train["threads"])
    init = config["model"]["init"]
    vae_config = VQVAEConfig(**{k: v for k, v in config["model"].items() if k != "init"})
    if train["window"] % vae_config.frames_per_token:
        raise ValueError(f"train.window must be a multiple of {vae_config.frames_per_token}")
    run = RunDirectory(out, config, processes, restart)

    torch.manual_seed(train["seed"])  # identical initial weights on every process
    if init:
        # Continuing keeps the earlier tokenizer's normalization, so its codes keep
        # their meaning for the language model trained on them while they adapt.
        vae, mean, std = _initial_tokenizer(init, vae_config)
        vae = vae.to(processes.device)
    else:
        mean, std = read_statistics(data["dir"])
        vae = VQVAE(vae_config).to(processes.device)
    if train["decoder_only"]:
        if not init:
            raise ValueError("train.decoder_only needs model.init: the tokenizer whose encoder and codes it keeps")
        # The encoder and codebook stay as they are, so every motion keeps its codes and a
        # language model trained on them needs no retraining: only decoding improves.
        for parameter in vae.encoder.parameters():
            parameter.requires_grad_(False)
    clips = load_clips(data["dir"], "train", min_frames=train["window"], limit=data["limit"] or None, statistics=(mean, std))
    order = repeated_indices(clips, clip_actions(data["dir"]), train["action_repeats"])
    clips, order = _with_real_variants(clips, order, train, mean, std)
    # Each distinct clip's fastest frame once; a repeated clip shares its original's.
    peaks = fastest_frames(clips, mean, std)[order] if train["peak_share"] else None
    clips = [clips[i] for i in order]
    model = processes.wrap(Autoencoding(vae))
    optimizer = ScheduledOptimizer(vae.parameters(), train)
    codebook = EMACodebook(vae.quantizer.codebook, train["ema_decay"], train["dead_share"], processes)
    if init:
        codebook.start_from_codebook()
    state = {"model": vae, "optimizer": optimizer, "codebook": codebook}
    step = run.resume(state)
    schedule = BatchSchedule(len(clips), train["batch"], train["seed"], processes)
    if processes.main:
        log(f"vq: {len(clips)} training clips, {schedule.per_epoch} steps per epoch on each of {processes.world} process(es); "
            f"{'resuming at step ' + str(step) if step else 'starting'}; {train['steps']} steps")

    def compute(epoch, indices):
        features = windows(clips, indices, train["window"], train["seed"], epoch, peaks, train["peak_share"])
        features = features.to(processes.device)
        model.train()
        reconstruction, encoded, quantized, codes = model(features)
        parts = losses(features, reconstruction, encoded, quantized)
        loss = (parts["reconstruction"] + train["position_weight"] * parts["positions"] + train["root_weight"] * parts["root"]
                + train["limb_weight"] * parts["limbs"])
        if train["decoder_only"]:
            return StepResult(loss, {k: v.detach() for k, v in parts.items()})
        loss = loss + train["commitment"] * parts["commitment"]
        # The codebook follows the encoder by moving averages once the weights have moved.
        return StepResult(loss, {k: v.detach() for k, v in parts.items()},
                          after=lambda: codebook.update(encoded.detach().reshape(-1, encoded.shape[-1]), codes))

    step = train_steps("vq", run, state, processes, train, schedule, step, compute, log)
    result = out / "vq"
    if processes.main:
        save_vq_dir(vae, mean, std, result)
        vae.eval()
        validation = load_clips(data["dir"], "val", min_frames=vae_config.frames_per_token * 2,
                                statistics=(mean, std))[:train["validation_clips"]]
        error = reconstruction_error_mm(vae, validation, mean, std)
        run.log(step, {"validation_mpjpe_mm": error})
        run.plot("motion VQ-VAE")
        log(f"vq: done at step {step}; validation reconstruction MPJPE {error:.1f} mm; tokenizer in {result}")
    write_digest(vae, out, processes)
    return result
