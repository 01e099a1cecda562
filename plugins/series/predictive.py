"""The posterior predictive a figure shows: the mean of a few draws of z0 ~ q(z0|x) decoded over
a time grid, and a band of one predictive std around it.

The std combines both sources of doubt (the law of total variance): how much the decoded means
of the draws disagree, and the decoder's own noise (a Normal decoder's std), so the band is
what one new observation would scatter by, not only how unsure the encoder is.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Tuple

import numpy as np
import torch

from odepipe import Batch

#: draws of z0 per series in a figure: enough for a steady mean and band, cheap at 8 items
PLOT_SAMPLES = 8


@torch.no_grad()
def posterior_predictive(
    model: Any,
    seed: Batch,
    times: torch.Tensor,
    samples: int = PLOT_SAMPLES,
    generator_seed: int = 0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Encodes ``seed``, draws ``samples`` z0 per series (the same draws for the same seed and
    ``generator_seed``) and decodes each over ``times`` (``(T,)`` or per-sample ``(B, T)``).

    Returns the predictive mean and std, both ``(B, T, D)``, on the CPU. A model that does not
    sample (``variational: false``) gives its one prediction and the decoder's std alone.
    """
    posterior = model.encode(seed)
    draws = samples if model.variational else 1
    generator = torch.Generator().manual_seed(generator_seed)
    target = dataclasses.replace(seed, times=times)
    means, variances = [], []
    for _ in range(draws):
        if draws == 1:
            z0 = posterior.mean
        else:
            noise = torch.randn(posterior.mean.shape, generator=generator)
            z0 = posterior.sample(noise)  # (B, L)
        dist = model.decode(model.evolve(z0, times.to(z0.device)), target)
        means.append(dist.mean.cpu())  # (B, T, D)
        variances.append(_variance(dist).cpu())
    mean = torch.stack(means).mean(0)
    spread = torch.stack(means).var(0, unbiased=False)  # disagreement of the draws
    return mean, (spread + torch.stack(variances).mean(0)).sqrt()


def _variance(dist: torch.distributions.Distribution) -> torch.Tensor:
    """The decoder's own variance, 0 where the distribution does not define one."""
    try:
        return dist.variance.expand_as(dist.mean)
    except NotImplementedError:
        return torch.zeros_like(dist.mean)


def std_in_data_units(codec: Any, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """A predictive std in the codec's data units, through its own ``decode_values`` (a
    plugin's codec need not be an affine normalization with a ``std``): the distance that one
    model-space std moves the decoded mean."""
    return np.abs(codec.decode_values(mean + std) - codec.decode_values(mean))
