"""The engine's one exception and its evaluation counter.

Both are plain Python objects so that a caller (the odepipe Solver wrapper) can map them onto its
own error and metric types without the engine importing odepipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


class SolverFailure(RuntimeError):
    """A solve that cannot continue: step-size underflow, a non-finite state, or the step budget.

    ``reason`` is one of ``"underflow"``, ``"non_finite"``, ``"max_num_steps"``; ``t`` is the time
    reached and ``dt`` the step last tried. It subclasses ``RuntimeError`` and its message contains
    the reason's words (``underflow``, ``max_num_steps``), so code written against torchdiffeq's
    failures keeps recognising it.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        t: Optional[float] = None,
        dt: Optional[float] = None,
        steps: Optional[int] = None,
    ):
        super().__init__(message)
        self.reason, self.t, self.dt, self.steps = reason, t, dt, steps


@dataclass
class NFECounter:
    """Counts field evaluations; the engine adds to it, never resets it.

    ``forward``: evaluations of ``func`` made by the forward solve (every stage of every step,
    rejected steps and the initial-step probe included).
    ``backward``: vector-Jacobian products of ``func`` made by the adjoint's backward pass
    (one per forward stage evaluation).
    ``recompute``: plain evaluations the adjoint's backward pass makes to rebuild states it did
    not keep (not VJPs; reported separately so the cost is visible).
    Plain backprop through :func:`solve_fixed`/:func:`solve_adaptive` leaves ``backward`` alone:
    autograd does those VJPs without calling ``func``.

    Any object with integer attributes of these names works as a counter (duck typing).
    """

    forward: int = 0
    backward: int = 0
    recompute: int = 0

    def reset(self) -> None:
        self.forward = self.backward = self.recompute = 0


def add_counts(
    counter: Optional[object], forward: int = 0, backward: int = 0, recompute: int = 0
) -> None:
    """Adds counts to ``counter`` if there is one (attributes it lacks are created)."""
    if counter is None:
        return
    for name, value in (("forward", forward), ("backward", backward), ("recompute", recompute)):
        if value:
            setattr(counter, name, getattr(counter, name, 0) + value)
