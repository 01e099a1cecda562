"""One explicit Runge-Kutta step, shared by the fixed-grid solve, the adjoint's recomputation
and the adaptive loop.

Each stage input is ``y0`` plus one ``torch.add(..., alpha=a_ij * dt)`` per non-zero
coefficient, with ``a_ij * dt`` a Python float: one fused kernel forward and one scaling
backward per coefficient, no temporary tensors for the coefficients themselves. (torchdiffeq's
rk4 spends 18 tensor ops per step outside the field; this spends 10.)
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch

from .tableaus import Tableau

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def combine(y: torch.Tensor, ks: Sequence[torch.Tensor], coeffs, dt: float) -> torch.Tensor:
    """``y + dt * sum_j coeffs_j k_j`` over the non-zero ``(j, coeff)`` pairs."""
    for j, a in coeffs:
        y = torch.add(y, ks[j], alpha=a * dt)
    return y


def stages(
    func: Field,
    tab: Tableau,
    y0: torch.Tensor,
    dt: float,
    ts: Sequence[torch.Tensor],
    k0: Optional[torch.Tensor] = None,
) -> List[torch.Tensor]:
    """The stage derivatives k_0..k_{s-1} of one step from ``y0`` (``ts``: the s stage times;
    ``k0``: a first stage already known, e.g. first-same-as-last)."""
    ks = [func(ts[0], y0) if k0 is None else k0]
    for i in range(1, tab.stages):
        ks.append(func(ts[i], combine(y0, ks, tab.a_nz[i], dt)))
    return ks


def step(
    func: Field, tab: Tableau, y0: torch.Tensor, dt: float, ts: Sequence[torch.Tensor]
) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """``(y1, ks)`` of one step; ``tab.stages`` evaluations of ``func``."""
    ks = stages(func, tab, y0, dt, ts)
    return combine(y0, ks, tab.b_nz, dt), ks
