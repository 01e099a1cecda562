"""The training loop. Reads top to bottom: set up, resume, train, evaluate, save.

Every batch and every z0 draw is a pure function of (seed, step), and every schedule a function
of the step, so a resumed run computes exactly what the uninterrupted one would have
(bit-for-bit on CPU), and N processes under torchrun see the same global batch as one process.
"""
from __future__ import annotations

import math
import os
import random
import signal
import time
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from ..errors import CheckpointError, NumericalError, RecipeError
from ..pipeline import Pipeline
from ..recipe import Recipe
from ..stages import DataSource
from . import distributed, rundir
from .build import build
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import evaluate
from .schedules import kl_weight, lr_factor


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError("train.device=cuda but no CUDA device is available; use "
                              "train.device=auto or train.device=cpu")
    return torch.device(name)


class BatchPlan:
    """Which items step ``s`` trains on: epoch-wise permutations seeded by (seed, epoch)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.bs, self.seed = n, min(batch_size, n), seed
        self.per_epoch = max(1, n // self.bs)
        self._epoch, self._perm = -1, None

    def indices(self, step: int) -> List[int]:
        epoch, j = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[j * self.bs:(j + 1) * self.bs].tolist()


def step_noise(seed: int, step: int, rows: int, latent_dim: int) -> torch.Tensor:
    """The standard-normal draw for z0 at ``step``: ``(rows, latent_dim)`` for the global batch."""
    g = torch.Generator().manual_seed(seed * 7_919 + step * 104_729 + 1)
    return torch.randn(rows, latent_dim, generator=g)


class Objective(nn.Module):
    """The pipeline's ELBO as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, model: Pipeline):
        super().__init__()
        self.model = model

    def forward(self, batch: Any, beta: float, free_bits: float, noise: torch.Tensor) -> Any:
        return self.model.elbo(batch, beta=beta, free_bits=free_bits, noise=noise)


def _rng_state() -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _check_finite(step: int, what: str, value: torch.Tensor, run_dir: str) -> None:
    if not torch.isfinite(value).all():
        raise NumericalError(
            f"the {what} became NaN or Inf at step {step}; the last good checkpoint is kept in "
            f"{run_dir}. Try a smaller train.lr, train.grad_clip=1.0, or tighter solver "
            f"tolerances, then --resume {run_dir}")


