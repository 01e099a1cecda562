"""A discrete adjoint for fixed-grid solves: backprop's gradients, memory (almost) flat in steps.

Discretise-then-optimise: the backward pass walks the forward grid in reverse and, for each step,
rebuilds that step's graph from its start state and pulls the adjoint through it with one
``autograd.grad``: one vector-Jacobian product per forward stage evaluation, so backward NFE ==
forward NFE, and the gradients are backprop's through the same scheme up to float rounding (not
the O(h^p) approximation of a continuous adjoint, whose reverse-time state reconstruction also
drifts on dissipative fields).

Memory. The forward (no_grad) keeps one state per output: the output itself when it sits on the
grid, else the grid state just before it. Backward, between two kept states p < q it reruns the
gap under no_grad keeping its states (at most ``STORE_ALL`` of them; longer gaps get a second
level of checkpoints every ~sqrt(gap) steps, costing a second rerun), then backs up one step at
a time holding one step's graph. Peak: the outputs and their gradient (T states each), the kept
states, ``min(gap, ~2 sqrt(gap))`` rerun states and one step's graph; backprop instead holds
every stage's activations of every step. Compute: every backward step evaluates the field again
to rebuild its graph, plus the gap reruns (both in ``counter.recompute``).
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence, Tuple

import torch

from .errors import add_counts
from .fixed import fixed_tableau, integrate
from .grid import GridPlan, gather, make_plan
from .stepper import Field, step
from .tableaus import Tableau

#: gaps up to this many steps are rerun once keeping every state; longer ones use two levels
STORE_ALL = 32


def solve_fixed_adjoint(func: Field, z0: torch.Tensor, times: torch.Tensor, method: str = "rk4",
                        params: Sequence[torch.Tensor] = (), step_size: Optional[float] = None,
                        counter: Optional[object] = None) -> torch.Tensor:
    """:func:`solve_fixed` (same grid, same outputs to the bit) differentiated by the discrete
    adjoint. ``params``: the tensors ``func`` uses that need gradients (torchdiffeq's
    ``adjoint_params``; tensors not listed get none). ``func`` runs under no_grad in the forward
    pass: a field that needs autograd inside must enable it itself. ``counter`` gets
    ``forward``, ``backward`` (VJPs; equal to forward) and ``recompute`` (rebuild evaluations)."""
    return _FixedAdjoint.apply(func, fixed_tableau(method), make_plan(times, step_size), counter,
                               z0, *tuple(params))


class _FixedAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, func: Field, tab: Tableau, plan: GridPlan, counter: Optional[object],
                z0: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        last = plan.needed[-1]
        ts = plan.stage_times(tab.c, z0)
        states = integrate(func, tab, z0, plan, set(plan.needed), stop=last, ts=ts)
        add_counts(counter, forward=last * tab.stages)
        out = gather(states, plan)
        # keep a state per output: the output itself if it is a grid state, else its left one
        kept = {n: states[n] for n, w in zip(plan.lo, plan.w) if w}
        kept[0] = z0
        ctx.func, ctx.tab, ctx.plan, ctx.counter, ctx.ts, ctx.kept = func, tab, plan, counter, ts, kept
        ctx.save_for_backward(out, *params)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        out, *params = ctx.saved_tensors
        plan, tab = ctx.plan, ctx.tab
        kept = dict(ctx.kept)
        for j, (n, w) in enumerate(zip(plan.lo, plan.w)):
            if not w and n not in kept:
                kept[n] = out[:, j]
        live = [i for i, p in enumerate(params) if p.requires_grad]
        wrt = tuple(params[i] for i in live)
        incoming = _grid_gradients(grad_out, plan)
        sums = [torch.zeros_like(p) for p in wrt]
        rerun = _Rerun(ctx.func, tab, plan, ctx.ts)
        last = plan.needed[-1]
        marks = sorted(n for n in kept if n < last)
        adj = incoming.pop(last)
        vjps = 0
        for p, q in reversed(list(zip(marks, marks[1:] + [last]))):
            for n, y_n in rerun.reverse(p, q, kept[p]):
                with torch.enable_grad():
                    y = y_n.detach().requires_grad_(True)
                    y1, _ = step(ctx.func, tab, y, plan.grid[n + 1] - plan.grid[n],
                                 ctx.ts[n * tab.stages:(n + 1) * tab.stages])
                    grads = torch.autograd.grad(y1, (y,) + wrt, adj, allow_unused=True)
                vjps += tab.stages
                adj = grads[0]
                if n in incoming:
                    adj = adj + incoming.pop(n)
                for acc, g in zip(sums, grads[1:]):
                    if g is not None:
                        acc.add_(g)
        add_counts(ctx.counter, backward=vjps, recompute=vjps + rerun.steps * tab.stages)
        grads_params = [None] * len(params)
        for i, g in zip(live, sums):
            grads_params[i] = g
        return (None, None, None, None, adj, *grads_params)


class _Rerun:
    """Yields the states of a gap in reverse by rerunning it from its first state (no_grad)."""

    def __init__(self, func: Field, tab: Tableau, plan: GridPlan, ts: list):
        self.func, self.tab, self.plan, self.ts = func, tab, plan, ts
        self.steps = 0

    def reverse(self, p: int, q: int, y_p: torch.Tensor) -> Iterator[Tuple[int, torch.Tensor]]:
        """(n, y_n) for n = q-1 down to p."""
        k = q - p
        if k <= STORE_ALL:
            marks, stride = range(p, q), 1
        else:                                    # checkpoints every ~sqrt(k), then recurse
            stride = math.isqrt(k - 1) + 1
            marks = range(p, q, stride)
        with torch.no_grad():
            states = integrate(self.func, self.tab, y_p, self.plan, set(marks), start=p,
                               stop=marks[-1], ts=self.ts)
        self.steps += marks[-1] - p
        for a in reversed(marks):
            if stride == 1:
                yield a, states.pop(a)
            else:
                yield from self.reverse(a, min(a + stride, q), states.pop(a))


def _grid_gradients(grad_out: torch.Tensor, plan: GridPlan) -> dict:
    """The outputs' gradients moved onto grid states through the interpolation weights (the
    transpose of :func:`gather`): ``{n: dL/dy_n}``."""
    acc: dict = {}

    def add(n: int, g: torch.Tensor) -> None:
        acc[n] = acc[n] + g if n in acc else g

    for j, (n, w) in enumerate(zip(plan.lo, plan.w)):
        g = grad_out[:, j]
        if w:
            add(n, g * (1.0 - w))
            add(n + 1, g * w)
        else:
            add(n, g)
    return acc
