"""Step-size control for the adaptive loop: initial step, error norm, next-step factor.

The defaults reproduce torchdiffeq's choices (``misc.py``) so that at the same rtol/atol the two
take the same steps: Hairer-Norsett-Wanner's initial-step heuristic with torchdiffeq's
``order - 1``, an RMS norm of ``err / (atol + rtol * max(|y0|, |y1|))`` over the whole state
(batch included), and an integral ("I") controller ``safety * ratio^(-1/order)`` clipped to
[dfactor, ifactor] (no shrink cap on accepted steps). A PI controller (Gustafsson/Hairer:
exponents 0.7/order and 0.4/order) is offered as ``controller="pi"``; it smooths step sequences
on mildly stiff fields, at the price of no longer matching torchdiffeq step for step.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

SAFETY, IFACTOR, DFACTOR = 0.9, 10.0, 0.2


def rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean().sqrt()


@torch.no_grad()
def error_ratio(
    err: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, rtol: float, atol: float
) -> float:
    """The RMS error relative to the mixed tolerance, as a Python float (one host sync).

    NaN when the trial state ``y1`` is not finite, even where the error estimate is (an inf
    in y1 makes the tolerance inf and the plain ratio 0, which would accept the step): the
    ``0 * sum(y1)`` term costs one reduction instead of a separate isfinite pass and sync."""
    tol = torch.maximum(y0.abs(), y1.abs()).mul_(rtol).add_(atol)
    return float(rms(err.div_(tol)) + 0.0 * y1.sum())


@torch.no_grad()
def initial_step(
    func: Callable,
    t0: float,
    y0: torch.Tensor,
    f0: torch.Tensor,
    order: int,
    rtol: float,
    atol: float,
) -> float:
    """Hairer et al. (Solving ODEs I, II.4) as torchdiffeq computes it, in y0's dtype; costs one
    evaluation of ``func``. ``order`` is the method's order (torchdiffeq passes order - 1 and
    takes the (order)-th root; so does this)."""
    scale = atol + y0.abs() * rtol
    d0, d1 = rms(y0 / scale), rms(f0 / scale)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = torch.tensor(1e-6, dtype=y0.dtype, device=y0.device)
    else:
        h0 = 0.01 * d0 / d1
    t1 = torch.as_tensor(t0, dtype=torch.float64, device="cpu") + h0.double().cpu()
    f1 = func(t1.to(device=y0.device, dtype=y0.dtype), y0 + h0 * f0)
    d2 = rms((f1 - f0) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = torch.clamp(h0 * 1e-3, min=1e-6)
    else:
        h1 = (0.01 / torch.maximum(d1, d2)) ** (1.0 / order)
    return float(torch.minimum(100 * h0, h1))


class Controller:
    """Next step size from the error ratio; ``kind`` "i" (torchdiffeq's) or "pi"."""

    def __init__(
        self,
        order: int,
        kind: str = "i",
        safety: float = SAFETY,
        ifactor: float = IFACTOR,
        dfactor: float = DFACTOR,
    ):
        if kind not in ("i", "pi"):
            raise ValueError(f"controller must be 'i' or 'pi', got {kind!r}")
        self.order, self.kind = order, kind
        self.safety, self.ifactor, self.dfactor = safety, ifactor, dfactor
        self.previous: Optional[float] = None  # last accepted ratio, for the PI term

    def factor(self, ratio: float) -> float:
        accepted = ratio <= 1.0
        if ratio == 0.0:
            return self.ifactor
        floor = 1.0 if ratio < 1.0 else self.dfactor
        if self.kind == "pi" and accepted and self.previous is not None:
            raw = self.safety * ratio ** (-0.7 / self.order) * self.previous ** (0.4 / self.order)
        else:
            raw = self.safety / ratio ** (1.0 / self.order)
        if accepted:
            self.previous = max(ratio, 1e-4)
        return min(self.ifactor, max(raw, floor))
