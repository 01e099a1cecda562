"""A discrete adjoint for fixed-grid solves: backprop's gradients, memory flat in steps.

Discretise-then-optimise: the backward pass walks the forward grid in reverse, chunk by chunk
(at most ``chunk_steps`` steps each), rebuilds each chunk's graph from its first state and pulls
the adjoint through it with one ``autograd.grad``: one vector-Jacobian product per forward stage
evaluation, so backward NFE == forward NFE, and the gradients are backprop's through the same
scheme up to float rounding (not the O(h^p) approximation of a continuous adjoint, whose
reverse-time state reconstruction also drifts on dissipative fields).

Memory. The forward (no_grad) keeps one state per output: the output itself when it sits on the
grid, else the grid state just before it. Chunks run between kept states, several short output
intervals merged into one chunk; an interval longer than a chunk is first rerun under no_grad
keeping only its chunk starts (at most ``STORE_ALL`` of them; longer intervals get one more
level of such checkpoints and one more rerun). Peak: the outputs and their gradient (T states
each), the kept states, those chunk starts, and one chunk's graph, whatever the number of steps;
backprop instead holds every stage's activations of every step. Compute: the field is evaluated
again to rebuild each chunk (``counter.recompute``, with the reruns); chunks of several steps
amortise the cost of an ``autograd.grad`` call, which is what a per-step adjoint pays most for
on small batches.
"""

from __future__ import annotations

import math
from typing import Iterator, List, Optional, Sequence, Tuple

import torch

from .errors import add_counts
from .fixed import fixed_tableau, integrate
from .grid import GridPlan, gather, make_plan
from .stepper import Field, step
from .tableaus import Tableau

#: an interval is rerun keeping at most this many chunk starts; beyond, a level is added
STORE_ALL = 32


def solve_fixed_adjoint(
    func: Field,
    z0: torch.Tensor,
    times: torch.Tensor,
    method: str = "rk4",
    params: Sequence[torch.Tensor] = (),
    step_size: Optional[float] = None,
    counter: Optional[object] = None,
    chunk_steps: int = 8,
) -> torch.Tensor:
    """:func:`solve_fixed` (same grid, same outputs to the bit) differentiated by the discrete
    adjoint. ``params``: the tensors ``func`` uses that need gradients (torchdiffeq's
    ``adjoint_params``; tensors not listed get none). ``func`` runs under no_grad in the forward
    pass: a field that needs autograd inside must enable it itself. ``counter`` gets
    ``forward``, ``backward`` (VJPs; equal to forward) and ``recompute`` (rebuild evaluations).
    ``chunk_steps``: steps whose graph the backward holds at once (memory vs. per-call cost)."""
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
    return _FixedAdjoint.apply(
        func,
        fixed_tableau(method),
        make_plan(times, step_size),
        counter,
        int(chunk_steps),
        z0,
        *tuple(params),
    )


