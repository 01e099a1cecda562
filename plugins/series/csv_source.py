"""Your own series from a long-format CSV: one row per observation, columns ``series`` (id),
``time`` and one per feature. Series may have different lengths and uneven times; a feature
cell may be empty (or NA) where it was not measured.

What the model sees: each series' time since its own first row, divided by ``time_scale``
(by default the one that makes the median training series span 5 time units), and each feature
normalized by the mean and std of the training split's observed values. Those statistics are
recomputed deterministically from the file whenever the run is loaded, recorded in the run's
``summary.json`` (``data``), and checked against it by ``odepipe extrapolate``, so a file changed
after training is reported instead of silently shifting the predictions.

``python -m odepipe_plugins.series.csv_source OUT.csv`` writes the example file (damped oscillators
sampled unevenly, with gaps) that ``recipes/csv_example.yaml`` trains on.
"""

from __future__ import annotations

import importlib.resources
import math
import os
import sys
from typing import Annotated, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import odepipe
from odepipe import Batch, DataSource, Range

from .predictive import PLOT_SAMPLES, posterior_predictive, std_in_data_units
from .series_io import Series, SeriesCodec, read_long_csv, sample_prior
from .series_plot import MAX_SERIES, Panel, plot_series


def resolve_data_path(path: str) -> str:
    """``path`` as given if it exists (relative to the working directory), else the file of that
    name beside the shipped recipes, so a shipped recipe can name its example data."""
    if os.path.exists(path) or os.path.isabs(path):
        return path
    shipped = importlib.resources.files("odepipe.recipes").joinpath(path)
    try:
        if shipped.is_file():
            return str(shipped)
    except (OSError, ValueError):
        pass
    return path


#: rows of one series by default (data.max_points); see :func:`.series_io.read_long_csv`
MAX_POINTS = 5_000
#: file time units per model time unit: beyond these, float32 model times lose all resolution
TimeScale = Annotated[float, Range(ge=1e-12, le=1e12, example=1.0)]


