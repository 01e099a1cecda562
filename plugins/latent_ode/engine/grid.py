"""The fixed grid of one solve and where each output time sits on it, computed once.

torchdiffeq builds its grid as ``arange(ceil(span/h + 1)) * h + t0`` with the last point
replaced by ``t1``; when ``span/h`` is an integer up to rounding, that can leave a final step of
length zero (or a few ulps) that still costs a full step of evaluations. Here the step count is
rounded when the remainder is below a tolerance, so no step is shorter than that tolerance.
Outputs that fall on a grid point (within the same tolerance) are taken from it exactly, the
grid point being moved onto the output time; the others are linearly interpolated between their
two grid neighbours, as torchdiffeq's fixed-grid solvers do by default (``interp="linear"``).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

#: steps and output offsets shorter than this fraction of the step are treated as rounding
REL_TOL = 1e-9


@dataclass
class GridPlan:
    """``grid``: N+1 float64 times; ``lo``/``w``: output j is ``lerp(y[lo[j]], y[lo[j]+1], w[j])``,
    ``w[j] == 0`` meaning exactly ``y[lo[j]]``; ``needed``: the sorted grid indices whose states
    the outputs read."""

    grid: List[float]
    lo: List[int]
    w: List[float]
    needed: List[int]

    @property
    def steps(self) -> int:
        return len(self.grid) - 1

    def stage_times(self, nodes: Tuple[float, ...], like: torch.Tensor) -> List[torch.Tensor]:
        """All stage times ``t_n + c_i * dt_n`` as 0-d tensors of ``like``'s dtype and device,
        built in one tensor op (one 0-d tensor per call would cost more than small fields)."""
        g = torch.tensor(self.grid, dtype=torch.float64, device="cpu")  # on the host, whatever
        c = torch.tensor(nodes, dtype=torch.float64, device="cpu")  # torch's default device
        t = g[:-1, None] + c[None, :] * (g[1:] - g[:-1])[:, None]
        return list(t.to(device=like.device, dtype=like.dtype).reshape(-1).unbind(0))


def _tolerance(t0: float, t1: float, h: float, dtype: torch.dtype) -> float:
    """Absolute time tolerance: 1e-9 of the step, or a few ulps of the times' own dtype (float32
    times cannot say where 0.3 is to better than 3e-8)."""
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 0.0
    return max(REL_TOL * h, 8 * eps * max(abs(t0), abs(t1)))


def check_times(times: torch.Tensor) -> List[float]:
    """``times`` as float64 Python floats, after checking it is 1-D and strictly increasing."""
    if times.dim() != 1 or times.numel() < 1:
        raise ValueError(f"times must be a non-empty 1-D tensor, got shape {tuple(times.shape)}")
    tl = times.detach().to(torch.float64).cpu().tolist()
    if any(b <= a for a, b in zip(tl, tl[1:])):
        raise ValueError("times must be strictly increasing")
    if not all(math.isfinite(t) for t in tl):
        raise ValueError("times must be finite")
    return tl


def make_plan(times: torch.Tensor, step_size: Optional[float] = None) -> GridPlan:
    """The grid for ``times``: the output times themselves when ``step_size`` is None (one step
    per output interval, as torchdiffeq without a step size), else uniform steps of
    ``step_size`` from ``times[0]`` with the last step ending on ``times[-1]``."""
    tl = check_times(times)
    if step_size is None or len(tl) == 1:
        return GridPlan(list(tl), list(range(len(tl))), [0.0] * len(tl), list(range(len(tl))))
    h = float(step_size)
    if not h > 0 or not math.isfinite(h):
        raise ValueError(f"step_size must be a positive finite number, got {step_size}")
    t0, t1 = tl[0], tl[-1]
    tol = _tolerance(t0, t1, h, times.dtype)
    n = (t1 - t0) / h
    whole = math.floor(n)
    if n - whole <= tol / h:  # span is a multiple of h up to rounding: no stub step
        steps = max(whole, 1)
    else:  # a genuinely shorter last step (or round up if it's ~h)
        steps = whole + 1
    grid = [t0 + k * h for k in range(steps)] + [t1]
    lo: List[int] = []
    w: List[float] = []
    for t in tl:
        k = min(bisect.bisect_left(grid, t), steps)  # grid[k-1] < t <= grid[k]
        if k > 0 and t - grid[k - 1] <= tol:
            k -= 1
        if abs(grid[k] - t) <= tol:  # on the grid: align the point, no interp
            grid[k] = t
            lo.append(k)
            w.append(0.0)
        else:
            lo.append(k - 1)
            w.append((t - grid[k - 1]) / (grid[k] - grid[k - 1]))
    needed = sorted({i for i, wj in zip(lo, w) for i in ((i, i + 1) if wj else (i,))})
    return GridPlan(grid, lo, w, needed)


def gather(states: dict, plan: GridPlan) -> torch.Tensor:
    """Outputs (B, T, L) from the grid states ``{index: (B, L)}`` with one ``stack``: states on
    the grid go in as they are, the others as one ``lerp`` with a Python-float weight each (one
    fused kernel; a broadcast (1, T, 1) weight tensor is several times slower on CPU). The
    backward of a stack is T views, not T copies of the (T, B, L) gradient. Stacked time-major
    (a contiguous copy, twice as fast as an interleaving one) and returned as a batch-first view,
    the layout odepipe's torchdiffeq wrapper returns too."""
    return torch.stack(
        [
            torch.lerp(states[n], states[n + 1], w) if w else states[n]
            for n, w in zip(plan.lo, plan.w)
        ],
        dim=0,
    ).transpose(0, 1)
