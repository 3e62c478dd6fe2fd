"""What the training stages share (the motion tokenizer, the language model and the
evaluator's retrieval model): the training loop, processes, the learning-rate schedule,
the loss log, checkpoints and resuming.

Under `torchrun` every process runs the same script; torch.distributed (gloo on CPU,
nccl on GPUs) keeps their gradients in step through DistributedDataParallel. Rank 0
alone writes the log, the plot and the checkpoints.
"""

import csv
import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from ..device import DeviceError, distributed_backend, pick_device
from .config import ConfigError, load_config, same_run, save_config


def run_stage(train, defaults: dict, config_path, out, overrides, restart: bool, log):
    """Run a stage's `train(config, out, processes, restart, log)` with its configuration
    loaded and this process's place in the run set up (and torn down, whatever happens)."""
    processes = Processes()
    try:
        result = train(load_config(config_path, defaults, overrides), Path(out), processes, restart, log)
        # Rank 0 saves and validates after the last step; the others wait for it, since a
        # process group torn down while its peer is still at work aborts under gloo.
        processes.barrier()
        return result
    finally:
        processes.close()


_requested_device = "auto"


def request_device(requested: str) -> None:
    """The device training runs on (`motiongpt train --device`; see server/device.py)."""
    global _requested_device
    _requested_device = requested


class Processes:
    """This process's place in the run: rank, world size, device (the GPU of LOCAL_RANK
    under torchrun on CUDA), and the process group (NCCL on CUDA, gloo otherwise)."""

    def __init__(self, device: str | None = None):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.distributed = self.world > 1
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = pick_device(device or _requested_device, local_rank=local)
        if self.distributed and self.device.type == "mps":
            raise DeviceError("training in several processes on Apple MPS: torch.distributed has no MPS backend; "
                              "run one process, or --device cpu")
        if self.distributed and not dist.is_initialized():
            dist.init_process_group(distributed_backend(self.device))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def set_threads(self, threads: int) -> None:
        cores = len(os.sched_getaffinity(0))
        torch.set_num_threads(threads or max(1, cores // self.world))

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if not self.distributed:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.broadcast(tensor, src=0)
        return tensor

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def learning_rate(step: int, train: dict) -> float:
    """Linear warm-up, then constant or cosine decay to min_lr_ratio x lr at the end."""
    base = train["lr"]
    if step < train["warmup"]:
        return base * (step + 1) / train["warmup"]
    if train["schedule"] == "constant":
        return base
    if train["schedule"] != "cosine":
        raise ConfigError(f"train.schedule must be 'cosine' or 'constant', got {train['schedule']!r}")
    span = max(1, train["steps"] - train["warmup"])
    progress = min(1.0, (step - train["warmup"]) / span)
    low = base * train["min_lr_ratio"]
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * progress))