class CSVData(DataSource, odepipe.SeriesCodecSource):
    """Long-format CSV (series id, time, feature columns), gaps allowed; normalized per feature.

    Args:
        path: the CSV file; relative paths are looked up in the working directory, then beside
            the shipped recipes.
        id_column, time_column: the names of the series-id and time columns.
        features: the feature columns to model (null: every other column).
        test_fraction: share of series held out for the test split (0: no test split).
        valid_fraction: share of series held out for the valid split, which periodic
            evaluation and ``train.keep: best`` read (0, or a share that rounds to no series:
            no valid split). The test series are the same whatever this is; the valid ones
            come out of the rest, so the training split is what remains.
        holdout: evaluation encodes each test series without its last ``holdout`` share of
            time points and scores the prediction of those (``test_extrap_mse``).
        time_scale: file time units per model time unit (null: median training span / 5).
        max_points: the most rows one series may have (a longer one is refused with how to
            cut it into windows): a training step costs time in proportion to it.
    """

    @odepipe.checked
    def __init__(
        self,
        path: str,
        seed: int = 0,
        id_column: str = "series",
        time_column: str = "time",
        features: Optional[List[str]] = None,
        test_fraction: Annotated[float, Range(ge=0, lt=1)] = 0.2,
        holdout: Annotated[float, Range(gt=0, lt=1)] = 0.25,
        time_scale: Optional[TimeScale] = None,
        valid_fraction: Annotated[float, Range(ge=0, lt=1)] = 0.1,
        max_points: Annotated[int, Range(ge=2, le=10_000_000)] = MAX_POINTS,
    ):
        if test_fraction + valid_fraction >= 1:
            raise odepipe.DataError(
                f"data.test_fraction={test_fraction} and data.valid_fraction={valid_fraction} "
                f"leave no series for training; keep their sum below 1 (e.g. 0.2 and 0.1)"
            )
        self.path = resolve_data_path(path)
        self.holdout = holdout
        self.max_points = max_points  # extrapolate --input is held to it too
        names, self.series = read_long_csv(
            self.path, id_column, time_column, features, max_points=max_points
        )
        self.splits, self.index = _split(len(self.series), seed, test_fraction, valid_fraction)
        train = [self.series[i] for i in self.index["train"]]
        mean, std = fit_statistics(self.path, names, train)
        with np.errstate(over="ignore"):
            spans = [s.times[-1] - s.times[0] for s in train]
        if not np.isfinite(spans).all():
            raise odepipe.DataError(
                f"{self.path}: column '{time_column}': the times of a series span more than "
                f"float64 holds (from below -1e308 to above 1e308); fix the times or express "
                f"them in larger units"
            )
        if time_scale is None:
            median = float(np.median(spans))
            time_scale = median / 5.0 if median > 0 else 1.0
        self.codec = SeriesCodec(names, mean, std, float(time_scale), id_column, time_column)

    # -- the DataSource contract ---------------------------------------------------------------
    def dims(self) -> Dict[str, int]:
        return {"obs_dim": len(self.codec.features)}

    def dataset(self, split: str) -> Sequence[int]:
        if split not in self.index:
            raise odepipe.DataError(
                f"the csv source has no split {split!r}; it has {', '.join(self.splits)}"
            )
        return list(self.index[split])

    def collate(self, items: Sequence[int]) -> Batch:
        if len(items) == 0:  # e.g. the end-of-run plot when there is no test split
            D = len(self.codec.features)
            return Batch(
                times=torch.zeros(1),
                values=torch.zeros(0, 1, D),
                mask=torch.zeros(0, 1, D),
                extras={
                    "index": torch.zeros(0, dtype=torch.long),
                    "length": torch.zeros(0, dtype=torch.long),
                },
            )
        chosen = [self.series[i] for i in items]
        batch = self.codec.to_batch(chosen)
        batch.extras["index"] = torch.as_tensor(list(items), dtype=torch.long)
        batch.extras["length"] = torch.tensor([len(s.times) for s in chosen])
        return batch

    def series_codec(self) -> SeriesCodec:
        return self.codec

    def state(self) -> Dict[str, Any]:
        """The fitted preprocessing, written to summary.json so a reloaded run can be checked."""
        return {**self.codec.state(), "series": {k: len(v) for k, v in self.index.items()}}

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: Any, batch: Batch) -> Dict[str, float]:
        """Per-series MSE in normalized units: reconstruction of the observed entries, and
        prediction of each series' last ``holdout`` share of time points from the rest."""
        mask = batch.mask  # (B, T, D)
        recon = model.reconstruct(batch)
        out = {"recon_mse": _masked_mse_sum(recon, batch.values, mask)}
        seed, future = self.holdout_seed(batch)
        pred = model.extrapolate(seed, batch.times)
        out["extrap_mse"] = _masked_mse_sum(pred, batch.values, future)
        return out

    def holdout_seed(self, batch: Batch) -> Tuple[Batch, torch.Tensor]:
        """What extrapolation is scored on: the batch without each series' last ``holdout``
        share of time points (at least one; a one-point series is kept whole, scoring
        nothing), and the mask ``(B, T, D)`` of the entries left out."""
        mask = batch.mask  # (B, T, D)
        lengths = batch.extras["length"].to(mask.device)  # (B,)
        cut = torch.where(
            lengths >= 2, lengths - (self.holdout * lengths).floor().clamp(min=1), lengths
        ).unsqueeze(1)  # (B, 1)
        steps = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)  # (1, T)
        seen = (steps < cut).to(mask.dtype).unsqueeze(-1)  # (B, T, 1)
        seed = Batch(
            times=batch.times, values=batch.values * seen, mask=mask * seen, extras=batch.extras
        )
        return seed, mask * (1 - seen)

    @torch.no_grad()
    def plot(self, model: Any, batch: Batch, out_dir: str) -> None:
        """``series.png``: test series, each seen without its held-out end and predicted
        over it (see :mod:`.series_plot`)."""
        chosen = batch.extras["index"].tolist()[:MAX_SERIES]
        if not chosen:
            return
        plot_series(
            os.path.join(out_dir, "series.png"),
            self.codec,
            self.holdout_panels(model, self.collate(chosen)),
            title=f"test series: the model sees the first {1 - self.holdout:.0%} of each "
            f"series' points (shaded) and predicts the rest\n(mean of "
            f"{PLOT_SAMPLES} posterior draws of z0 ± 1 predictive std; errors in "
            f"normalized units, as test_extrap_mse)",
            error_name="held-out MSE",
        )

    @torch.no_grad()
    def holdout_panels(self, model: Any, batch: Batch, points: int = 200) -> List[Panel]:
        """One figure panel per series of ``batch``: the prediction from its seen part over
        its whole span (mean of posterior draws, ± 1 std, in file units) and the error on
        its held-out points per feature (at the posterior mean, as ``extrap_mse``)."""
        device = next(model.parameters()).device
        batch = batch.to(device)
        seed, future = self.holdout_seed(batch)
        err = (model.extrapolate(seed, batch.times) - batch.values) ** 2 * future
        errors = (err.sum(1) / future.sum(1)).cpu().numpy()  # (B, D): NaN where none held out
        chosen = [self.series[i] for i in batch.extras["index"].tolist()]
        rel = np.stack([np.linspace(0, s.times[-1] - s.times[0], points) for s in chosen])
        times = torch.tensor(rel / self.codec.time_scale, dtype=torch.float32, device=device)
        mean, std = posterior_predictive(model, seed, times)
        mean_file = self.codec.decode_values(mean.numpy())
        std_file = std_in_data_units(self.codec, mean.numpy(), std.numpy())
        cuts = seed.mask.flatten(2).amax(-1).sum(1).long().tolist()  # seen points per series
        panels = []
        for i, (s, cut) in enumerate(zip(chosen, cuts)):
            seen, held = _part(s, 0, cut), _part(s, cut, len(s.times))
            panels.append(
                Panel(
                    s.id,
                    rel[i] + s.times[0],
                    mean_file[i],
                    std_file[i],
                    seen=seen,
                    truth=held if len(held.times) else None,
                    seen_until=float(seen.times[-1]),
                    errors=errors[i],
                )
            )
        return panels

    def sample(self, model: Any, n: int, out_dir: Optional[str] = None) -> Sequence[str]:
        """Prior draws over [0, median training span] in file units (CSV + PNG)."""
        spans = [self.series[i].times[-1] - self.series[i].times[0] for i in self.index["train"]]
        end = float(np.median(spans)) / self.codec.time_scale or 1.0
        return sample_prior(model, self.codec, torch.linspace(0, end, 100), n, out_dir)


