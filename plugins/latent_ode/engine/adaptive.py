"""Adaptive embedded Runge-Kutta solves (dopri5, tsit5, bosh3) without the quadratic backward.

Same step logic as torchdiffeq's ``RKAdaptiveStepsizeODESolver`` (first-same-as-last stages,
initial step, error norm and I controller from :mod:`.control`), so steps and solutions agree
with torchdiffeq at the same rtol/atol to float noise. What differs is the bookkeeping: outputs
go to a Python list and are concatenated once (no ``solution[j] = y`` writes, whose backward is
O(T^2 B L)); all outputs inside one step come from one dense-output matmul; the error estimate
is computed under no_grad (it steers the steps, the loss never sees it). Outputs are built
time-major and returned as a batch-first view, as odepipe's torchdiffeq wrapper returns them.
"""

from __future__ import annotations

import math
from typing import List, Optional

import torch

from .control import Controller, error_ratio, initial_step
from .dense import evaluate
from .errors import SolverFailure, add_counts
from .grid import check_times
from .stepper import Field, combine
from .tableaus import ADAPTIVE, Tableau, lookup


def solve_adaptive(
    func: Field,
    z0: torch.Tensor,
    times: torch.Tensor,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    max_num_steps: Optional[int] = None,
    counter: Optional[object] = None,
    first_step: Optional[float] = None,
    controller: str = "i",
) -> torch.Tensor:
    """Solve dz/dt = func(t, z) with error control; returns (B, T, L), batch first.

    ``rtol``/``atol`` as torchdiffeq (defaults too); the error norm covers the whole (B, L)
    state, like torchdiffeq on the same tensor. ``max_num_steps`` bounds the steps attempted
    (accepted and rejected) over the whole solve; torchdiffeq bounds them per output interval.
    Raises :class:`SolverFailure` on step-size underflow, a non-finite state, or the step budget.
    ``counter.forward`` gets every evaluation: 2 to start (f(t0), initial-step probe) and
    stages - 1 per attempted step.
    """
    solver = _Adaptive(func, lookup(method, ADAPTIVE, "adaptive"), z0, rtol, atol)
    try:
        return solver.run(check_times(times), max_num_steps, first_step, controller)
    finally:
        add_counts(counter, forward=solver.nfe)


class _Adaptive:
    """The state of one adaptive solve (kept on an object so the loop reads as the algorithm)."""

    def __init__(self, func: Field, tab: Tableau, z0: torch.Tensor, rtol: float, atol: float):
        self.func, self.tab, self.z0 = func, tab, z0
        self.rtol, self.atol = float(rtol), float(atol)
        self.opts = dict(dtype=z0.dtype, device=z0.device)
        self.err_weights = tuple((i, e) for i, e in enumerate(tab.e) if e != 0.0)
        self.nfe = 0

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.func(t, y)

    def fail(self, reason: str, message: str, t: float, dt: float, steps: int) -> SolverFailure:
        return SolverFailure(reason, message, t=t, dt=dt, steps=steps)

    def run(
        self,
        tl: List[float],
        max_num_steps: Optional[int],
        first_step: Optional[float],
        controller: str,
    ) -> torch.Tensor:
        tab, z0 = self.tab, self.z0
        if not bool(torch.isfinite(z0).all()):
            raise self.fail(
                "non_finite", "non-finite values in the initial state z0", tl[0], math.nan, 0
            )
        chunks: List[torch.Tensor] = [z0.unsqueeze(0)]  # time-major pieces
        t, y0, j = tl[0], z0, 1
        if len(tl) == 1:
            return torch.cat(chunks, dim=0).transpose(0, 1)
        k0 = self.f(torch.tensor(t, **self.opts), y0)
        dt = (
            float(first_step)
            if first_step is not None
            else initial_step(self.f, t, y0, k0, tab.order, self.rtol, self.atol)
        )
        ctrl = Controller(tab.order, controller)
        steps, nonfinite = 0, False
        while j < len(tl):
            if max_num_steps is not None and steps >= max_num_steps:
                raise self.fail(
                    "max_num_steps",
                    f"max_num_steps exceeded ({steps}>={max_num_steps}) at t={t:.6g}, dt={dt:.3g}",
                    t,
                    dt,
                    steps,
                )
            if not (math.isfinite(dt) and t + dt > t):
                if nonfinite:
                    raise self.fail(
                        "non_finite",
                        f"non-finite values in the state near "
                        f"t={t:.6g}: trial steps stayed non-finite down to "
                        f"dt={dt:.3g}",
                        t,
                        dt,
                        steps,
                    )
                raise self.fail(
                    "underflow",
                    f"underflow in dt {dt:.3g} at t={t:.6g} after {steps} steps",
                    t,
                    dt,
                    steps,
                )
            steps += 1
            t1 = t + dt
            ts = torch.tensor([t + c * dt for c in tab.c], **self.opts).unbind(0)
            ks = [k0]
            for i in range(1, tab.stages):  # the last stage sits on y1 (FSAL)
                yi = combine(y0, ks, tab.a_nz[i], dt)
                ks.append(self.f(ts[i], yi))
            y1 = yi
            with torch.no_grad():
                err = combine(torch.zeros_like(y0), ks, self.err_weights, dt)
            ratio = error_ratio(err, y0, y1, self.rtol, self.atol)
            nonfinite = not math.isfinite(ratio)
            if nonfinite:  # a rejection that shrinks hard
                dt *= ctrl.dfactor
                continue
            if ratio <= 1.0:
                xs = []
                while j < len(tl) and tl[j] <= t1:
                    xs.append((tl[j] - t) / dt)
                    j += 1
                if xs:
                    chunks.append(self.outputs(y0, y1, ks, xs, dt))
                t, y0, k0 = t1, y1, ks[-1]
            dt *= ctrl.factor(ratio)
        return torch.cat(chunks, dim=0).transpose(0, 1)

    def outputs(self, y0, y1, ks, xs, dt) -> torch.Tensor:
        """(m, B, L) outputs at fractions ``xs`` of the step: y1 itself at x == 1, the dense
        output elsewhere (all of them in one matmul)."""
        if xs == [1.0]:
            return y1.unsqueeze(0)
        if xs[-1] == 1.0:
            return torch.cat([evaluate(self.tab, y0, ks, xs[:-1], dt), y1.unsqueeze(0)], dim=0)
        return evaluate(self.tab, y0, ks, xs, dt)
