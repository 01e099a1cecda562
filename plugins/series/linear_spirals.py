"""Spirals from random linear 2-D dynamics, as in the classic ODE-VAE notebook (Surtsukov,
"Neural Ordinary Differential Equations", 2019): every series follows its own dx/dt = A x with

    A = [[w11, w12], [w21, w22]],  w11, w22 = -0.1|n| - 0.05,  w12 = |n|,  w21 = -|n|,

(n ~ N(0, 1)) from x0 ~ N(0, 4); half the series turn the other way (w12 and w21 swapped).
Trajectories are exact (matrix exponentials), sampled on ``linspace(0, t_max, n_total)`` with
``t_max = 6.29 * 5``; each series is a random window of ``n_observed`` noisy points, followed by
``n_extrapolate`` clean points for scoring extrapolation. ``n_irregular`` keeps that many random
points of every window (via the mask). Unlike the torchdiffeq spirals, every series has its own
dynamics, so the model must infer A, not only a phase, from the observations.
"""
from __future__ import annotations

from typing import Annotated, Optional

import numpy as np
import torch
from odepipe_plugins.series.spiral import Count, SpiralData, check_allocation

import odepipe
from odepipe import Range


class LinearSpiralData(SpiralData):
    """Random linear 2-D dynamics (ODE-VAE notebook): per-series A, noisy window, clean future."""

    @odepipe.checked
    def __init__(self, seed: int = 0, n_spirals: Count = 1000, n_test: Count = 200,
                 n_total: Annotated[int, Range(ge=2, le=1_000_000)] = 200,
                 n_observed: Annotated[int, Range(ge=2, le=1_000_000)] = 100,
                 n_extrapolate: Annotated[int, Range(ge=0, le=1_000_000)] = 50,
                 t_max: Annotated[float, Range(gt=0, le=1e6)] = 6.29 * 5,
                 noise_std: Annotated[float, Range(ge=0, le=1e6)] = 0.02,
                 n_irregular: Optional[Count] = None):
        if n_total < n_observed + n_extrapolate:
            raise odepipe.DataError(
                f"data.n_total={n_total} is shorter than data.n_observed + data.n_extrapolate "
                f"= {n_observed + n_extrapolate}; raise data.n_total")
        if n_irregular is not None and n_irregular > n_observed:
            raise odepipe.DataError(f"data.n_irregular={n_irregular} is more than "
                                    f"data.n_observed={n_observed}; use at most {n_observed}")
        check_allocation(n_spirals + n_test, n_observed + n_extrapolate,
                         "data.n_spirals + data.n_test and data.n_observed + data.n_extrapolate",
                         per_point=4)  # a 2x2 matrix exponential per point
        rng = np.random.RandomState(seed)
        n, span = n_spirals + n_test, n_observed + n_extrapolate
        grid = np.linspace(0.0, t_max, n_total)
        x0 = rng.randn(n, 2) * 2.0
        w11 = -0.1 * np.abs(rng.randn(n)) - 0.05
        w22 = -0.1 * np.abs(rng.randn(n)) - 0.05
        w12 = np.abs(rng.randn(n))
        w21 = -np.abs(rng.randn(n))
        ccw = rng.rand(n) > 0.5
        w12, w21 = np.where(ccw, w21, w12), np.where(ccw, w12, w21)
        A = torch.tensor(np.stack([np.stack([w11, w12], -1), np.stack([w21, w22], -1)], -2))
        start = rng.randint(0, n_total - span + 1, size=n)
        rel = torch.tensor(grid[:span] - grid[0])  # (span,)
        # x(t0 + r) = expm(A r) expm(A t0) x0, all in float64
        s0 = torch.linalg.matrix_exp(A * torch.tensor(grid[start]).view(n, 1, 1)) \
            @ torch.tensor(x0).unsqueeze(-1)  # (n, 2, 1)
        clean = (torch.linalg.matrix_exp(A.unsqueeze(1) * rel.view(1, span, 1, 1))
                 @ s0.unsqueeze(1)).squeeze(-1)  # (n, span, 2)
        noisy = clean[:, :n_observed] + torch.tensor(rng.randn(n, n_observed, 2)) * noise_std
        self.matrices = A.float()  # (N, 2, 2): each series' A
        self.times = rel.float()
        self.n_observed = n_observed
        self.noisy, self.clean = noisy.float(), clean.float()
        self.direction = torch.tensor(ccw.astype(int))
        self.mask = None
        if n_irregular is not None:
            keep = np.argsort(rng.rand(n, n_observed), axis=1)[:, :n_irregular]
            mask = np.zeros((n, n_observed), dtype=np.float32)
            np.put_along_axis(mask, keep, 1.0, axis=1)
            self.mask = torch.tensor(mask)
        self.index = {"train": range(n_spirals), "test": range(n_spirals, n)}
