"""The figures of a finished run: the loss curve (with its evaluations and the planned length)
and whatever the data source draws of the final model."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, cast

import torch

from ..errors import CheckpointError

if TYPE_CHECKING:
    from ..pipeline import Pipeline
    from ..stages import DataSource
    from .folder import Run


def plot_run(
    model: "Pipeline", data: "DataSource", device: torch.device, run: "Run", steps_planned: int
) -> None:
    """Writes plots/loss.png and the data source's figures; an unwritable folder or a full
    disk is a CheckpointError (the checkpoint and summary are already written)."""
    try:
        os.makedirs(run.plots_dir, exist_ok=True)
        _plot_loss(run, steps_planned)
        items = list(cast(Iterable[Any], data.dataset("test")))[:8]
        model.eval()
        batch = data.collate(items).to(device)
        try:
            data.plot(model, batch, run.plots_dir)
        except OSError:
            raise
        except Exception as exc:  # a plugin's optional hook must not cost the finished run
            optional_hook_failed(data, "plot", exc, "its figures are missing from plots/")
    except OSError as exc:
        raise CheckpointError(
            f"cannot write the plots into {run.plots_dir}: "
            f"{exc.strerror or exc}; the checkpoint and summary.json are "
            f"kept. Free some disk space, or set train.plot=false"
        ) from exc


def optional_hook_failed(data: object, hook: str, exc: BaseException, lost: str) -> None:
    """One warning line for an optional DataSource hook (evaluate, plot) that raised at the
    end of a run: the run, its checkpoint and summary.json stand; only what the hook would
    have added is missing."""
    import warnings

    cls = type(data)
    warnings.warn(
        f"odepipe: {cls.__name__}.{hook} (module {cls.__module__}) raised "
        f"{type(exc).__name__}: {exc}; the run, its checkpoint and summary.json are kept, "
        f"{lost}",
        stacklevel=2,
    )


def _plot_loss(run: "Run", steps_planned: int) -> None:
    from ..plotting import pyplot

    plt = pyplot()

    records = run.read_metrics()
    logged = [r for r in records if "loss" in r and r.get("loss") is not None]
    if not logged:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["step"] for r in logged], [r["loss"] for r in logged], label="training loss")
    evals = [
        r
        for r in records
        if r.get("kind") in ("eval", "final")
        and isinstance(r.get("test_elbo_at_mean"), (int, float))
    ]
    if evals:
        ax.plot(
            [r["step"] for r in evals],
            [-r["test_elbo_at_mean"] for r in evals],
            "o",
            label="test -ELBO (evaluation)",
        )
    ax.axvline(
        steps_planned,
        color="grey",
        linestyle="--",
        linewidth=1,
        label=f"planned steps ({steps_planned})",
    )
    ax.set_xlabel("step")
    ax.set_ylabel("loss (-ELBO per item)")
    ax.set_yscale("symlog")
    ax.set_title(f"training loss: {logged[-1]['step']} of {steps_planned} steps")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(run.plots_dir, "loss.png"), dpi=100)
    plt.close(fig)
