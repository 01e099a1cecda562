"""A decoder with a heavy-tailed likelihood, robust to outliers in the observations."""
from __future__ import annotations

import torch
from torch import nn

from odepipe import Batch, Decoder


class StudentTDecoder(Decoder):
    """MLP mean with a Student-t likelihood of learned per-dimension scale."""

    def __init__(self, latent_dim: int, obs_dim: int, hidden_size: int = 16, df: float = 4.0,
                 scale: float = 0.1):
        super().__init__()
        if df <= 0 or scale <= 0:
            raise ValueError(f"decoder.df and decoder.scale must be > 0, got {df}, {scale}")
        self.df = df
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden_size), nn.Tanh(),
                                 nn.Linear(hidden_size, obs_dim))
        self.log_scale = nn.Parameter(torch.full((obs_dim,), float(scale)).log())

    def forward(self, z: torch.Tensor, batch: Batch) -> torch.distributions.Distribution:
        loc = self.net(z)  # (B, T, D)
        return torch.distributions.StudentT(self.df, loc, self.log_scale.exp().expand_as(loc))