def fit_statistics(
    path: str, names: Sequence[str], train: Sequence[Series]
) -> Tuple[List[float], List[float]]:
    """Each feature's mean and std over the training series' observed values (std 1 for a
    constant column). A column without a value, or whose statistics overflow float64 (values
    beyond about 1e154 square to infinity), is a DataError naming the column and the fix, so
    it is never silently zeroed and summary.json never holds Infinity."""
    observed = np.concatenate([s.values for s in train])  # (N, D) with NaN
    mean, std = [], []
    for d, name in enumerate(names):
        column = observed[:, d][~np.isnan(observed[:, d])]
        if column.size == 0:
            raise odepipe.DataError(
                f"{path}: column '{name}' has no value in the "
                f"training series; drop it with data.features"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            m, sd = float(column.mean()), float(column.std())
        if not (math.isfinite(m) and math.isfinite(sd)):
            value, line = max(
                (
                    (float(v), ln)
                    for s in train
                    for v, ln in zip(s.values[:, d], s.lines)
                    if not math.isnan(v)
                ),
                key=lambda p: abs(p[0]),
            )
            raise odepipe.DataError(
                f"{path}: column '{name}': its {'mean' if not math.isfinite(m) else 'std'} "
                f"over the training series is not a finite float64 number (its largest value "
                f"is {value:g}, line {line}), so the column cannot be normalized. Fix that "
                f"value, rescale the column in the file (express it in larger units, keeping "
                f"values below about 1e150), or leave it out with data.features"
            )
        mean.append(m)
        std.append(sd if sd > 1e-8 else 1.0)
    return mean, std


def _part(series: Series, start: int, stop: int) -> Series:
    """Points ``start:stop`` of a series."""
    return Series(
        series.id, series.times[start:stop], series.values[start:stop], series.lines[start:stop]
    )


def _split(
    n: int, seed: int, test_fraction: float, valid_fraction: float
) -> Tuple[Tuple[str, ...], Dict[str, List[int]]]:
    """The splits of ``n`` series: one permutation by ``seed``; test takes its head (as many as
    before the valid split existed), valid the next ``round(n * valid_fraction)``, train the
    rest (at least one series)."""
    n_test = 0 if test_fraction == 0 or n < 2 else min(n - 1, max(1, round(n * test_fraction)))
    n_valid = min(n - n_test - 1, round(n * valid_fraction))
    order = np.random.RandomState(seed).permutation(n).tolist()
    index = {"train": sorted(order[n_test + n_valid :]), "test": sorted(order[:n_test])}
    if n_valid > 0:
        index["valid"] = sorted(order[n_test : n_test + n_valid])
    splits = tuple(k for k in ("train", "valid", "test") if k in index and index[k])
    return splits, index


def _masked_mse_sum(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """Sum over items of each item's mean squared error over its masked-in entries."""
    err = ((pred - target) ** 2 * mask).flatten(1).sum(1)
    count = mask.flatten(1).sum(1)
    return float((err / count.clamp(min=1)).sum())


# -- the example file ----------------------------------------------------------------------------
def write_example(path: str, n_series: int = 100, seed: int = 0, prefix_only: bool = False) -> None:
    """Damped oscillators (position ``x``, velocity ``v``), each with its own frequency, damping,
    start time and uneven sampling, noise 0.05 and 10% of cells missing. ``prefix_only`` keeps
    the first half of each series (a seed for ``odepipe extrapolate``)."""
    rng = np.random.RandomState(seed)
    lines = ["series,time,x,v"]
    for i in range(n_series):
        omega, zeta = rng.uniform(0.8, 1.6), rng.uniform(0.05, 0.2)
        amp, phase, t0 = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * math.pi), rng.uniform(0, 5)
        k = rng.randint(20, 36)
        t = np.sort(rng.uniform(0, 10, size=k))
        if prefix_only:
            t = t[t < 5]
        decay = np.exp(-zeta * omega * t)
        x = amp * decay * np.cos(omega * t + phase)
        angle = omega * t + phase
        v = -amp * decay * (zeta * omega * np.cos(angle) + omega * np.sin(angle))
        x, v = x + rng.randn(len(t)) * 0.05, v + rng.randn(len(t)) * 0.05
        for tj, xj, vj in zip(t, x, v):
            cells = [
                f"{xj:.4f}" if rng.rand() > 0.1 else "",
                f"{vj:.4f}" if rng.rand() > 0.1 else "",
            ]
            lines.append(f"s{seed}_{i:03d},{t0 + tj:.4f},{cells[0]},{cells[1]}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":  # python -m odepipe_plugins.series.csv_source OUT.csv [--seed-file]
    write_example(
        sys.argv[1],
        n_series=3 if "--seed-file" in sys.argv else 100,
        seed=1 if "--seed-file" in sys.argv else 0,
        prefix_only="--seed-file" in sys.argv,
    )
