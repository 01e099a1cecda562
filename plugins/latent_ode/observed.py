"""Irregular series as each sample's own sequence of observations.

A batch of irregular series shares one time grid and marks with a mask which points each
sample saw. A recurrent encoder that steps over the grid spends half its steps on nothing
(50 of 100 points seen) and sees the grid's constant gap where the real gap between two
observations is what matters. Moving each sample's observed points to the front turns the
grid plus mask into per-sample sequences with real gaps, which the ODE-RNN and the GRU
encoders' ``observed_only`` mode both read.
"""

from __future__ import annotations

from typing import Tuple

import torch

from odepipe import Batch


def observed_first(
    times: torch.Tensor, inputs: torch.Tensor, observed: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each sample's observed time points moved to the front, in time order, and the batch cut
    to the most any sample has (K): ``times (B, K)``, ``inputs (B, K, S)``, ``observed (B, K)``.

    A padding slot (a sample with fewer than K observations) repeats the sample's last
    observed time, so the step into it is zero and, being unobserved, it changes nothing.
    """
    seen = observed > 0  # (B, T)
    order = torch.argsort((~seen).to(torch.int8), dim=1, stable=True)  # observed first, in order
    counts = seen.sum(1)  # (B,)
    K = max(int(counts.max()), 1)
    order = order[:, :K]
    times = times.gather(1, order)
    inputs = inputs.gather(1, order.unsqueeze(-1).expand(-1, -1, inputs.shape[-1]))
    observed = observed.gather(1, order) * seen.gather(1, order)
    last = times.gather(1, (counts - 1).clamp(min=0).unsqueeze(1))  # (B, 1)
    times = torch.where(observed > 0, times, last)
    return times, inputs, observed


def observed_sequences(batch: Batch) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A series batch as each sample's observed points, in time order (:func:`observed_first`):
    ``times (B, K)``, ``inputs (B, K, 2D)`` (the values, zero where a coordinate is missing,
    and the coordinate mask) and ``observed (B, K)``. A point counts as observed when any of
    its coordinates is; no mask means every point was."""
    values = batch.values  # (B, T, D)
    B, T, _ = values.shape
    times = batch.times if batch.times.dim() == 2 else batch.times.expand(B, T)
    mask = torch.ones_like(values) if batch.mask is None else batch.mask.to(values.dtype)
    if mask.dim() == 2:
        mask = mask.unsqueeze(-1).expand_as(values)
    inputs = torch.cat([values * mask, mask], dim=-1)  # (B, T, 2D)
    return observed_first(times.to(values.dtype), inputs, mask.amax(-1))