class _FixedAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        func: Field,
        tab: Tableau,
        plan: GridPlan,
        counter: Optional[object],
        chunk: int,
        z0: torch.Tensor,
        *params: torch.Tensor,
    ) -> torch.Tensor:
        last = plan.needed[-1]
        ts = plan.stage_times(tab.c, z0)
        states = integrate(func, tab, z0, plan, set(plan.needed), stop=last, ts=ts)
        add_counts(counter, forward=last * tab.stages)
        out = gather(states, plan)
        # keep a state per output: the output itself if it is a grid state, else its left one
        kept = {n: states[n] for n, w in zip(plan.lo, plan.w) if w and n}
        ctx.func, ctx.tab, ctx.plan, ctx.counter, ctx.chunk = func, tab, plan, counter, chunk
        ctx.ts, ctx.kept = ts, kept
        ctx.save_for_backward(out, z0, *params)  # saved: in-place edits are caught
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        out, z0, *params = ctx.saved_tensors
        plan, tab, s = ctx.plan, ctx.tab, ctx.tab.stages
        kept = dict(ctx.kept)
        kept[0] = z0
        for j, (n, w) in enumerate(zip(plan.lo, plan.w)):
            if not w and n not in kept:
                kept[n] = out[:, j]
        live = [i for i, p in enumerate(params) if p.requires_grad]
        wrt = tuple(params[i] for i in live)
        incoming = _grid_gradients(grad_out, plan)
        last = plan.needed[-1]
        adj = incoming.pop(last)
        sums: List[Optional[torch.Tensor]] = [None] * len(wrt)
        rerun = _Rerun(ctx.func, tab, plan, ctx.ts, ctx.chunk)
        for p, q in reversed(_segments(sorted(n for n in kept if n < last), last, ctx.chunk)):
            for a, b, y_a in rerun.pieces(p, q, kept[p]):
                with torch.enable_grad():
                    y = y_a.detach().requires_grad_(True)
                    cur, sinks, sink_grads = y, [], []
                    for n in range(a, b):
                        cur, _ = step(
                            ctx.func,
                            tab,
                            cur,
                            plan.grid[n + 1] - plan.grid[n],
                            ctx.ts[n * s : (n + 1) * s],
                        )
                        if n + 1 < b and n + 1 in incoming:
                            sinks.append(cur)
                            sink_grads.append(incoming.pop(n + 1))
                    grads = torch.autograd.grad(
                        [cur] + sinks, (y,) + wrt, [adj] + sink_grads, allow_unused=True
                    )
                adj = grads[0]
                if a in incoming:
                    adj = adj + incoming.pop(a)
                for i, g in enumerate(grads[1:]):
                    if g is not None:
                        sums[i] = g if sums[i] is None else sums[i] + g
        vjps = last * s
        add_counts(ctx.counter, backward=vjps, recompute=vjps + rerun.steps * s)
        grads_params: List[Optional[torch.Tensor]] = [None] * len(params)
        for i, g, p in zip(live, sums, wrt):
            grads_params[i] = torch.zeros_like(p) if g is None else g
        return (None, None, None, None, None, adj, *grads_params)


def _segments(marks: List[int], last: int, chunk: int) -> List[Tuple[int, int]]:
    """[p, q) pieces of [0, last) in order, each starting on a kept state (``marks``): runs of
    short output intervals merged up to ``chunk`` steps, longer intervals alone."""
    out: List[Tuple[int, int]] = []
    a = prev = marks[0]
    for q in marks[1:] + [last]:
        p = prev
        if q - a <= chunk:  # the current chunk can take this interval too
            prev = q
            continue
        if a < p:
            out.append((a, p))
        if q - p > chunk:  # a long interval: its own segment, split later
            out.append((p, q))
            a = q
        else:
            a = p
        prev = q
    if a < last:
        out.append((a, last))
    return out


class _Rerun:
    """Splits a long interval into chunks, rerunning it under no_grad for their first states."""

    def __init__(self, func: Field, tab: Tableau, plan: GridPlan, ts: list, chunk: int):
        self.func, self.tab, self.plan, self.ts, self.chunk = func, tab, plan, ts, chunk
        self.steps = 0

    def pieces(self, p: int, q: int, y_p: torch.Tensor) -> Iterator[Tuple[int, int, torch.Tensor]]:
        """(a, b, y_a) for chunks covering [p, q), last chunk first, each <= ``chunk`` steps."""
        k = q - p
        n = math.ceil(k / self.chunk)
        if n == 1:
            yield p, q, y_p
            return
        if n <= STORE_ALL:  # balanced chunks, their starts from one rerun
            size, nested = math.ceil(k / n), False
        else:  # super-chunks of whole chunks, then recurse
            size, nested = self.chunk * math.ceil(n / STORE_ALL), True
        starts = range(p, q, size)
        with torch.no_grad():
            states = integrate(
                self.func,
                self.tab,
                y_p,
                self.plan,
                set(starts),
                start=p,
                stop=starts[-1],
                ts=self.ts,
            )
        self.steps += starts[-1] - p
        for a in reversed(starts):
            b = min(a + size, q)
            if nested:
                yield from self.pieces(a, b, states.pop(a))
            else:
                yield a, b, states.pop(a)


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
