"""The figures of a finished run: the loss curve (with its evaluations and the planned length),
beside it the validation metric the kept weights were chosen by, and whatever the data source
draws of the kept model."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, List, Mapping, Optional, Sequence, Tuple, cast

import torch

from ..errors import CheckpointError

if TYPE_CHECKING:
    from ..pipeline import Pipeline
    from ..stages import DataSource
    from .folder import Run


def plot_run(
    model: "Pipeline",
    data: "DataSource",
    device: torch.device,
    run: "Run",
    steps_planned: int,
    summary: Optional[Mapping[str, Any]] = None,
) -> None:
    """Writes plots/loss.png and the data source's figures of ``model`` (the kept weights);
    ``summary`` (summary.json) says which step they are from. An unwritable folder or a full
    disk is a CheckpointError (the checkpoint and summary are already written)."""
    try:
        os.makedirs(run.plots_dir, exist_ok=True)
        _plot_loss(run, steps_planned, summary)
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


def _plot_loss(run: "Run", steps_planned: int, summary: Optional[Mapping[str, Any]]) -> None:
    from ..plotting import pyplot

    fig = loss_figure(run.read_metrics(), steps_planned, summary)
    if fig is None:
        return
    fig.savefig(os.path.join(run.plots_dir, "loss.png"), dpi=100)
    pyplot().close(fig)


def loss_figure(
    records: Sequence[Mapping[str, Any]],
    steps_planned: int,
    summary: Optional[Mapping[str, Any]] = None,
) -> Any:
    """The loss curve with the test -ELBO of each evaluation and the planned length; beside it,
    when the run evaluated a valid split, that split's selection metric (``selected_by``, or
    the default of :func:`odepipe.run.keep.resolve_select`) with the test split's same metric.
    Both panels mark the kept step (``summary["kept_step"]``). None when nothing was logged."""
    from ..plotting import pyplot

    plt = pyplot()
    logged = [r for r in records if "loss" in r and r.get("loss") is not None]
    if not logged:
        return None
    metric = _validation_metric(records, summary)
    fig, axes = plt.subplots(1, 2 if metric else 1, figsize=(11 if metric else 6, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot([r["step"] for r in logged], [r["loss"] for r in logged], label="training loss")
    evals = _points(records, "test_elbo_at_mean")
    if evals:
        ax.plot(
            [step for step, _ in evals],
            [-value for _, value in evals],
            "o",
            label="test -ELBO at the posterior mean (evaluation)",
        )
    ax.axvline(
        steps_planned,
        color="grey",
        linestyle="--",
        linewidth=1,
        label=f"planned steps ({steps_planned})",
    )
    kept_step, kept_label = _kept(summary)
    if kept_step is not None:
        ax.axvline(kept_step, color="green", linewidth=1, label=kept_label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (-ELBO per item)")
    shown = [r["loss"] for r in logged] + [-value for _, value in evals]
    # log when every value is positive (series); symlog only when a loss goes negative
    ax.set_yscale("log" if min(shown) > 0 else "symlog")
    ax.set_title(f"training loss: {logged[-1]['step']} of {steps_planned} steps")
    ax.legend(loc="upper right", fontsize="small")
    if metric:
        _plot_metric(axes[0][1], records, metric, kept_step, kept_label)
    fig.tight_layout()
    return fig


def _plot_metric(
    ax: Any,
    records: Sequence[Mapping[str, Any]],
    metric: str,
    kept_step: Optional[int],
    kept_label: str,
) -> None:
    """The validation metric's curve (periodic evaluations) and the test split's same metric."""
    from .keep import PREFIX, direction

    valid = [(s, v) for s, v in _points(records, metric, final=False)]
    ax.plot([s for s, _ in valid], [v for _, v in valid], "o-", label=metric)
    test_metric = "test_" + metric[len(PREFIX) :]
    test = _points(records, test_metric, final=False)
    if test:
        ax.plot([s for s, _ in test], [v for _, v in test], "x--", label=test_metric)
    if kept_step is not None:
        ax.axvline(kept_step, color="green", linewidth=1, label=kept_label)
        at = [v for s, v in valid if s == kept_step]
        if at:
            ax.plot([kept_step], at[:1], "*", color="green", markersize=12)
    values = [v for _, v in valid + test]
    if values and min(values) > 0:
        ax.set_yscale("log")
    better = {"min": "lower is better", "max": "higher is better"}.get(direction(metric) or "")
    ax.set_xlabel("step")
    ax.set_ylabel(metric + (f" ({better})" if better else ""))
    ax.set_title(f"validation: {metric}")
    ax.legend(loc="best", fontsize="small")


def _points(
    records: Sequence[Mapping[str, Any]], key: str, final: bool = True
) -> List[Tuple[int, float]]:
    """(step, value) of ``key`` in the evaluations (and the final one, at the step whose
    weights it evaluated, with ``final``)."""
    kinds = ("eval", "final") if final else ("eval",)
    return [
        (int(r.get("kept_step", r["step"])), float(r[key]))
        for r in records
        if r.get("kind") in kinds and isinstance(r.get(key), (int, float))
    ]


def _validation_metric(
    records: Sequence[Mapping[str, Any]], summary: Optional[Mapping[str, Any]]
) -> Optional[str]:
    """The metric the right panel shows, or None when no evaluation scored the valid split."""
    from .keep import DEFAULT_LOSS, DEFAULT_SERIES

    reported = {k for r in records if r.get("kind") == "eval" for k in r}
    chosen = (summary or {}).get("selected_by")
    for metric in (chosen, DEFAULT_SERIES, DEFAULT_LOSS):
        if isinstance(metric, str) and metric in reported:
            return metric
    return None


def _kept(summary: Optional[Mapping[str, Any]]) -> Tuple[Optional[int], str]:
    """The kept step and its legend label, from summary.json's ``kept`` and ``kept_step``."""
    step = (summary or {}).get("kept_step")
    if not isinstance(step, int):
        return None, ""
    return step, f"kept weights: {(summary or {}).get('kept', 'last')} (step {step})"
