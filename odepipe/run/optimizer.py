"""The training run's Adam, in its fused implementation where torch has one for the parameters.

Why fused: on one CPU thread the foreach Adam over the real-English VAE's parameters took
8.4 ms a step and the fused one 1.5 ms, about 4% of a 160 ms training step
(docs/text.md, "Faster training"). Fused Adam computes the same update up to float rounding;
where torch has no fused kernel (a device or dtype it does not cover) the foreach
implementation, one kernel per step instead of per tensor, is used instead.
"""

from __future__ import annotations

from typing import Iterable

import torch


def adam(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam over ``params``: fused when torch supports it for all of them, else foreach."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # torch refuses fused for these devices or dtypes
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)
