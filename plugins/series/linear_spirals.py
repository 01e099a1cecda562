"""Spirals from random linear 2-D dynamics, as in the classic ODE-VAE notebook (Surtsukov,
"Neural Ordinary Differential Equations", 2019): every series follows its own dx/dt = A x with

    A = [[w11, w12], [w21, w22]],  w11, w22 = -0.1|n| - 0.05,  w12 = |n|,  w21 = -|n|,

(n ~ N(0, 1)) from x0 ~ N(0, 4); half the series turn the other way (w12 and w21 swapped).
Trajectories are exact (matrix exponentials), sampled on ``linspace(0, t_max, n_total)`` with
``t_max = 6.29 * 5``; each series is a random window of ``n_observed`` noisy points, followed by
``n_extrapolate`` clean points for scoring extrapolation. ``n_irregular`` keeps that many random
points of every window (via the mask). The valid series come from a random stream of
their own, like the spirals'. Unlike the torchdiffeq spirals, every series has its own
dynamics, so the model must infer A, not only a phase, from the observations.
"""

from __future__ import annotations

import functools
from typing import Annotated, Optional, Tuple

import numpy as np
import torch
from odepipe_plugins.series.spiral import (
    Count,
    SpiralData,
    ValidCount,
    check_allocation,
    concat_parts,
    default_valid,
    irregular_mask,
    split_index,
    valid_rng,
)

import odepipe
from odepipe import Range


class LinearSpiralData(SpiralData):
    """Random linear 2-D dynamics (ODE-VAE notebook): per-series A, noisy window, clean future.

    Args:
        n_spirals, n_test: training and test series.
        n_valid: validation series, drawn from their own random stream so a seed's train and
            test series do not depend on it (null: as many as n_test, at most 100; 0: none).
        n_total: points of the grid ``linspace(0, t_max, n_total)`` windows are taken from.
        n_observed: points each series shows the encoder; n_extrapolate: clean points after
            them, scored as extrapolation (extrap_mse).
        t_max: the grid's end. noise_std: std of the noise on the observed points.
        n_irregular: keep that many random points of each window (the others masked out).
    """

    @odepipe.checked
    def __init__(
        self,
        seed: int = 0,
        n_spirals: Count = 1000,
        n_test: Count = 200,
        n_total: Annotated[int, Range(ge=2, le=1_000_000)] = 200,
        n_observed: Annotated[int, Range(ge=2, le=1_000_000)] = 100,
        n_extrapolate: Annotated[int, Range(ge=0, le=1_000_000)] = 50,
        t_max: Annotated[float, Range(gt=0, le=1e6)] = 6.29 * 5,
        noise_std: Annotated[float, Range(ge=0, le=1e6)] = 0.02,
        n_irregular: Optional[Count] = None,
        n_valid: Optional[ValidCount] = None,
    ):
        if n_total < n_observed + n_extrapolate:
            raise odepipe.DataError(
                f"data.n_total={n_total} is shorter than data.n_observed + data.n_extrapolate "
                f"= {n_observed + n_extrapolate}; raise data.n_total"
            )
        if n_irregular is not None and n_irregular > n_observed:
            raise odepipe.DataError(
                f"data.n_irregular={n_irregular} is more than "
                f"data.n_observed={n_observed}; use at most {n_observed}"
            )
        n_valid = default_valid(n_valid, n_test)
        check_allocation(
            n_spirals + n_test + n_valid,
            n_observed + n_extrapolate,
            "data.n_spirals + data.n_test + data.n_valid and data.n_observed + data.n_extrapolate",
            per_point=4,
        )  # a 2x2 matrix exponential per point
        grid = np.linspace(0.0, t_max, n_total)
        draw = functools.partial(
            _draw_linear,
            grid=grid,
            n_observed=n_observed,
            span=n_observed + n_extrapolate,
            noise_std=noise_std,
            n_irregular=n_irregular,
        )
        parts = [draw(np.random.RandomState(seed), n_spirals + n_test)]
        if n_valid:
            parts.append(draw(valid_rng(seed), n_valid))
        A, clean, noisy, ccw, mask = concat_parts(parts)
        f32 = torch.float32
        self.matrices = torch.tensor(A, dtype=f32)  # (N, 2, 2): each series' A
        self.times = torch.tensor(grid[: n_observed + n_extrapolate] - grid[0], dtype=f32)
        self.n_observed = n_observed
        self.noisy, self.clean = torch.tensor(noisy, dtype=f32), torch.tensor(clean, dtype=f32)
        self.direction = torch.tensor(ccw.astype(int))
        self.mask = None if mask is None else torch.tensor(mask)
        self.splits, self.index = split_index(n_spirals, n_test, n_valid)


def _draw_linear(
    rng: np.random.RandomState,
    n: int,
    grid: np.ndarray,
    n_observed: int,
    span: int,
    noise_std: float,
    n_irregular: Optional[int],
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """``n`` series from ``rng``: A ``(n, 2, 2)``, clean ``(n, span, 2)``, noisy
    ``(n, n_observed, 2)`` (float64), counter-clockwise ``(n,)``, mask or None."""
    x0 = rng.randn(n, 2) * 2.0
    w11 = -0.1 * np.abs(rng.randn(n)) - 0.05
    w22 = -0.1 * np.abs(rng.randn(n)) - 0.05
    w12 = np.abs(rng.randn(n))
    w21 = -np.abs(rng.randn(n))
    ccw = rng.rand(n) > 0.5
    w12, w21 = np.where(ccw, w21, w12), np.where(ccw, w12, w21)
    A = torch.tensor(np.stack([np.stack([w11, w12], -1), np.stack([w21, w22], -1)], -2))
    start = rng.randint(0, len(grid) - span + 1, size=n)
    rel = torch.tensor(grid[:span] - grid[0])  # (span,)
    # x(t0 + r) = expm(A r) expm(A t0) x0, all in float64
    s0 = torch.linalg.matrix_exp(A * torch.tensor(grid[start]).view(n, 1, 1)) @ torch.tensor(
        x0
    ).unsqueeze(-1)  # (n, 2, 1)
    clean = (
        torch.linalg.matrix_exp(A.unsqueeze(1) * rel.view(1, span, 1, 1)) @ s0.unsqueeze(1)
    ).squeeze(-1)  # (n, span, 2)
    noisy = clean[:, :n_observed] + torch.tensor(rng.randn(n, n_observed, 2)) * noise_std
    mask = irregular_mask(rng, n, n_observed, n_irregular)
    return A.numpy(), clean.numpy(), noisy.numpy(), ccw, mask
