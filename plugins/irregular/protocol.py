"""The irregular-spiral protocol's scores (Chen et al. 2018, section 5.1 and Table 2), kept
apart from the data so that what is scored is a few lines that a test can check by hand.

Each spiral has a window of grid points of which the model sees ``n`` (the mask); it is then
asked for every point of the window and for the points after it. Three disjoint sets of points
are scored against the noiseless curve, each as a mean squared error over its points and both
coordinates, in the data's own units:

- ``interp``: the window's unobserved points (interpolation; none when every point is seen),
- ``extrap``: the points after the window (extrapolation, the paper's Table 2 metric),
- ``observed``: the window's observed points (denoising what the model was shown).

Every spiral of a split sees the same number of points, so the mean over spirals of these
per-spiral errors equals the error pooled over all points, and its square root is the RMSE.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch


def observed_points(mask: Optional[torch.Tensor], shape: torch.Size) -> torch.Tensor:
    """``(B, T)`` booleans: the window points the model saw (a ``(B, T, D)`` mask counts a point
    as seen when all its coordinates are; no mask means all were)."""
    B, T = shape[0], shape[1]
    if mask is None:
        return torch.ones(B, T, dtype=torch.bool)
    seen = mask > 0
    return seen.all(-1) if seen.dim() == 3 else seen


def squared_error_sums(
    window: torch.Tensor,
    future: torch.Tensor,
    clean_window: torch.Tensor,
    clean_future: torch.Tensor,
    seen: torch.Tensor,
) -> Dict[str, float]:
    """Per-spiral mean squared errors, summed over the batch's spirals (the evaluator divides
    by the number of spirals): ``interp_mse``, ``observed_mse`` and ``extrap_mse``.

    Args:
        window, clean_window: predicted and true points of the window, ``(B, T, D)``.
        future, clean_future: predicted and true points after it, ``(B, F, D)``.
        seen: ``(B, T)`` booleans, the points the model was shown (:func:`observed_points`).

    A set with no points (``interp`` when everything is seen, ``extrap`` when F is 0) is left
    out rather than reported as 0.
    """
    err = ((window - clean_window) ** 2).mean(-1)  # (B, T): mean over coordinates
    weights = seen.to(err.dtype)
    out: Dict[str, float] = {}
    for name, w in (("observed_mse", weights), ("interp_mse", 1 - weights)):
        counts = w.sum(1)  # (B,)
        if bool((counts > 0).all()):
            out[name] = float(((err * w).sum(1) / counts).sum())
    if future.shape[1]:
        out["extrap_mse"] = float(((future - clean_future) ** 2).flatten(1).mean(1).sum())
    return out
