"""Dense output of an embedded RK step at many points in one matrix product.

torchdiffeq fits, after every accepted step, the quartic through y0, y1, y(t0 + dt/2), f0, f1
(``interp.py``), and evaluates it once per output with a Python loop over powers. The quartic is
linear in the stages: with b the solution weights and m the midpoint weights,

    p(x) = y0 + dt * sum_i k_i w_i(x),
    w_i(x) = x d0_i + x^2 (-5 b_i + 16 m_i + dL_i - 4 d0_i)
             + x^3 (14 b_i - 32 m_i + 5 d0_i - 3 dL_i) + x^4 (-8 b_i + 16 m_i + 2 dL_i - 2 d0_i)

(d0/dL: indicator of the first/last stage; f1 is the last stage for the FSAL pairs here). So the
outputs inside a step are ``y0 + (dt W) @ K`` with K the stages as an (s, B*L) matrix: one 2-D
GEMM for all of them, time-major (a batch-first (B, m, L) result would be B tiny matmuls whose
backward is B selects), and only for steps that contain outputs.
"""

from __future__ import annotations

from typing import List, Sequence

import torch

from .tableaus import Tableau


def weights(tab: Tableau, xs: Sequence[float], dt: float) -> List[List[float]]:
    """``dt * w_i(x)`` for each x in ``xs`` (rows) and stage i (columns)."""
    s = tab.stages
    rows = []
    for x in xs:
        x2, x3, x4 = x * x, x * x * x, x * x * x * x
        row = []
        for i in range(s):
            d0, dl = float(i == 0), float(i == s - 1)
            b, m = tab.b[i], tab.mid[i]
            row.append(
                dt
                * (
                    x * d0
                    + x2 * (-5 * b + 16 * m + dl - 4 * d0)
                    + x3 * (14 * b - 32 * m + 5 * d0 - 3 * dl)
                    + x4 * (-8 * b + 16 * m + 2 * dl - 2 * d0)
                )
            )
        rows.append(row)
    return rows


def evaluate(
    tab: Tableau, y0: torch.Tensor, ks: Sequence[torch.Tensor], xs: Sequence[float], dt: float
) -> torch.Tensor:
    """The dense output at fractions ``xs`` of the step, time-major: (len(xs), *y0.shape)."""
    w = torch.tensor(weights(tab, xs, dt), dtype=y0.dtype, device=y0.device)  # (m, s)
    k = torch.stack(list(ks), dim=0).reshape(len(ks), -1)  # (s, B*L)
    return torch.addmm(y0.reshape(1, -1), w, k).view(len(xs), *y0.shape)
