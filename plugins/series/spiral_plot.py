"""``plots/spirals.png``: a few test spirals as a user would show them.

Each column is one spiral. Top: the plane (x, y) with the truth, the observed points (for
irregular data only those observed) and the prediction, the end of the observed window marked.
Bottom: x and y over time, the observed window shaded, the prediction's mean over a few
posterior draws of z0 with a band of one predictive std. The column's title gives that spiral's
extrapolation MSE at the posterior mean, the per-item figure whose average is ``test_extrap_mse``.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional

import torch

import odepipe
from odepipe import Batch

from .predictive import PLOT_SAMPLES, posterior_predictive

#: spirals drawn (columns of the figure)
PANELS = 4
TRUTH, OBSERVED, WINDOW = "0.45", "k", "0.9"


def first_items(batch: Batch, n: int) -> Batch:
    """The first ``n`` items of a spiral batch (tensors of the items cut, shared ones kept)."""
    B = batch.size

    def cut(x: Any) -> Any:
        return x[:n] if isinstance(x, torch.Tensor) and x.dim() and x.shape[0] == B else x

    return Batch(
        times=batch.times,
        values=cut(batch.values),
        mask=cut(batch.mask),
        extras={k: v if k == "future_times" else cut(v) for k, v in batch.extras.items()},
    )


def observed_rows(batch: Batch, i: int) -> torch.Tensor:
    """``(T,)`` bool: the observed time points of item ``i`` (all of them without a mask)."""
    T = batch.times.shape[-1]
    if batch.mask is None:
        return torch.ones(T, dtype=torch.bool)
    return batch.mask[i].cpu().reshape(T, -1).all(-1) > 0


@torch.no_grad()
def draw_spirals(
    model: Any, batch: Batch, title: str = "test spirals", samples: int = PLOT_SAMPLES
) -> Any:
    """The figure (matplotlib ``Figure``) for up to :data:`PANELS` items of ``batch``."""
    plt = odepipe.pyplot()
    batch = first_items(batch, min(PANELS, batch.size))
    n, T = batch.size, batch.times.shape[0]
    times = torch.cat([batch.times, batch.extras["future_times"]])
    mean, std = posterior_predictive(model, batch, times, samples)  # (n, T + F, 2)
    at_mean = model.extrapolate(batch, times).cpu()  # the prediction test_extrap_mse scores
    future = batch.extras["future"].cpu()  # (n, F, 2)
    errors: List[Optional[float]] = [
        float(((at_mean[i, T:] - future[i]) ** 2).mean()) if future.shape[1] else None
        for i in range(n)
    ]
    t = times.cpu().numpy()
    fig, axes = plt.subplots(
        2, n, figsize=(4.2 * n, 8.2), squeeze=False, gridspec_kw={"height_ratios": [3, 2]}
    )
    for i in range(n):
        truth = torch.cat([batch.extras["clean"][i].cpu(), future[i]])  # (T + F, 2)
        seen = observed_rows(batch, i)
        obs = batch.values[i].cpu()[seen]  # (observed, 2)
        turn = "counter-clockwise" if int(batch.extras["direction"][i]) else "clockwise"
        error = "" if errors[i] is None else f"\nextrapolation MSE {errors[i]:.3g}"
        plane, series = axes[0][i], axes[1][i]
        plane.plot(truth[:, 0], truth[:, 1], color=TRUTH, lw=1.2, label="truth")
        plane.scatter(obs[:, 0], obs[:, 1], s=7, c=OBSERVED, label="observed points", zorder=3)
        plane.plot(mean[i, :T, 0], mean[i, :T, 1], color="C3", label="prediction, observed window")
        plane.plot(
            mean[i, T - 1 :, 0], mean[i, T - 1 :, 1], "C0--", label="prediction, extrapolated"
        )
        plane.plot(
            mean[i, T - 1, 0],
            mean[i, T - 1, 1],
            "o",
            mfc="none",
            mec="k",
            ms=9,
            label="end of the observed window",
        )
        plane.set(xlabel="x", ylabel="y", title=f"spiral {i + 1} ({turn}){error}")
        plane.set_aspect("equal", adjustable="datalim")
        series.axvspan(t[0], t[T - 1], color=WINDOW, label="observed window", zorder=0)
        series.axvline(t[T - 1], color="k", ls=":", lw=1)
        for d, (name, color) in enumerate((("x", "C0"), ("y", "C1"))):
            series.plot(t, truth[:, d], color=TRUTH, lw=1.2)
            series.fill_between(
                t,
                mean[i, :, d] - std[i, :, d],
                mean[i, :, d] + std[i, :, d],
                color=color,
                alpha=0.25,
                lw=0,
                label=f"{name}: ± 1 predictive std",
            )
            series.plot(t, mean[i, :, d], color=color, label=f"{name}: mean of {samples} draws")
            series.scatter(
                t[:T][seen.numpy()],
                obs[:, d],
                s=5,
                color=color,
                edgecolors="k",
                linewidths=0.3,
                label=f"{name}: observed points",
                zorder=3,
            )
        series.set(xlabel="time t", ylabel="x, y", title=f"spiral {i + 1} over time")
    handles, labels = [], []
    for ax in (axes[0][0], axes[1][0]):
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(
        handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8, frameon=False
    )
    fig.suptitle(
        f"{title}: truth, observations and the model's prediction\n(mean of {samples} "
        f"posterior draws of z0 ± 1 predictive std; errors at the posterior mean, "
        f"as test_extrap_mse)"
    )
    fig.tight_layout(rect=(0, 0.09, 1, 0.93))
    return fig


def plot_spirals(model: Any, batch: Batch, out_dir: str) -> str:
    """Writes ``out_dir/spirals.png``; returns its path."""
    plt = odepipe.pyplot()
    fig = draw_spirals(model, batch)
    path = os.path.join(out_dir, "spirals.png")
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
