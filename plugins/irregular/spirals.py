"""Spirals scored by the irregular protocol: the ``spiral`` source (with ``n_irregular`` points
of each window observed), whose evaluation adds interpolation of the unobserved window points
to extrapolation beyond the window (see :mod:`.protocol` and docs/irregular.md)."""

from __future__ import annotations

from typing import Any, Dict

import torch
from odepipe_plugins.series.spiral import SpiralData

from odepipe import Batch

from .protocol import observed_points, squared_error_sums


class IrregularSpiralData(SpiralData):
    """The ``spiral`` source, scored on interpolation, extrapolation and observed points.

    Test metrics (data units, clean curve): ``test_interp_mse`` over each window's unobserved
    points, ``test_extrap_mse`` over the points after the window, ``test_observed_mse`` over
    the observed ones, ``test_recon_mse_clean`` over the whole window. Set ``n_irregular`` (30,
    50 or 100 of the window's 100 points, as in the paper); without it every point is seen.
    """

    @torch.no_grad()
    def evaluate(self, model: Any, batch: Batch) -> Dict[str, float]:
        T = batch.times.shape[0]
        future = batch.extras["future"]
        times = torch.cat([batch.times, batch.extras["future_times"]])
        pred = model.extrapolate(batch, times)  # (B, T + F, 2): the posterior mean, decoded
        clean = batch.extras["clean"]
        out = squared_error_sums(
            pred[:, :T],
            pred[:, T:],
            clean,
            future,
            observed_points(batch.mask, batch.values.shape).to(pred.device),
        )
        out["recon_mse_clean"] = float(((pred[:, :T] - clean) ** 2).flatten(1).mean(1).sum())
        return out
