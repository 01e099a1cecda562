"""Noisy damped harmonic oscillators x'' + 2*zeta*omega*x' + omega^2*x = 0, observed as
(position, velocity), with each series' noiseless continuation for scoring extrapolation."""
from __future__ import annotations

import math
from typing import Any, Dict, Sequence

import torch

import odepipe
from odepipe import Batch, DataSource


def trajectory(t: torch.Tensor, amplitude: torch.Tensor, phase: torch.Tensor,
               omega: torch.Tensor, zeta: torch.Tensor) -> torch.Tensor:
    """Closed-form under-damped solution: ``(N, T, 2)`` of (x, dx/dt) for N parameter sets."""
    t = t[None, :]  # (1, T)
    a, p, w, z = (v[:, None] for v in (amplitude, phase, omega, zeta))  # (N, 1)
    wd = w * torch.sqrt(1 - z ** 2)
    decay = torch.exp(-z * w * t)
    x = a * decay * torch.cos(wd * t + p)
    v = a * decay * (-z * w * torch.cos(wd * t + p) - wd * torch.sin(wd * t + p))
    return torch.stack([x, v], dim=-1)


class DampedOscillator(DataSource, odepipe.SeriesCodecSource):
    """Noisy damped oscillators (position, velocity): train/test, clean continuation."""

    supports = ("series",)

    def __init__(self, seed: int = 0, n_series: int = 512, n_test: int = 64,
                 n_observed: int = 50, n_extrapolate: int = 50, t_max: float = 10.0,
                 omega_min: float = 0.8, omega_max: float = 1.5, damping_min: float = 0.02,
                 damping_max: float = 0.2, noise_std: float = 0.05):
        problems = []
        if n_series < 1 or n_test < 1:
            problems.append("data.n_series and data.n_test must be >= 1")
        if n_observed < 2 or n_extrapolate < 0:
            problems.append("data.n_observed must be >= 2 and data.n_extrapolate >= 0")
        if not 0 < omega_min <= omega_max:
            problems.append("need 0 < data.omega_min <= data.omega_max")
        if not 0 <= damping_min <= damping_max < 1:
            problems.append("need 0 <= data.damping_min <= data.damping_max < 1 (under-damped)")
        if noise_std < 0 or t_max <= 0:
            problems.append("data.noise_std must be >= 0 and data.t_max > 0")
        if problems:
            raise odepipe.DataError("; ".join(problems))
        gen = torch.Generator().manual_seed(seed)
        n = n_series + n_test
        span = n_observed + n_extrapolate

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=gen)

        self.times = torch.linspace(0.0, t_max * span / n_observed, span)
        self.clean = trajectory(self.times, uniform(0.5, 1.5), uniform(0, 2 * math.pi),
                                uniform(omega_min, omega_max), uniform(damping_min, damping_max))
        noise = torch.randn(n, n_observed, 2, generator=gen) * noise_std
        self.noisy = self.clean[:, :n_observed] + noise  # (N, T_obs, 2)
        self.n_observed = n_observed
        self.index = {"train": range(n_series), "test": range(n_series, n)}

    def series_codec(self) -> Any:
        """Columns series, time, x, v for ``odepipe extrapolate``."""
        from .codec import OscillatorCodec

        return OscillatorCodec()

    def dims(self) -> Dict[str, int]:
        return {"obs_dim": 2}

    def dataset(self, split: str) -> Sequence[int]:
        return list(self.index[split])

    def collate(self, items: Sequence[int]) -> Batch:
        idx = torch.as_tensor(list(items), dtype=torch.long)
        T = self.n_observed
        return Batch(times=self.times[:T], values=self.noisy[idx],
                     extras={"clean": self.clean[idx, :T], "future": self.clean[idx, T:],
                             "future_times": self.times[T:]})

    @torch.no_grad()
    def evaluate(self, model: Any, batch: Batch) -> Dict[str, float]:
        def mse_sum(a: torch.Tensor, b: torch.Tensor) -> float:
            return float(((a - b) ** 2).flatten(1).mean(1).sum())

        out = {"recon_mse_clean": mse_sum(model.reconstruct(batch), batch.extras["clean"])}
        if batch.extras["future"].shape[1]:
            times = torch.cat([batch.times, batch.extras["future_times"]])
            pred = model.extrapolate(batch, times)[:, batch.times.shape[0]:]
            out["extrap_mse"] = mse_sum(pred, batch.extras["future"])
        return out
