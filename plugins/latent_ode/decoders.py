"""Gaussian decoders for series: latent state -> Normal over the observation."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import nn

import odepipe
from odepipe import Batch, Decoder, Range

#: the observation std: float32 holds its log, and its exp stays above zero
Std = Annotated[float, Range(ge=1e-6, le=1e6)]


class GaussianDecoder(Decoder):
    """Shared body: a network for the mean and a fixed or learned observation std."""

    def __init__(self, std: float, learn_std: bool, obs_dim: int):
        super().__init__()
        log_std = torch.full((obs_dim,), math.log(std))
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    def forward(self, z: torch.Tensor, batch: Batch) -> torch.distributions.Distribution:
        mean = self.net(z)  # (B, T, D)
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))


class MLPDecoder(GaussianDecoder):
    """Two-layer MLP mean with a Gaussian of fixed or learned std (the latent ODE example's)."""

    @odepipe.checked
    def __init__(
        self,
        latent_dim: int,
        obs_dim: int,
        hidden_size: Annotated[int, Range(ge=1, le=16_384)] = 20,
        std: Std = 0.3,
        learn_std: bool = False,
    ):
        super().__init__(std, learn_std, obs_dim)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_size), nn.ReLU(), nn.Linear(hidden_size, obs_dim)
        )


class LinearDecoder(GaussianDecoder):
    """Linear map from latent state to mean, Gaussian with fixed or learned std."""

    @odepipe.checked
    def __init__(self, latent_dim: int, obs_dim: int, std: Std = 0.3, learn_std: bool = False):
        super().__init__(std, learn_std, obs_dim)
        self.net = nn.Linear(latent_dim, obs_dim)
