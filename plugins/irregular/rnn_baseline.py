"""The RNN baseline: the same model with its ODE replaced by a GRU that steps over the grid.

It is registered as a *solver*, so comparing a latent ODE with an RNN is one override
(``solver=gru_baseline``): the encoder, decoder, ELBO, data and training budget stay the same,
and only the continuous-time evolution z0 -> z(t) becomes a discrete recurrence. The GRU's input
at each step is the time gap to the previous grid point, so it sees irregular grids; unlike the
ODE it must learn what a gap means, and it never evaluates the recipe's ``dynamics`` (whose
weights stay untrained).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

import odepipe
from odepipe import Dynamics, Range, Solver


class GRUBaseline(Solver):
    """Not an ODE: a GRU steps the latent over the time grid, gap as input (the RNN baseline).

    z(t_0) = z0; at every later grid point the GRU reads the gap and the current latent state,
    and a linear read-out of its state gives the change of the latent state. ``nfe_forward``
    counts GRU steps, the cost that stands in for field evaluations.

    Args:
        latent_dim: supplied by odepipe.
        hidden_size: GRU state size.
    """

    @odepipe.checked
    def __init__(self, latent_dim: int, hidden_size: Annotated[int, Range(ge=1, le=16_384)] = 25):
        super().__init__()
        self.init = nn.Linear(latent_dim, hidden_size)
        self.cell = nn.GRUCell(1 + latent_dim, hidden_size)
        self.readout = nn.Linear(hidden_size, latent_dim)

    def forward(self, dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.init(z0))  # (B, H)
        gaps = torch.diff(times.to(z0)).reshape(-1, 1, 1).expand(-1, z0.shape[0], 1)  # (T-1, B, 1)
        z, states = z0, [z0]
        for gap in gaps:
            h = self.cell(torch.cat([gap, z], dim=-1), h)
            z = z + self.readout(h)
            states.append(z)
            self.nfe_forward += 1
        return torch.stack(states, dim=1)  # (B, T, L)
