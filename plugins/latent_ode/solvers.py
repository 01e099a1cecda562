"""Every torchdiffeq method as a solver of its own name, with or without the adjoint method.

torchdiffeq works time-first and wants an ``nn.Module`` for the adjoint; this wrapper converts
to batch-first, counts evaluations of the field (forward solve and adjoint backward solve
separately) and turns solver failures into errors that name the options that help.
"""
from __future__ import annotations

from typing import Annotated, Any, Dict, Optional

import torch
from torch import nn

import odepipe
from odepipe import Dynamics, Range, Solver

#: a fixed step: below 1e-6 a float32 time grid stops resolving it, and far above any time
#: span torchdiffeq's grid loses its first point
StepSize = Annotated[float, Range(ge=1e-6, le=1e3, example=0.05)]

ADAPTIVE = ("dopri5", "tsit5", "bosh3", "adaptive_heun", "fehlberg2", "dopri8")
FIXED = ("euler", "midpoint", "heun3", "rk4", "explicit_adams", "implicit_adams")


class _Counted(nn.Module):
    """Wraps a field and counts its evaluations into the owning solver's counters."""

    def __init__(self, dynamics: Dynamics, solver: Solver):
        super().__init__()
        self.dynamics = dynamics
        self.__dict__["solver"] = solver  # not a submodule: no parameter cycle
        self.forward_phase = True

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.forward_phase:
            self.solver.nfe_forward += 1
        else:
            self.solver.nfe_backward += 1
        return self.dynamics(t, z)


class TorchdiffeqSolver(Solver):
    """A torchdiffeq method; subclasses fix ``method``."""

    method = "dopri5"

    @odepipe.checked
    def __init__(self, rtol: Annotated[float, Range(gt=0, le=1)] = 1e-3,
                 atol: Annotated[float, Range(gt=0)] = 1e-4,
                 step_size: Optional[StepSize] = None,
                 max_num_steps: Optional[Annotated[int, Range(ge=1, le=10**9)]] = None,
                 adjoint: bool = False):
        """Args: rtol, atol: tolerances of the adaptive methods. step_size: the fixed-step
        methods' step (null: one step per output interval). max_num_steps: the adaptive
        methods' cap (null: torchdiffeq's). adjoint: solve the adjoint ODE backwards instead
        of backpropagating through the steps."""
        super().__init__()
        self.rtol, self.atol, self.adjoint = rtol, atol, adjoint
        self.step_size, self.max_num_steps = step_size, max_num_steps

    def options(self) -> Dict[str, Any]:
        if self.method in FIXED:
            return {"step_size": self.step_size} if self.step_size else {}
        return {"max_num_steps": self.max_num_steps} if self.max_num_steps else {}

    def forward(self, dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        import torchdiffeq

        if self.method == "tsit5":
            from .tsit5 import install

            install()
        field = _Counted(dynamics, self)
        odeint = torchdiffeq.odeint_adjoint if self.adjoint else torchdiffeq.odeint
        kwargs: Dict[str, Any] = dict(rtol=self.rtol, atol=self.atol, method=self.method,
                                      options=self.options())
        if self.adjoint:
            kwargs["adjoint_params"] = tuple(dynamics.parameters())
        try:
            zs = odeint(field, z0, times.to(z0), **kwargs)  # (T, B, L)
        except (AssertionError, RuntimeError) as exc:
            text = str(exc)
            if "underflow" in text or "max_num_steps" in text:
                raise odepipe.SolverError(
                    f"solver '{self.method}' failed: {text}. The dynamics became stiff or fast; "
                    f"try looser tolerances (solver.rtol=1e-3 solver.atol=1e-4), a fixed-step "
                    f"method (solver=rk4 solver.step_size=0.05), a larger solver.max_num_steps, "
                    f"or a smaller train.lr / train.grad_clip") from exc
            raise
        finally:
            field.forward_phase = False  # later calls come from the adjoint's backward solve
        return zs.transpose(0, 1)  # (B, T, L)


def _method_class(method: str) -> type:
    kind = "adaptive" if method in ADAPTIVE else "fixed-step"
    doc = f"torchdiffeq '{method}' ({kind}); adjoint: true gives O(1) memory in solver steps."
    return type(f"Solver_{method}", (TorchdiffeqSolver,), {"method": method, "__doc__": doc,
                                                            "__module__": __name__})


SOLVERS = {m: _method_class(m) for m in ADAPTIVE + FIXED}
globals().update({cls.__name__: cls for cls in SOLVERS.values()})  # "module:Solver_rk4" refs
