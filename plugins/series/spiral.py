"""The noisy 2-D spirals of torchdiffeq's examples/latent_ode.py, with valid and test splits
and each spiral's noiseless continuation for scoring extrapolation.

Effective settings of that example (``generate_spiral2d`` as ``__main__`` calls it): the curve is
sampled at ``n_total=500`` points of ``linspace(0, 6*pi, 500)`` (its ``ntotal=1000`` is never
passed), ``a=0, b=0.3``; counter-clockwise ``r = a + b*t`` centred at (+5, 0), clockwise
``r = a + 50*b/(stop + 1 - t)`` centred at (-5, 0); a random start index in
``[n_observed, n_total - n_observed)`` (kept for the training split; a held-out spiral's start
is capped so that the ``n_extrapolate`` points after its window exist: ``[100, 301)`` by
default); 100 observed points with Gaussian noise of std 0.3; all spirals share the observed
time grid ``linspace(0, 6*pi, 500)[:100]``.

The valid spirals are drawn like the test ones but from a random stream of their own
(:func:`valid_rng`), so adding them left every seed's train and test spirals as they were.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

import odepipe
from odepipe import Batch, DataSource, Range

#: a count of spirals or points: at least ``ge``, at most ten million
Count = Annotated[int, Range(ge=1, le=10_000_000)]
#: a curve parameter or noise level that float32 data holds with room to spare
Coordinate = Annotated[float, Range(ge=-1e6, le=1e6)]
#: a held-out split's size: 0 leaves the split out
ValidCount = Annotated[int, Range(ge=0, le=10_000_000)]
#: seeds the validation split's own random stream (see :func:`valid_rng`)
VALID_STREAM = 0x76616C
#: values (spirals x points x 2 coordinates) a source may hold: ~0.5 GB per float64 copy
MAX_VALUES = 2**26


def check_allocation(n_series: int, span: int, keys: str, per_point: int = 2) -> None:
    """Refuses, before anything is allocated, a data set of more than MAX_VALUES values
    (``per_point`` values at each point of each series)."""
    values = n_series * span * per_point
    if values > MAX_VALUES:
        raise odepipe.DataError(
            f"{keys} ask for {n_series} series of {span} points, {values} values (about "
            f"{values * 40 / 2**30:.0f} GiB while the data is generated); the limit is "
            f"{MAX_VALUES}: lower data.n_spirals or the points per series"
        )


def spiral_curves(n_total: int, start: float, stop: float, a: float, b: float) -> np.ndarray:
    """The two noiseless curves ``(2, n_total, 2)``: clockwise, counter-clockwise."""
    ts = np.linspace(start, stop, num=n_total)
    zs_cw = stop + 1.0 - ts
    rs_cw = a + b * 50.0 / zs_cw
    cw = np.stack((rs_cw * np.cos(zs_cw) - 5.0, rs_cw * np.sin(zs_cw)), axis=1)
    rs_cc = a + b * ts
    cc = np.stack((rs_cc * np.cos(ts) + 5.0, rs_cc * np.sin(ts)), axis=1)
    return np.stack([cw, cc])


def default_valid(n_valid: Optional[int], n_test: int) -> int:
    """``data.n_valid`` as given, or (null) as many as the test split, at most 100."""
    return min(100, n_test) if n_valid is None else n_valid


def valid_rng(seed: int) -> np.random.RandomState:
    """The validation items' own stream: the train and test items of a seed are drawn from
    ``RandomState(seed)`` exactly as before the valid split existed."""
    return np.random.RandomState([seed, VALID_STREAM])


def split_index(
    n_train: int, n_test: int, n_valid: int
) -> Tuple[Tuple[str, ...], Dict[str, range]]:
    """Splits and their item ranges: train first, then test, then valid (the order drawn)."""
    n = n_train + n_test
    index = {"train": range(n_train), "test": range(n_train, n)}
    if not n_valid:
        return ("train", "test"), index
    index["valid"] = range(n, n + n_valid)
    return ("train", "valid", "test"), index


def concat_parts(
    parts: Sequence[Tuple[Optional[np.ndarray], ...]],
) -> Tuple[Optional[np.ndarray], ...]:
    """Joins the arrays drawn for each stream along items, field by field (None stays None)."""
    return tuple(None if fields[0] is None else np.concatenate(fields) for fields in zip(*parts))


def _draw_spirals(
    rng: np.random.RandomState,
    n_train: int,
    n_held: int,
    curves: np.ndarray,
    n_observed: int,
    span: int,
    noise_std: float,
    n_irregular: Optional[int],
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """``n_train`` training spirals then ``n_held`` held-out ones (test or valid), from ``rng``:
    clean ``(N, span, 2)``, noisy ``(N, n_observed, 2)``, direction ``(N,)``, mask or None."""
    n_total = curves.shape[1]
    n = n_train + n_held
    # Training spirals start where the example's do, t0 in [n_observed, n_total - n_observed),
    # so training covers the whole curve; held-out spirals start early enough that their
    # continuation exists on the curve (past its end it is NaN).
    t0 = np.concatenate(
        [
            rng.randint(n_observed, n_total - n_observed, size=n_train),
            rng.randint(n_observed, n_total - span + 1, size=n_held),
        ]
    )
    direction = (rng.rand(n) > 0.5).astype(int)  # 1 = counter-clockwise
    padded = np.concatenate([curves, np.full((2, span, 2), np.nan)], axis=1)
    clean = np.stack([padded[d, i : i + span] for d, i in zip(direction, t0)])  # (N, span, 2)
    noisy = clean[:, :n_observed] + rng.randn(n, n_observed, 2) * noise_std
    return clean, noisy, direction, irregular_mask(rng, n, n_observed, n_irregular)


def irregular_mask(
    rng: np.random.RandomState, n: int, n_observed: int, n_irregular: Optional[int]
) -> Optional[np.ndarray]:
    """``(n, n_observed)``: 1 at ``n_irregular`` random points of each series (None: all)."""
    if n_irregular is None:
        return None
    keep = np.argsort(rng.rand(n, n_observed), axis=1)[:, :n_irregular]
    mask = np.zeros((n, n_observed), dtype=np.float32)
    np.put_along_axis(mask, keep, 1.0, axis=1)
    return mask


class SpiralData(DataSource, odepipe.SeriesCodecSource):
    """Noisy 2-D spirals (torchdiffeq latent_ode example): train/valid/test, clean continuation.

    Args:
        n_spirals: training spirals. n_test: test spirals (scored on their continuation).
        n_valid: validation spirals, drawn like the test ones from their own random stream, so
            a seed's train and test spirals are the same whatever n_valid is (null: as many as
            n_test, at most 100; 0: no valid split).
        n_total: points of the whole curve. n_observed: points each spiral shows the encoder.
        n_extrapolate: points after the window scored as extrapolation (extrap_mse).
        noise_std: std of the Gaussian noise on the observed points.
        start, stop, a, b: the curve, ``linspace(start, stop, n_total)``, radius ``a + b*t``.
        n_irregular: keep that many random points of each window (the others masked out).
    """

    @odepipe.checked
    def __init__(
        self,
        seed: int = 0,
        n_spirals: Count = 1000,
        n_test: Count = 200,
        n_total: Annotated[int, Range(ge=5, le=1_000_000)] = 500,
        n_observed: Annotated[int, Range(ge=2, le=1_000_000)] = 100,
        n_extrapolate: Annotated[int, Range(ge=0, le=1_000_000)] = 100,
        noise_std: Annotated[float, Range(ge=0, le=1e6)] = 0.3,
        start: Coordinate = 0.0,
        stop: Coordinate = 6 * math.pi,
        a: Coordinate = 0.0,
        b: Coordinate = 0.3,
        n_irregular: Optional[Count] = None,
        n_valid: Optional[ValidCount] = None,
    ):
        if n_total < 2 * n_observed + max(n_extrapolate, 1):
            raise odepipe.DataError(
                f"data.n_total={n_total} is too short for data.n_observed={n_observed} and "
                f"data.n_extrapolate={n_extrapolate}; use data.n_total >= "
                f"{2 * n_observed + max(n_extrapolate, 1)}"
            )
        if n_irregular is not None and n_irregular > n_observed:
            raise odepipe.DataError(
                f"data.n_irregular={n_irregular} is more than "
                f"data.n_observed={n_observed}; use at most {n_observed}"
            )
        if not stop > start:
            raise odepipe.DataError(
                f"data.stop={stop} must be above data.start={start}: the "
                f"curve is sampled from start to stop"
            )
        n_valid = default_valid(n_valid, n_test)
        check_allocation(
            n_spirals + n_test + n_valid,
            n_observed + n_extrapolate,
            "data.n_spirals + data.n_test + data.n_valid and data.n_observed + data.n_extrapolate",
        )
        curves = spiral_curves(n_total, start, stop, a, b)
        draw = functools.partial(
            _draw_spirals,
            curves=curves,
            n_observed=n_observed,
            span=n_observed + n_extrapolate,
            noise_std=noise_std,
            n_irregular=n_irregular,
        )
        parts = [draw(np.random.RandomState(seed), n_spirals, n_test)]
        if n_valid:
            parts.append(draw(valid_rng(seed), 0, n_valid))
        clean, noisy, direction, mask = concat_parts(parts)
        grid = np.linspace(start, stop, num=n_total)
        self.times = torch.tensor(grid[: n_observed + n_extrapolate] - grid[0], dtype=torch.float32)
        self.n_observed = n_observed
        self.noisy = torch.tensor(noisy, dtype=torch.float32)
        self.clean = torch.tensor(clean, dtype=torch.float32)
        self.direction = torch.tensor(direction)
        self.mask: Optional[torch.Tensor] = None if mask is None else torch.tensor(mask)
        self.splits, self.index = split_index(n_spirals, n_test, n_valid)

    def dims(self) -> Dict[str, int]:
        return {"obs_dim": 2}

    def dataset(self, split: str) -> Sequence[int]:
        return list(self.index[split])

    def collate(self, items: Sequence[int]) -> Batch:
        idx = torch.as_tensor(list(items), dtype=torch.long)
        T = self.n_observed
        return Batch(
            times=self.times[:T],
            values=self.noisy[idx],
            mask=None if self.mask is None else self.mask[idx],
            extras={
                "clean": self.clean[idx, :T],
                "future": self.clean[idx, T:],
                "future_times": self.times[T:],
                "direction": self.direction[idx],
            },
        )

    @torch.no_grad()
    def evaluate(self, model: Any, batch: Batch) -> Dict[str, float]:
        recon = model.reconstruct(batch)  # (B, T, 2)
        out = {"recon_mse_clean": _mse_sum(recon, batch.extras["clean"])}
        if batch.extras["future"].shape[1]:
            times = torch.cat([batch.times, batch.extras["future_times"]])
            pred = model.extrapolate(batch, times)[:, batch.times.shape[0] :]
            out["extrap_mse"] = _mse_sum(pred, batch.extras["future"])
        return out

    def plot(self, model: Any, batch: Batch, out_dir: str) -> None:
        """``spirals.png``: a few test spirals, their prediction and its band (see
        :mod:`.spiral_plot`)."""
        from .spiral_plot import plot_spirals

        plot_spirals(model, batch, out_dir)

    def series_codec(self) -> Any:
        """File columns for ``odepipe extrapolate`` / ``sample`` CSVs: series, time, x, y."""
        from .series_io import SeriesCodec

        return SeriesCodec.identity(["x", "y"])

    def sample(self, model: Any, n: int, out_dir: Optional[str] = None) -> Sequence[str]:
        """Prior draws decoded over the observed window and its continuation (CSV + PNG)."""
        from .series_io import sample_prior

        return sample_prior(model, self.series_codec(), self.times, n, out_dir)


def _mse_sum(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Sum over items of each item's mean squared error."""
    return float(((pred - target) ** 2).flatten(1).mean(1).sum())
