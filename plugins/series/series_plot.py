"""Figures of long-format series in the file's units: one column per series, one row per
feature, time on x.

Each panel shows what the model was given (filled markers, the observed window shaded), what it
predicts (the mean of a few posterior draws with a band of one predictive std) and, where the
figure has it, the truth it is scored on (hollow markers) with that panel's error in its title.
Used for the csv source's ``plots/series.png``, ``odepipe extrapolate``'s plot and
``odepipe sample``'s ``samples.png``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Sequence

import numpy as np

import odepipe

from .series_io import Series, SeriesCodec

#: columns (series) and rows (features) of one figure; more are left out, and the title says so
MAX_SERIES, MAX_FEATURES = 6, 4
WINDOW = "0.9"


@dataclasses.dataclass
class Panel:
    """One series of a figure, in file units.

    Attributes:
        id: the series id (the column's title).
        times: ``(P,)`` the prediction's time grid; mean, std: ``(P, D)`` (std may be None).
        seen: the points the model was given (drawn as filled markers), or None.
        truth: points the prediction is scored on (hollow markers), or None.
        seen_until: the end of the observed window (shaded from ``times[0]``), or None.
        errors: ``(D,)`` each feature's error on ``truth`` (in each panel's title), or None.
    """

    id: str
    times: np.ndarray
    mean: np.ndarray
    std: Optional[np.ndarray] = None
    seen: Optional[Series] = None
    truth: Optional[Series] = None
    seen_until: Optional[float] = None
    errors: Optional[Sequence[float]] = None


def draw_series(
    codec: SeriesCodec, panels: Sequence[Panel], title: str, error_name: str = "error"
) -> Any:
    """The matplotlib ``Figure``: a grid of features x series with one shared legend."""
    plt = odepipe.pyplot()
    shown = list(panels)[:MAX_SERIES]
    features = codec.features[:MAX_FEATURES]
    cols, rows = max(1, len(shown)), len(features)
    height = 2.5 * rows + 1.4  # inches: the panels, a two-line title and the legend
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 0.6, height), squeeze=False)
    for j, panel in enumerate(shown):
        for d, name in enumerate(features):
            _draw_panel(axes[d][j], panel, d, name, codec.time_column, error_name)
    for j in range(len(shown), cols):  # no series at all: an empty, titled figure
        for d in range(rows):
            axes[d][j].set_axis_off()
    handles, labels = [], []
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    if handles:
        fig.legend(
            handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False
        )
    left_out = []
    if len(panels) > len(shown):
        left_out.append(f"the first {len(shown)} of {len(panels)} series")
    if len(codec.features) > len(features):
        left_out.append(f"the first {len(features)} of {len(codec.features)} features")
    fig.suptitle(title + (f" ({', '.join(left_out)})" if left_out else ""))
    fig.tight_layout(rect=(0, (0.45 if handles else 0.0) / height, 1, 1 - 0.6 / height))
    return fig


def _draw_panel(ax: Any, panel: Panel, d: int, name: str, time_name: str, error_name: str) -> None:
    """Feature ``d`` of one series: window, band, mean, observed and truth points."""
    if panel.seen_until is not None:
        ax.axvspan(
            panel.times[0], panel.seen_until, color=WINDOW, zorder=0, label="observed window"
        )
        ax.axvline(panel.seen_until, color="k", ls=":", lw=1)
    mean = panel.mean[:, d]
    if panel.std is not None:
        ax.fill_between(
            panel.times,
            mean - panel.std[:, d],
            mean + panel.std[:, d],
            color="C0",
            alpha=0.25,
            lw=0,
            label="± 1 predictive std",
        )
    ax.plot(panel.times, mean, color="C0", label="prediction (mean)")
    for points, style in (
        (panel.seen, dict(color="k", label="observed points")),
        (panel.truth, dict(facecolors="none", edgecolors="C3", label="held-out truth")),
    ):
        if points is not None:
            keep = ~np.isnan(points.values[:, d])
            ax.scatter(points.times[keep], points.values[keep, d], s=14, zorder=3, **style)
    heading = f"{panel.id}: {name}"
    if panel.errors is not None and not math.isnan(panel.errors[d]):
        heading += f"\n{error_name} {panel.errors[d]:.3g}"
    ax.set(title=heading, xlabel=time_name, ylabel=name)


def plot_series(
    path: str, codec: SeriesCodec, panels: Sequence[Panel], title: str, error_name: str = "error"
) -> str:
    """Writes the figure of :func:`draw_series` to ``path`` (a .png); returns the path."""
    plt = odepipe.pyplot()
    fig = draw_series(codec, panels, title, error_name)
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
