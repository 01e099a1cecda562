"""ODE-RNN recognition network (Rubanova, Chen and Duvenaud 2019, "Latent ODEs for Irregularly-
Sampled Time Series"): between observations the hidden state follows its own ODE, at each
observation a GRU cell updates it. It reads the series in reverse time, so its last state sits at
t0, where the latent ODE starts.

Why an ODE between observations: a GRU fed time gaps must learn what a gap of 0.3 means; here
the state moves continuously with the gap, so sparse or uneven sampling changes nothing in kind.
Each sample's observed points are read in order and the unobserved ones skipped (a shared
grid with a mask becomes per-sample gaps), so the recurrence takes as many steps as the most
observed sample has. The hidden ODE is solved with a few fixed steps per gap in rescaled time
s in [0, 1] (dh/ds = dt_b * f(h)), which handles a different gap for every sample in one batched
solve.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import torch
from odepipe_plugins.latent_ode.observed import observed_sequences
from torch import nn

import odepipe
from odepipe import Batch, Encoder, Posterior, Range

Width = Annotated[int, Range(ge=1, le=16_384)]


class ODERNNEncoder(Encoder):
    """ODE-RNN: hidden ODE between observations, GRU update at each, read in reverse time.

    Args:
        latent_dim, obs_dim: supplied by odepipe.
        hidden_size: size of the hidden state h.
        ode_hidden_size: width of the MLP field f(h) that moves h between observations.
        method: fixed-step scheme for the hidden ODE: euler, midpoint or rk4.
        substeps: steps of that scheme per gap between consecutive time points.
    """

    @odepipe.checked
    def __init__(
        self,
        latent_dim: int,
        obs_dim: Optional[int] = None,
        vocab_size: Optional[int] = None,
        hidden_size: Width = 25,
        ode_hidden_size: Width = 25,
        method: Literal["euler", "midpoint", "rk4"] = "euler",
        substeps: Annotated[int, Range(ge=1, le=1000)] = 1,
    ):
        super().__init__()
        if obs_dim is None:
            raise odepipe.ModelError(
                "the odernn encoder reads real-valued series (a data source "
                "with obs_dim); for token data use encoder=gru"
            )
        self.method, self.substeps = method, substeps
        self.field = nn.Sequential(
            nn.Linear(hidden_size, ode_hidden_size),
            nn.Tanh(),
            nn.Linear(ode_hidden_size, hidden_size),
        )
        self.cell = nn.GRUCell(2 * obs_dim, hidden_size)
        self.hidden_size = hidden_size
        self.to_posterior = nn.Linear(hidden_size, 2 * latent_dim)

    def evolve(self, h: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Solves dh/dt = f(h) over a signed time ``delta`` (B, 1) for every sample at once."""
        f, step = self.field, delta / self.substeps
        for _ in range(self.substeps):
            if self.method == "euler":
                h = h + step * f(h)
            elif self.method == "midpoint":
                h = h + step * f(h + 0.5 * step * f(h))
            else:
                k1 = f(h)
                k2 = f(h + 0.5 * step * k1)
                k3 = f(h + 0.5 * step * k2)
                k4 = f(h + step * k3)
                h = h + step * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        return h

    def forward(self, batch: Batch) -> Posterior:
        times, inputs, observed = observed_sequences(batch)  # (B, K, ...)
        B = times.shape[0]
        h = inputs.new_zeros(B, self.hidden_size)
        K = times.shape[1]
        for i in reversed(range(K)):
            if i < K - 1:
                delta = (times[:, i] - times[:, i + 1]).unsqueeze(-1)  # (B, 1), <= 0
                if bool((delta != 0).any()):
                    h = self.evolve(h, delta)
            seen = observed[:, i : i + 1]  # (B, 1)
            h = seen * self.cell(inputs[:, i], h) + (1 - seen) * h
        # from each sample's first observation back to the batch's first time, where the
        # latent ODE starts
        delta = batch.times.min().to(times) - times[:, :1]  # (B, 1), <= 0
        if bool((delta != 0).any()):
            h = self.evolve(h, delta)
        mean, logvar = self.to_posterior(h).chunk(2, dim=-1)  # (B, L) each
        return Posterior(mean, logvar)
