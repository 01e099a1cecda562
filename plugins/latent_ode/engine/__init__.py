"""A lean ODE solver engine in plain torch, batch first, for the latent ODE's solver paths.

Why our own instead of torchdiffeq for these paths (measured in ``benchmarks/solver_overhead.py``,
written up in ``docs/solvers.md``): torchdiffeq's per-output ``solution[j] = y`` writes make the
backward O(T^2 B L), its per-output interpolation is Python-bound at small batch, its fixed grid
can end on a zero-length step, and its adjoint restarts the backward solve in every output
interval. The engine keeps torchdiffeq's method names, tableaus, output semantics and step
control, so results agree with it to float noise.

Public API::

    solve_fixed(func, z0, times, method="rk4", step_size=None, counter=None)          # (B, T, L)
    solve_adaptive(func, z0, times, method="dopri5", rtol=1e-7, atol=1e-9,
                   max_num_steps=None, counter=None, first_step=None, controller="i")
    solve_fixed_adjoint(func, z0, times, method="rk4", params=(), step_size=None, counter=None)
    NFECounter        # .forward / .backward (adjoint VJPs) / .recompute, added to by the solves
    SolverFailure     # RuntimeError with .reason in {"underflow", "non_finite", "max_num_steps"}
    FIXED_METHODS, ADAPTIVE_METHODS
"""

from __future__ import annotations

from .adaptive import solve_adaptive
from .adjoint import solve_fixed_adjoint
from .errors import NFECounter, SolverFailure
from .fixed import solve_fixed
from .tableaus import ADAPTIVE, FIXED

FIXED_METHODS = tuple(FIXED)
ADAPTIVE_METHODS = tuple(ADAPTIVE)

__all__ = [
    "solve_fixed",
    "solve_adaptive",
    "solve_fixed_adjoint",
    "NFECounter",
    "SolverFailure",
    "FIXED_METHODS",
    "ADAPTIVE_METHODS",
]
