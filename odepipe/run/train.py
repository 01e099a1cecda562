"""The training loop, as named steps: set up, resume (or start), one step, log, evaluate,
checkpoint, finish.

Every batch and every z0 draw is a pure function of (seed, step), and every schedule a function
of the step, so a resumed run computes exactly what the uninterrupted one would have
(bit-for-bit on CPU), and N processes under torchrun see the same global batch as one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import signal
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple, Union, cast

import torch
from torch import nn

from ..errors import CheckpointError, RecipeError
from ..pipeline import Pipeline
from ..recipe import Recipe
from . import distributed
from .batches import plan_for
from .bounds import evaluate_bounds
from .build import build
from .evaluate import evaluate
from .faults import NonFinite
from .folder import Run
from .keep import Selection, require_valid_split, resolve_select
from .memory import keep_memory_on
from .optimizer import adam
from .plots import plot_run
from .resume import check_resumable
from .schedules import kl_weight, lr_factor

#: summary.json ``stopped_because``: every planned step done, or ``train.max_seconds`` reached
STEPS_PLANNED, MAX_SECONDS = "steps_planned", "max_seconds"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(
            "train.device=cuda but no CUDA device is available; use "
            "train.device=auto or train.device=cpu"
        )
    return torch.device(name)


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


@dataclasses.dataclass
class StepResult:
    """What one optimisation step leaves for logging."""

    parts: Any
    beta: float
    grad_norm: torch.Tensor


class Training:
    """One run of training: the live objects and counters the named steps share.

    Under torchrun every rank builds one; rank 0 (``main``) alone writes files."""

    def __init__(self, recipe: Recipe, run: Run, progress: bool = True):
        self.recipe, self.cfg, self.run = recipe, recipe.train, run
        self.progress = progress
        self.step = self.first_step = 0
        self.elapsed = 0.0  # seconds trained before this process (a resumed run's past)
        self.started = time.perf_counter()
        self.nfe_forward = self.nfe_backward = 0
        self.resumed_state: Optional[Dict[str, Any]] = None
        #: with train.keep=best, the best validation evaluation so far and its weights
        self.selection: Optional[Selection] = None

    # -- set up ----------------------------------------------------------------------------------
    def set_up(self, resume: bool) -> None:
        """Device, threads, process group, seeds, the checked recipe of a resumed run, then the
        data, model, optimizer and batch plan (in that order: the seeds fix the weights)."""
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = distributed.local_device(pick_device(cfg.device))
        keep_memory_on(self.device, cfg.keep_memory)
        distributed.setup(self.device)
        self.world, self.rank, self.main = (
            distributed.world(),
            distributed.rank(),
            distributed.is_main(),
        )
        if cfg.batch_size % self.world:
            raise RecipeError(
                [
                    f"train.batch_size={cfg.batch_size} must be divisible by the "
                    f"number of processes ({self.world})"
                ],
                self.recipe.source,
            )
        if resume:
            self.resumed_state = self._read_resumable()
        torch.manual_seed(self.recipe.seed)
        random.seed(self.recipe.seed)
        self.data, self.model = build(self.recipe)
        self.model.to(self.device)
        self.objective: nn.Module = Objective(self.model)
        if self.world > 1:
            self.objective = nn.parallel.DistributedDataParallel(
                self.objective,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
            )
        self.optimizer = adam(self.model.parameters(), cfg.lr, cfg.weight_decay)
        self.train_items = list(cast(Iterable[Any], self.data.dataset("train")))
        self.plan = plan_for(self.data, self.train_items, cfg.batch_size, self.recipe.seed)
        self.faults = NonFinite(self.recipe, self.run)
        require_valid_split(cfg.keep, self.data.splits, self.recipe.source)
        self.has_valid = "valid" in self.data.splits
        if cfg.keep == "best":
            self.selection = Selection(self._selected_metric())

    def _selected_metric(self) -> str:
        """The metric ``train.select`` names (or the default), checked against what the valid
        split reports, before any training: two valid items are evaluated for their metric
        names, and the RNG states put back so that training is the same as without it."""
        rng = _rng_state()
        try:
            probe = evaluate(
                self.model, self.data, self.device, self.cfg.eval_batch_size, 2, split="valid"
            )
        finally:
            _set_rng_state(rng)
        return resolve_select(self.cfg.select, probe, self.recipe.source)

    def _read_resumable(self) -> Dict[str, Any]:
        """The checkpoint to resume, once its recipe is known to fit the one given."""
        state = self.run.load_checkpoint()
        if not isinstance(state.get("model"), dict) or "optimizer" not in state:
            raise CheckpointError(
                f"{self.run.checkpoint_path} holds no model and optimizer "
                f"state; it cannot be resumed. Start a new run"
            )
        if isinstance(state.get("recipe"), str):
            check_resumable(
                state["recipe"], self.recipe.to_yaml(), self.run.path, self.recipe.source
            )
        name = state.get("name") or self.run.name(self.recipe.name)
        self.recipe = dataclasses.replace(self.recipe, name=str(name))
        return state

    # -- resume or start -------------------------------------------------------------------------
    def resume(self) -> None:
        """Weights, optimizer, RNG states and counters from the checkpoint; the metrics log cut
        back to its step; recipe.yaml records the settings the run continues with."""
        state = self.resumed_state
        assert state is not None
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(
                f"the checkpoint in {self.run.path} does not fit its recipe: "
                f"{str(exc).splitlines()[0]}"
            ) from None
        _set_rng_state(state["rng"])
        self.step = self.first_step = int(state["step"])
        self.faults.checkpoint_step = self.step
        self.elapsed = float(state["elapsed"])
        if self.selection is not None:
            self.selection = self.selection.resumed(state.get("best"), self.step)
        if self.main:
            self.run.remove_temporary()
            self.run.truncate_metrics(self.step)
            self.run.write_recipe(self.recipe)
            if self.selection is not None and self.selection.weights is not None:
                self._write_best()  # best.pt as of the checkpoint, not a later kill's

    def start(self) -> None:
        """A fresh run: the resolved recipe, and what inference needs of the data in data/."""
        if not self.main:
            return
        os.makedirs(self.run.path, exist_ok=True)
        self.run.write_recipe(self.recipe)
        try:
            os.makedirs(self.run.data_dir, exist_ok=True)
            self.data.save(self.run.data_dir)
        except OSError as exc:
            raise CheckpointError(
                f"cannot write {self.run.data_dir}: {exc.strerror or exc}; "
                f"free some disk space or choose another --out"
            ) from exc

    # -- the loop --------------------------------------------------------------------------------
    def seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self.started

    def out_of_time(self) -> bool:
        if not self.cfg.max_seconds:
            return False
        over = self.seconds() > self.cfg.max_seconds
        return bool(distributed.broadcast_object(over))  # every rank stops at the same step

    def one_step(self) -> StepResult:
        cfg, step = self.cfg, self.step
        indices = self.plan.indices(step)
        batch = self.data.collate([self.train_items[i] for i in indices[self.rank :: self.world]])
        batch = batch.to(self.device)
        noise = step_noise(self.recipe.seed, step, len(indices), self.model.latent_dim)[
            self.rank :: self.world
        ]
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg)
        beta = kl_weight(step, cfg)
        self.model.solver.reset_nfe()
        try:
            parts = self.objective(batch, beta, cfg.free_bits, noise.to(self.device))
        except ValueError as exc:  # torch.distributions refusing NaN parameters
            if "invalid values" not in str(exc):
                raise
            raise self.faults.error(step + 1, "the model output") from None
        self.faults.check(step + 1, "the loss", parts.loss)
        self.optimizer.zero_grad(set_to_none=True)
        parts.loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip or math.inf)
        self.faults.check(step + 1, "the gradient norm", norm)
        self.optimizer.step()
        self.step += 1
        self.nfe_forward += self.model.solver.nfe_forward
        self.nfe_backward += self.model.solver.nfe_backward
        return StepResult(parts, beta, norm)

    def log(self, result: StepResult, bar: Any) -> None:
        parts = result.parts
        values = distributed.sum_dict(
            {
                "loss": parts.loss.item(),
                "log_lik": parts.log_lik.item(),
                "kl": parts.kl.item(),
                "elbo": parts.elbo.item(),
            }
        )
        record = {
            "step": self.step,
            **{k: v / self.world for k, v in values.items()},
            "beta": result.beta,
            "lr": self.optimizer.param_groups[0]["lr"],
            "grad_norm": float(result.grad_norm),
            "nfe_forward": self.model.solver.nfe_forward,
            "nfe_backward": self.model.solver.nfe_backward,
            "seconds": round(self.seconds(), 3),
        }
        if self.main:
            self.run.append_metrics(record)
        bar.set_postfix(loss=f"{record['loss']:.4g}", nfe=record["nfe_forward"])

    def evaluate_now(self) -> None:
        """The periodic evaluation: test and, when the source has it, valid (``eval_items``
        of each); the valid figures are offered to the best-checkpoint choice."""
        cfg = self.cfg
        metrics = evaluate(self.model, self.data, self.device, cfg.eval_batch_size, cfg.eval_items)
        valid = self._evaluate_valid() if self.has_valid else {}
        if self.main:
            self.run.append_metrics({"step": self.step, "kind": "eval", **metrics, **valid})
        self._offer(valid)

    def _evaluate_valid(self) -> Dict[str, float]:
        cfg = self.cfg
        return evaluate(
            self.model, self.data, self.device, cfg.eval_batch_size, cfg.eval_items, "valid"
        )

    def _offer(self, valid: Dict[str, float]) -> None:
        """A new best (train.keep=best) is written to best.pt at once."""
        if self.selection is not None and self.selection.offer(self.step, valid, self.model):
            if self.main:
                self._write_best()

    def _write_best(self) -> None:
        assert self.selection is not None
        self.run.save_best(self.selection.best_file(self.recipe.to_yaml(), self.recipe.name))

    def select_last(self) -> None:
        """With train.keep=best the run's last step is a candidate too: scored on valid like
        the periodic evaluations, unless one already ran at it."""
        if self.selection is None or self.selection.evaluated_step == self.step:
            return
        valid = self._evaluate_valid()
        if self.main:
            self.run.append_metrics({"step": self.step, "kind": "eval", **valid})
        self._offer(valid)

    def checkpoint(self) -> None:
        """Rank 0 writes the checkpoint, never with non-finite weights."""
        if not self.main:
            return
        for name, tensor in self.model.state_dict().items():
            if tensor.is_floating_point():
                self.faults.check(self.step, f"parameter {name}", tensor)
        state = {
            "step": self.step,
            "elapsed": self.seconds(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": _rng_state(),
            "recipe": self.recipe.to_yaml(),
            "name": self.recipe.name,
        }
        if self.selection is not None:  # the choice (and its weights) resumes with the run
            state["best"] = self.selection.state()
        self.run.save_checkpoint(state)
        self.faults.checkpoint_step = self.step

    def loop(self, on_event: Optional[Callable[[int], None]] = None) -> None:
        """Steps until ``train.steps`` or ``train.max_seconds``, then the last step's turn in
        the best-checkpoint choice; Ctrl-C or SIGTERM saves a checkpoint at the current step."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            desc=self.recipe.name,
            disable=not (self.progress and self.main),
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self.started = time.perf_counter()
        self.model.train()
        try:
            with _sigterm_as_interrupt(self.main):
                while self.step < cfg.steps and not self.out_of_time():
                    result = self.one_step()
                    bar.update(1)
                    if cfg.log_every and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                        self.log(result, bar)
                    if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                        self.evaluate_now()
                    if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                        self.checkpoint()
                    if on_event is not None:
                        on_event(self.step)
        except KeyboardInterrupt:
            self.checkpoint()
            bar.close()
            raise KeyboardInterrupt(
                f"interrupted at step {self.step}; checkpoint saved, "
                f"continue with --resume {self.run.path}"
            ) from None
        bar.close()
        self.select_last()
        self.checkpoint()

    # -- finish ----------------------------------------------------------------------------------
    def kept(self) -> Dict[str, Any]:
        """Puts the kept weights into the model (train.keep=best: the selected step's) and
        says which they are, for summary.json."""
        if self.selection is None:
            return {"kept": "last", "kept_step": self.step, "selected_by": None}
        if self.selection.weights is not None:
            self.model.load_state_dict(self.selection.weights)
        return self.selection.summary(self.step)

    def finish(self) -> Dict[str, Any]:
        """Final evaluation of the kept weights on every split but train, summary.json, plots;
        returns the summary."""
        cfg, seconds = self.cfg, self.seconds()
        trained = max(1, self.step - self.first_step)
        kept = self.kept()
        metrics: Dict[str, Any] = {}
        for split in [s for s in self.data.splits if s != "train"]:
            metrics.update(
                evaluate(self.model, self.data, self.device, cfg.eval_batch_size, split=split)
            )
            if self.model.variational or self.model.latent_free:  # z0 sampled, or no z at all
                metrics.update(
                    evaluate_bounds(
                        self.model,
                        self.data,
                        self.device,
                        cfg.eval_batch_size,
                        split=split,
                        samples=cfg.eval_samples,
                        seed=self.recipe.seed,
                    )
                )
        summary: Dict[str, Any] = {
            "recipe": self.recipe.name,
            "steps": self.step,
            "steps_planned": cfg.steps,
            "stopped_because": STEPS_PLANNED if self.step >= cfg.steps else MAX_SECONDS,
            **kept,
            "seconds": round(seconds, 2),
            "device": str(self.device),
            "processes": self.world,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "nfe_forward_per_step": self.nfe_forward / trained,
            "nfe_backward_per_step": self.nfe_backward / trained,
            **metrics,
        }
        if self.data.state():  # fitted preprocessing, e.g. csv normalization
            summary["data"] = self.data.state()
        if self.main:
            self.run.append_metrics(
                {"step": self.step, "kind": "final", "kept_step": kept["kept_step"], **metrics}
            )
            summary = self.run.write_summary(summary)
            if cfg.plot:
                plot_run(self.model, self.data, self.device, self.run, cfg.steps, summary)
        distributed.barrier()
        return summary


