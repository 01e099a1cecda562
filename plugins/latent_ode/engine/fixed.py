"""Fixed-grid solves that autograd differentiates directly (backprop through the steps).

Why not torchdiffeq here: it writes each output with ``solution[j] = y`` into a preallocated
(T, B, L) tensor, and each such write's backward clones the whole gradient, O(T^2 B L); it also
interpolates each output with separate Python-level ops, and can end on a zero-length step. This
keeps the states in a Python list, makes all outputs with one ``stack`` (+ one ``lerp`` when
some fall between grid points), and never steps less than the grid tolerance.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from .errors import add_counts
from .grid import GridPlan, gather, make_plan
from .stepper import Field, step
from .tableaus import FIXED, Tableau, lookup


def fixed_tableau(method: str) -> Tableau:
    """The tableau ``solve_fixed`` uses for ``method`` (first-same-as-last stage dropped)."""
    return lookup(method, FIXED, "fixed-grid").without_fsal_stage()


def integrate(
    func: Field,
    tab: Tableau,
    z0: torch.Tensor,
    plan: GridPlan,
    keep: Optional[set] = None,
    start: int = 0,
    stop: Optional[int] = None,
    ts: Optional[list] = None,
) -> Dict[int, torch.Tensor]:
    """States ``{n: y_n}`` for the grid indices in ``keep`` (all of them when None), stepping
    from ``z0`` at grid index ``start`` to ``stop``. Under no_grad, states not kept are freed as
    soon as the next one exists: memory is flat in the number of steps."""
    stop = plan.steps if stop is None else stop
    ts = plan.stage_times(tab.c, z0) if ts is None else ts
    s, grid = tab.stages, plan.grid
    states = {start: z0} if keep is None or start in keep else {}
    y = z0
    for n in range(start, stop):
        y, _ = step(func, tab, y, grid[n + 1] - grid[n], ts[n * s : (n + 1) * s])
        if keep is None or n + 1 in keep:
            states[n + 1] = y
    return states


def solve_fixed(
    func: Field,
    z0: torch.Tensor,
    times: torch.Tensor,
    method: str = "rk4",
    step_size: Optional[float] = None,
    counter: Optional[object] = None,
) -> torch.Tensor:
    """Solve dz/dt = func(t, z) on a fixed grid; returns (B, T, L), batch first.

    ``func(t, z)``: 0-d tensor ``t`` (z0's dtype and device) and (B, L) ``z`` to (B, L).
    ``times``: strictly increasing (T,); ``step_size=None`` steps exactly between consecutive
    output times; otherwise steps of ``step_size`` with outputs between grid points linearly
    interpolated (torchdiffeq's default). ``out[:, 0]`` equals ``z0``. ``counter`` (see
    :class:`NFECounter`) gets ``forward += steps * stages``.
    """
    tab = fixed_tableau(method)
    plan = make_plan(times, step_size)
    keep = set(plan.needed)
    last = plan.needed[-1]  # nothing after the last output is integrated
    states = integrate(func, tab, z0, plan, keep, stop=last)
    add_counts(counter, forward=last * tab.stages)
    return gather(states, plan)
