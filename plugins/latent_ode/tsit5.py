"""Tsitouras' 5(4) Runge-Kutta pair (Tsitouras 2011), for torchdiffeq releases that lack it.

torchdiffeq 0.2.x has no ``tsit5``; this module supplies the method through torchdiffeq's own
adaptive Runge-Kutta machinery (step control, dense output, adjoint) and adds it to torchdiffeq's
method table only when that table has no entry of the name, so a future torchdiffeq that ships
tsit5 keeps its own. The tableau constants (Tsitouras' published ones) live in the engine's
:mod:`.engine.tableaus`, shared by both backends.
"""

from __future__ import annotations

import importlib

import torch
from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver, _ButcherTableau

from .engine.tableaus import TSIT5

# the module, not the function of the same name that torchdiffeq._impl re-exports
_odeint_module = importlib.import_module("torchdiffeq._impl.odeint")

_F64 = torch.float64
_T = TSIT5  # the engine's copy of Tsitouras' constants: one place for them

TABLEAU = _ButcherTableau(
    alpha=torch.tensor(_T.c[1:], dtype=_F64),
    beta=[torch.tensor(row, dtype=_F64) for row in _T.a],
    c_sol=torch.tensor(_T.b, dtype=_F64),
    c_error=torch.tensor(_T.e, dtype=_F64),
)


class Tsit5Solver(RKAdaptiveStepsizeODESolver):
    """torchdiffeq-compatible Tsit5: 7 stages, first-same-as-last, order 5, 4th-order error."""

    order = 5
    tableau = TABLEAU
    mid = torch.tensor(_T.mid, dtype=_F64)


def install() -> None:
    """Makes ``method='tsit5'`` available to torchdiffeq's odeint and odeint_adjoint."""
    _odeint_module.SOLVERS.setdefault("tsit5", Tsit5Solver)