@contextlib.contextmanager
def _sigterm_as_interrupt(main: bool) -> Iterator[None]:
    """SIGTERM acts like Ctrl-C (a checkpoint, then exit 130) while training, on rank 0."""
    if not main:
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train(
    recipe: Recipe,
    run_dir: Union[str, Run],
    resume: bool = False,
    progress: bool = True,
    on_event: Optional[Callable[[int], None]] = None,
) -> Dict[str, Any]:
    """Trains ``recipe`` into ``run_dir`` (a :class:`Run`, or the path of a folder the caller
    made) and returns the summary. With ``resume``, continues the folder's checkpoint; only
    ``train.*`` settings of ``recipe`` may differ from the run's.

    Under torchrun every rank calls this with the same arguments; rank 0 alone writes files and
    holds the folder's lock (a second process training into it is refused)."""
    run = run_dir if isinstance(run_dir, Run) else Run(str(run_dir))
    with _locked(run, resume):
        training = Training(recipe, run, progress)
        training.set_up(resume)
        if resume:
            training.resume()
        else:
            training.start()
        training.loop(on_event)
        return training.finish()


@contextlib.contextmanager
def _locked(run: Run, resume: bool) -> Iterator[None]:
    """Rank 0 (by torchrun's RANK: the process group may not be joined yet) holds the lock."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    if not resume:
        os.makedirs(run.path, exist_ok=True)
    with run.lock():
        yield


__all__: Tuple[str, ...] = ("train", "pick_device", "Training", "step_noise")
