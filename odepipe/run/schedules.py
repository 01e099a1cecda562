"""Learning-rate and KL-weight schedules, as pure functions of the step (so resume is exact)."""

from __future__ import annotations

import math

from ..recipe.schema import TrainConfig


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` at ``step``: linear warm-up, then constant or cosine."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        floor = cfg.lr_min / cfg.lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def kl_weight(step: int, cfg: TrainConfig) -> float:
    """KL weight at ``step``, rising to ``cfg.beta`` over ``cfg.kl_anneal_steps``.

    linear: straight ramp; logistic: Bowman et al.'s sigmoid centred mid-ramp; cyclical: the
    linear ramp over the first half of every period, then flat (Fu et al. 2019).
    """
    n = cfg.kl_anneal_steps
    if cfg.kl_schedule == "constant" or n == 0:
        return cfg.beta
    if cfg.kl_schedule == "linear":
        return cfg.beta * min(1.0, step / n)
    if cfg.kl_schedule == "logistic":
        return cfg.beta / (1 + math.exp(-10.0 * (step / n - 0.5)))
    phase = (step % n) / n  # cyclical
    return cfg.beta * min(1.0, 2 * phase)
