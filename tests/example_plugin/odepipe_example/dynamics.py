"""A linear vector field that is stable by construction: rotations plus damping."""
from __future__ import annotations

import torch
from torch import nn

from odepipe import Dynamics


class DampedLinear(Dynamics):
    """dz/dt = (S - S^T - diag(softplus(d))) z: skew-symmetric rotation with learned damping."""

    def __init__(self, latent_dim: int, init_damping: float = 0.1, init_scale: float = 0.5):
        super().__init__()
        self.skew = nn.Parameter(torch.randn(latent_dim, latent_dim) * init_scale)
        # softplus(d) = init_damping at the start
        self.damping = nn.Parameter(torch.full((latent_dim,), float(init_damping)).expm1().log())

    def matrix(self) -> torch.Tensor:
        return self.skew - self.skew.T - torch.diag(nn.functional.softplus(self.damping))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return z @ self.matrix().T  # (B, L)