class RunDirectory:
    """A run's folder: config.json, checkpoint.pt (the latest), losses.csv, losses.png."""

    def __init__(self, path, config: dict, processes: Processes, restart: bool = False):
        self.path = Path(path)
        self.processes = processes
        self.checkpoint = self.path / "checkpoint.pt"
        self.log_path = self.path / "losses.csv"
        saved = self.path / "config.json"
        if restart and processes.main:
            for stale in (self.checkpoint, self.log_path, self.path / "losses.png"):
                stale.unlink(missing_ok=True)
        processes.barrier()
        if self.checkpoint.exists():
            import json

            differ = same_run(json.loads(saved.read_text()), config) if saved.exists() else ["config.json missing"]
            if differ:
                raise ConfigError(f"{self.path} holds a run with another configuration ({', '.join(differ)}); "
                                  "give another --out, or --restart to start it over")
        if processes.main:
            self.path.mkdir(parents=True, exist_ok=True)
            save_config(config, saved)
        processes.barrier()
        self.started = time.monotonic()
        self.earlier_seconds = 0.0

    def resume(self, state_targets: dict) -> int:
        """Load the latest checkpoint into `state_targets` ({name: object with
        load_state_dict}); returns the step to continue from (0 for a new run)."""
        if not self.checkpoint.exists():
            return 0
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        for name, target in state_targets.items():
            target.load_state_dict(state[name])
        step = int(state["step"])
        if self.processes.main:
            # Rows logged after the checkpoint by an interrupted run are logged again.
            kept = [r for r in self._rows() if int(r["step"]) <= step]
            if kept:
                self._write_rows(kept)
                self.earlier_seconds = float(kept[-1]["seconds"])  # the log counts training time across restarts
            else:
                self.log_path.unlink(missing_ok=True)
        return step

    def save(self, step: int, state_sources: dict) -> None:
        if not self.processes.main:
            return
        state = {name: source.state_dict() for name, source in state_sources.items()}
        state["step"] = step
        partial = self.checkpoint.with_suffix(".partial")
        torch.save(state, partial)
        os.replace(partial, self.checkpoint)  # a crash mid-save keeps the previous checkpoint

    def log(self, step: int, values: dict) -> None:
        """Add `values` to losses.csv's row for `step` (a new row, or the last one when it
        is the same step, as validation joins the final losses)."""
        if not self.processes.main:
            return
        rows = self._rows()
        row = {"step": str(step), **{k: f"{v:.6g}" for k, v in values.items()},
               "seconds": f"{self.earlier_seconds + time.monotonic() - self.started:.1f}"}
        if rows and int(rows[-1]["step"]) == step:
            rows[-1].update(row)
        else:
            rows.append(row)
        self._write_rows(rows)

    def _rows(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        with self.log_path.open() as handle:
            return [r for r in csv.DictReader(handle)]

    def _write_rows(self, rows: list[dict]) -> None:
        fields = list(dict.fromkeys(k for r in rows for k in r))  # some columns (validation) come and go
        fields.remove("seconds")
        fields.append("seconds")
        partial = self.log_path.with_suffix(".partial")
        with partial.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(partial, self.log_path)

    def plot(self, title: str) -> Path | None:
        if not self.processes.main or not self.log_path.exists():
            return None
        return plot_losses(self.log_path, self.path / "losses.png", title)


def plot_losses(csv_path, png_path, title: str) -> Path:
    """Every loss column of a losses.csv against the step, log scale, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in rows[0] if c not in ("step", "seconds", "lr")]
    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=100)
    for column in columns:
        points = [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]
        axes.plot(*zip(*points), label=column, marker="o" if len(points) < 30 else None)
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(png_path)
    pyplot.close(figure)
    return Path(png_path)


class ScheduledOptimizer:
    """AdamW whose learning rate follows `learning_rate` by step, with gradient clipping;
    its state_dict is what a checkpoint needs to resume exactly."""

    def __init__(self, parameters, train: dict):
        self.parameters = [p for p in parameters if p.requires_grad]
        self.train = train
        self.optimizer = torch.optim.AdamW(self.parameters, lr=train["lr"], weight_decay=train["weight_decay"])

    def step(self, step: int, loss: torch.Tensor) -> float:
        rate = learning_rate(step, self.train)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.train["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.train["grad_clip"])
        self.optimizer.step()
        return rate

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state)


class BatchSchedule:
    """Which dataset indices this process trains on at each step: per epoch, a seeded
    shuffle split across processes by DistributedSampler (drop_last, so every rank takes
    the same number of steps), cut into batches. A step number alone fixes the batch, so
    a resumed run picks up mid-epoch; one epoch's batches are kept, not redrawn per step."""

    def __init__(self, count: int, batch: int, seed: int, processes: Processes):
        self.count, self.batch, self.seed, self.processes = count, batch, seed, processes
        self._epoch, self._batches = None, []
        self.per_epoch = len(self._for_epoch(0))

    def _for_epoch(self, epoch: int) -> list[list[int]]:
        from torch.utils.data import DistributedSampler

        if epoch != self._epoch:
            sampler = DistributedSampler(range(self.count), num_replicas=self.processes.world, rank=self.processes.rank,
                                         shuffle=True, seed=self.seed, drop_last=True)
            sampler.set_epoch(epoch)
            indices = list(sampler)
            usable = (len(indices) // self.batch) * self.batch
            if usable == 0:
                raise ConfigError(f"train.batch {self.batch} is larger than this process's share of the data "
                                  f"({len(indices)} items)")
            self._epoch, self._batches = epoch, [indices[i:i + self.batch] for i in range(0, usable, self.batch)]
        return self._batches

    def at(self, step: int) -> tuple[int, list[int]]:
        """(epoch, indices) of the batch trained at `step`."""
        epoch = step // self.per_epoch
        return epoch, self._for_epoch(epoch)[step % self.per_epoch]


def seed_step(seed: int, rank: int, step: int) -> None:
    """Random draws (code resets, dropout) depend only on (seed, rank, step), so a run
    resumed from a checkpoint continues exactly as if it had never stopped."""
    torch.manual_seed((seed * 1_000_003 + step) * 4099 + rank)


def mean_over_processes(totals: dict, seen: int, processes: Processes) -> dict:
    values = torch.tensor([totals[k] / max(seen, 1) for k in totals], dtype=torch.float64)
    processes.all_reduce_sum(values)
    return {k: float(v) / processes.world for k, v in zip(totals, values)}


def write_digest(module: torch.nn.Module, out: Path, processes: Processes) -> None:
    """Each process records a digest of its final weights: under DDP all must agree."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    (out / "digests").mkdir(parents=True, exist_ok=True)
    (out / "digests" / f"rank{processes.rank}.sha256").write_text(digest.hexdigest() + "\n")


@dataclass
class StepResult:
    """What one training step computed: the loss to minimise, the parts to average over
    the log interval, and what to do once the weights have moved (returning values
    logged as they are, such as the VQ codebook's usage)."""

    loss: torch.Tensor
    parts: dict = field(default_factory=dict)
    after: Callable[[], dict] | None = None


def train_steps(stage: str, run: "RunDirectory", state: dict, processes: Processes, train: dict,
                schedule: BatchSchedule, step: int, compute: Callable[[int, list[int]], StepResult], log,
                at_checkpoint: Callable[[], dict] = dict) -> int:
    """The loop every stage runs, from `step` to train["steps"] (or train["stop_at"]): `compute(epoch, indices)`
    gives a batch's loss, state["optimizer"] steps, the averaged losses are logged every
    log_every steps and a checkpoint (with `at_checkpoint()`'s values, e.g. a validation
    loss) is saved every checkpoint_every steps and at the end. Random draws are seeded
    per step (seed_step), so a resumed run continues exactly. Returns the last step."""
    optimizer = state["optimizer"]
    stop = train["stop_at"]
    if not isinstance(stop, int) or isinstance(stop, bool) or stop < 0:
        raise ConfigError(f"train.stop_at must be a step (0: at train.steps), got {stop!r}")
    end = min(stop or train["steps"], train["steps"])
    totals, seen = {}, 0
    while step < end:
        epoch, indices = schedule.at(step)
        seed_step(train["seed"], processes.rank, step)
        result = compute(epoch, indices)
        rate = optimizer.step(step, result.loss)
        as_is = result.after() if result.after is not None else {}
        step += 1
        for name, value in {"loss": result.loss.detach(), **result.parts}.items():
            totals[name] = totals.get(name, 0.0) + float(value)
        seen += 1
        values = {}
        if step % train["log_every"] == 0 or step == end:
            values = {**mean_over_processes(totals, seen, processes), **as_is}
            totals, seen = {}, 0
        if step % train["checkpoint_every"] == 0 or step == end:
            values.update(at_checkpoint())
            run.save(step, state)
        if values:
            run.log(step, {**values, "lr": rate})
            if processes.main:
                log(f"{stage} step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    return step
