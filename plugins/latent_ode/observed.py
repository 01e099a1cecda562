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