def train(recipe: Recipe, run_dir: str, resume: bool = False, progress: bool = True,
          on_event: Optional[Callable[[int], None]] = None) -> Dict[str, Any]:
    """Trains ``recipe`` into ``run_dir`` (prepared by the caller) and returns the summary.

    Under torchrun every rank calls this with the same arguments; rank 0 alone writes files.
    """
    cfg = recipe.train
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = distributed.local_device(pick_device(cfg.device))
    distributed.setup(device)
    world, rank, main = distributed.world(), distributed.rank(), distributed.is_main()
    if cfg.batch_size % world:
        raise RecipeError([f"train.batch_size={cfg.batch_size} must be divisible by the number "
                           f"of processes ({world})"], recipe.source)
    torch.manual_seed(recipe.seed)
    random.seed(recipe.seed)
    data, model = build(recipe)
    model.to(device)
    objective: nn.Module = Objective(model)
    if world > 1:
        objective = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                 foreach=True)  # one kernel per step, not one per tensor
    train_items = list(data.dataset("train"))
    plan = BatchPlan(len(train_items), cfg.batch_size, recipe.seed)

    step, elapsed, first_step = 0, 0.0, 0
    ckpt_path = os.path.join(run_dir, rundir.CHECKPOINT)
    if resume:
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        first_step = step
        if main:
            rundir.truncate_metrics(run_dir, step)
    elif main:
        os.makedirs(run_dir, exist_ok=True)
        rundir.write_text(os.path.join(run_dir, rundir.RECIPE), recipe.to_yaml())

    def checkpoint() -> None:
        if not main:
            return
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                _check_finite(step, f"parameter {name}", tensor, run_dir)
        save_checkpoint(ckpt_path, {
            "step": step, "elapsed": elapsed + time.perf_counter() - started,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "rng": _rng_state(), "recipe": recipe.to_yaml()})

    def out_of_time() -> bool:
        if not cfg.max_seconds:
            return False
        over = elapsed + time.perf_counter() - started > cfg.max_seconds
        return bool(distributed.broadcast_object(over))  # every rank stops at the same step

    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc=recipe.name, disable=not (progress and main),
               dynamic_ncols=True, mininterval=0.5)
    started = time.perf_counter()
    nfe_f = nfe_b = 0
    previous_handler = signal.getsignal(signal.SIGTERM)
    if main:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM acts like Ctrl-C
    model.train()
    try:
        while step < cfg.steps and not out_of_time():
            indices = plan.indices(step)
            batch = data.collate([train_items[i] for i in indices[rank::world]]).to(device)
            noise = step_noise(recipe.seed, step, len(indices), model.latent_dim)[rank::world]
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, cfg)
            beta = kl_weight(step, cfg)
            model.solver.reset_nfe()
            try:
                parts = objective(batch, beta, cfg.free_bits, noise.to(device))
            except ValueError as exc:  # torch.distributions refusing NaN parameters
                if "invalid values" not in str(exc):
                    raise
                _check_finite(step + 1, "model output", torch.tensor(float("nan")), run_dir)
            _check_finite(step + 1, "loss", parts.loss, run_dir)
            optimizer.zero_grad(set_to_none=True)
            parts.loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf)
            _check_finite(step + 1, "gradient norm", norm, run_dir)
            optimizer.step()
            step += 1
            nfe_f, nfe_b = nfe_f + model.solver.nfe_forward, nfe_b + model.solver.nfe_backward
            bar.update(1)
            if cfg.log_every and (step % cfg.log_every == 0 or step == cfg.steps):
                values = distributed.sum_dict({
                    "loss": parts.loss.item(), "log_lik": parts.log_lik.item(),
                    "kl": parts.kl.item(), "elbo": parts.elbo.item()})
                record = {"step": step, **{k: v / world for k, v in values.items()},
                          "beta": beta, "lr": optimizer.param_groups[0]["lr"],
                          "grad_norm": float(norm), "nfe_forward": model.solver.nfe_forward,
                          "nfe_backward": model.solver.nfe_backward,
                          "seconds": round(elapsed + time.perf_counter() - started, 3)}
                if main:
                    rundir.append_metrics(run_dir, record)
                bar.set_postfix(loss=f"{record['loss']:.4g}", nfe=record["nfe_forward"])
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                metrics = evaluate(model, data, device, cfg.eval_batch_size, cfg.eval_items)
                if main:
                    rundir.append_metrics(run_dir, {"step": step, "kind": "eval", **metrics})
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint()
            if on_event is not None:
                on_event(step)
    except KeyboardInterrupt:
        checkpoint()
        bar.close()
        raise KeyboardInterrupt(f"interrupted at step {step}; checkpoint saved, continue with "
                                f"--resume {run_dir}") from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous_handler)
    bar.close()
    checkpoint()
    seconds = elapsed + time.perf_counter() - started
    trained = max(1, step - first_step)

    metrics: Dict[str, Any] = {}
    for split in [s for s in data.splits if s != "train"]:
        metrics.update(evaluate(model, data, device, cfg.eval_batch_size, split=split))
    summary = {"recipe": recipe.name, "steps": step, "seconds": round(seconds, 2),
               "device": str(device), "processes": world,
               "parameters": sum(p.numel() for p in model.parameters()),
               "nfe_forward_per_step": nfe_f / trained, "nfe_backward_per_step": nfe_b / trained,
               **metrics}
    if data.state():  # fitted preprocessing, e.g. csv normalization
        summary["data"] = data.state()
    if main:
        rundir.append_metrics(run_dir, {"step": step, "kind": "final", **metrics})
        rundir.write_summary(run_dir, summary)
        if cfg.plot:
            _plot(model, data, device, run_dir)
    distributed.barrier()
    return summary


def _plot(model: Pipeline, data: DataSource, device: torch.device, run_dir: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = os.path.join(run_dir, "plots")
    os.makedirs(plots, exist_ok=True)
    records = [r for r in rundir.read_metrics(run_dir) if "loss" in r]
    if records:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([r["step"] for r in records], [r["loss"] for r in records])
        ax.set_xlabel("step")
        ax.set_ylabel("loss (-ELBO per item)")
        ax.set_yscale("symlog")
        fig.tight_layout()
        fig.savefig(os.path.join(plots, "loss.png"), dpi=100)
        plt.close(fig)
    items = list(data.dataset("test"))[:8]
    model.eval()
    data.plot(model, data.collate(items).to(device), plots)
