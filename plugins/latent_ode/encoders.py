"""Recurrent recognition networks: read the sequence backwards, with time deltas, into q(z0|x).

Reading in reverse time means the final hidden state summarises the whole sequence from the
point of view of t0, which is where the latent ODE starts. Each step sees the observation (zero
where missing), its observation mask and the time gap to its neighbour, so irregular and
partially observed series need no special casing.
"""

from __future__ import annotations

from typing import Annotated, Optional, Tuple

import torch
from torch import nn

import odepipe
from odepipe import Batch, Depth, Encoder, Posterior, Range, Width

from .observed import observed_sequences


def time_deltas(times: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``(B, T, 1)`` gaps between consecutive times (0 for the first point)."""
    times = times if times.dim() == 2 else times.unsqueeze(0).expand(batch_size, -1)
    dt = torch.diff(times, dim=1, prepend=times[:, :1])
    return dt.unsqueeze(-1)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverses each sequence of ``x`` (B, T, ...) within its own length, padding kept last."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    idx = (lengths.unsqueeze(1) - 1 - steps).clamp(min=0)
    idx = torch.where(steps < lengths.unsqueeze(1), idx, steps)  # (B, T)
    return torch.gather(x, 1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x))


class RecurrentEncoder(Encoder):
    """Shared body of the recurrent encoders; subclasses choose the recurrent cell.

    ``observed_only: true`` (series with a mask) reads each sample's observed points only, with
    the real gaps between them, instead of every grid point with the mask as input: with 50 of
    100 points seen, half the steps, and gaps the net need not infer from runs of the mask.
    """

    cell: type = nn.GRU

    @odepipe.checked
    def __init__(
        self,
        latent_dim: int,
        obs_dim: Optional[int] = None,
        vocab_size: Optional[int] = None,
        hidden_size: Width = 25,
        num_layers: Depth = 1,
        embedding_dim: Width = 64,
        dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0,
        observed_only: bool = False,
    ):
        super().__init__()
        self.observed_only = observed_only
        if obs_dim is None and vocab_size is None:
            raise odepipe.ModelError("the data source gave neither obs_dim nor vocab_size")
        self.latent_dim = latent_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim) if vocab_size else None
        step_dim = embedding_dim + 1 if vocab_size else 2 * obs_dim + 1
        self.rnn = self.cell(
            step_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.to_posterior = nn.Linear(hidden_size, 2 * latent_dim)

    def step_inputs(self, batch: Batch) -> torch.Tensor:
        """``(B, T, step_dim)``: observation (or embedding), mask, time delta."""
        B, T = batch.data.shape[:2]
        dt = time_deltas(batch.times, B).to(torch.get_default_dtype())
        if batch.tokens is not None:
            return torch.cat([self.embedding(batch.tokens), dt], dim=-1)
        values = batch.values
        mask = torch.ones_like(values) if batch.mask is None else batch.mask.to(values.dtype)
        if mask.dim() == 2:
            mask = mask.unsqueeze(-1).expand_as(values)
        return torch.cat([values * mask, mask, dt], dim=-1)

    def observed_inputs(self, batch: Batch) -> Tuple[torch.Tensor, torch.Tensor]:
        """``observed_only``: each sample's observed points only, ``(B, K, step_dim)``, with the
        real gap to the previous observation (the first one's: its distance from the batch's
        first time, where z0 sits), and how many each sample has ``(B,)``."""
        times, inputs, seen = observed_sequences(batch)
        B = times.shape[0]
        start = batch.times.min().to(times).expand(B, 1)
        dt = torch.diff(times, dim=1, prepend=start).unsqueeze(-1)  # (B, K, 1)
        return torch.cat([inputs, dt], dim=-1), seen.sum(1).clamp(min=1).long()

    def forward(self, batch: Batch) -> Posterior:
        lengths: Optional[torch.Tensor] = None
        if self.observed_only and batch.tokens is None:
            x, lengths = self.observed_inputs(batch)
        else:
            x = self.step_inputs(batch)  # (B, T, S)
            if batch.tokens is not None and batch.mask is not None:
                lengths = batch.mask.sum(1).clamp(min=1).long()
        if lengths is not None:
            x = reverse_within_length(x, lengths)
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            _, state = self.rnn(packed)
        else:
            _, state = self.rnn(torch.flip(x, dims=[1]))
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        mean, logvar = self.to_posterior(h[-1]).chunk(2, dim=-1)  # (B, L) each
        return Posterior(mean, logvar)


class ElmanEncoder(RecurrentEncoder):
    """Elman RNN (tanh): the recognition net of torchdiffeq's latent ODE example."""

    cell = nn.RNN


class GRUEncoder(RecurrentEncoder):
    """GRU read in reverse time with time deltas."""

    cell = nn.GRU


class LSTMEncoder(RecurrentEncoder):
    """LSTM read in reverse time with time deltas."""

    cell = nn.LSTM
