"""Every ODE method as a solver of its own name, with or without the adjoint method.

Two backends behind one recipe section. ``backend: odepipe`` (the default) solves with the
bundle's own engine (:mod:`.engine`, written up in docs/solvers.md) wherever it has the method:
torchdiffeq's per-output writes make its backward O(T^2 B L) and its per-output interpolation
Python-bound, which cost ~20% of a whole spiral training step. ``backend: torchdiffeq`` keeps
torchdiffeq one override away, and serves the methods the engine lacks whatever ``backend`` says.
Either way the solver is batch-first, counts evaluations of the field (forward solve and
backward pass separately) and turns solver failures into errors that name the options that help.
"""

from __future__ import annotations

from typing import Annotated, Any, Dict, Literal, Optional

import torch
from torch import nn

import odepipe
from odepipe import Dynamics, Range, Solver

from . import engine

#: a fixed step: below 1e-6 a float32 time grid stops resolving it, and far above any time
#: span torchdiffeq's grid loses its first point
StepSize = Annotated[float, Range(ge=1e-6, le=1e3, example=0.05)]

#: more fixed steps than this in one solve is a recipe mistake (hours per solve), not a choice
MAX_FIXED_STEPS = 1e6

#: methods both backends have: the engine serves them under backend odepipe
ENGINE_ADAPTIVE = ("dopri5", "tsit5", "bosh3")
ENGINE_FIXED = ("euler", "midpoint", "heun3", "rk4")
#: fixed methods only the engine has (rk38 is the rule torchdiffeq calls rk4)
ENGINE_ONLY = ("heun2", "rk38", "rk4_classic")
_TORCHDIFFEQ_NAME = {"rk38": "rk4"}
#: methods only torchdiffeq has: they take the torchdiffeq path whatever ``backend`` says
TORCHDIFFEQ_ADAPTIVE = ("adaptive_heun", "fehlberg2", "dopri8")
TORCHDIFFEQ_FIXED = ("explicit_adams", "implicit_adams")

ADAPTIVE = ENGINE_ADAPTIVE + TORCHDIFFEQ_ADAPTIVE
FIXED = ENGINE_FIXED + ENGINE_ONLY + TORCHDIFFEQ_FIXED
assert set(ENGINE_ADAPTIVE) <= set(engine.ADAPTIVE_METHODS)
assert set(ENGINE_FIXED + ENGINE_ONLY) <= set(engine.FIXED_METHODS)


class _Counted(nn.Module):
    """Wraps a field for torchdiffeq and counts its evaluations into the owning solver."""

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


class _EngineCounts:
    """The engine's counter protocol (``forward``/``backward``/``recompute``, added to in place)
    written straight onto the solver's ``nfe_forward``/``nfe_backward``/``nfe_recompute``, so the
    adjoint's backward pass, which runs after ``forward`` returned, still counts into them."""

    def __init__(self, solver: "MethodSolver"):
        self.solver = solver

    @property
    def forward(self) -> int:
        return self.solver.nfe_forward

    @forward.setter
    def forward(self, value: int) -> None:
        self.solver.nfe_forward = value

    @property
    def backward(self) -> int:
        return self.solver.nfe_backward

    @backward.setter
    def backward(self, value: int) -> None:
        self.solver.nfe_backward = value

    @property
    def recompute(self) -> int:
        return self.solver.nfe_recompute

    @recompute.setter
    def recompute(self, value: int) -> None:
        self.solver.nfe_recompute = value


def _failure(method: str, text: str) -> odepipe.SolverError:
    return odepipe.SolverError(
        f"solver '{method}' failed: {text}. The dynamics became stiff or fast; try looser "
        f"tolerances (solver.rtol=1e-3 solver.atol=1e-4), a fixed-step method (solver=rk4 "
        f"solver.step_size=0.05), a larger solver.max_num_steps, or a smaller train.lr / "
        f"train.grad_clip"
    )


class MethodSolver(Solver):
    """One ODE method from odepipe's engine or torchdiffeq; subclasses fix ``method``.

    ``nfe_forward``: evaluations of the forward solve. ``nfe_backward``: with ``adjoint: true``,
    the field's vector-Jacobian products in the backward pass (the engine's fixed-grid adjoint:
    one per forward evaluation; torchdiffeq's adjoint: one per evaluation of its backward solve,
    each also evaluating the field, as the engine's do); else 0. ``nfe_recompute`` (engine
    adjoint only, not read by the trainer): the plain evaluations that rebuild the states the
    adjoint did not keep, i.e. one per VJP plus the no_grad reruns of output intervals longer
    than a chunk.
    """

    method = "dopri5"

    @odepipe.checked
    def __init__(
        self,
        rtol: Annotated[float, Range(gt=0, le=1)] = 1e-3,
        atol: Annotated[float, Range(gt=0)] = 1e-4,
        step_size: Optional[StepSize] = None,
        max_num_steps: Optional[Annotated[int, Range(ge=1, le=10**9)]] = None,
        adjoint: bool = False,
        backend: Literal["odepipe", "torchdiffeq"] = "odepipe",
    ):
        """Args: rtol, atol: tolerances of the adaptive methods. step_size: the fixed-step
        methods' step (null: one step per output interval). max_num_steps: the adaptive
        methods' cap (null: none; backend odepipe counts the steps of the whole solve,
        torchdiffeq those of each output interval). adjoint: get gradients from the adjoint
        instead of backpropagating through the steps (fixed-step methods on backend odepipe:
        the exact discrete adjoint, backward NFE = forward NFE; adaptive methods: always
        torchdiffeq's continuous adjoint, the engine has none). backend: odepipe (the bundle's
        engine) or torchdiffeq; adaptive_heun, fehlberg2, dopri8 and the Adams methods are
        always torchdiffeq's, heun2, rk38 and rk4_classic only odepipe's."""
        super().__init__()
        self.rtol, self.atol, self.adjoint, self.backend = rtol, atol, adjoint, backend
        self.step_size, self.max_num_steps = step_size, max_num_steps
        self.nfe_recompute = 0
        if (
            backend == "torchdiffeq"
            and self.method in ENGINE_ONLY
            and self.method not in _TORCHDIFFEQ_NAME
        ):
            raise odepipe.ModelError(
                f"solver '{self.method}' exists only in odepipe's engine; set "
                f"solver.backend=odepipe, or pick a torchdiffeq method (solver=heun3, rk4, ...)"
            )

    @property
    def uses_engine(self) -> bool:
        """Whether this solve goes through odepipe's engine (else torchdiffeq)."""
        if self.method in ENGINE_ONLY and self.method not in _TORCHDIFFEQ_NAME:
            return True
        if self.backend != "odepipe":
            return False
        if self.method in ENGINE_FIXED + ENGINE_ONLY:
            return True
        return self.method in ENGINE_ADAPTIVE and not self.adjoint

    def reset_nfe(self) -> None:
        super().reset_nfe()
        self.nfe_recompute = 0

    def forward(self, dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        times = times.to(z0)
        if self.method in FIXED:
            self._check_step_count(times)
        if self.uses_engine:
            return self._engine(dynamics, z0, times)
        return self._torchdiffeq(dynamics, z0, times)

    def _check_step_count(self, times: torch.Tensor) -> None:
        """Refuses a grid of more than a million fixed steps before building it."""
        if self.step_size is None or times.numel() < 2:
            return
        span = float(times[-1] - times[0])
        if span / self.step_size > MAX_FIXED_STEPS:
            raise odepipe.SolverError(
                f"solver.step_size={self.step_size:g} over the time span {span:g} makes "
                f"{span / self.step_size:.3g} fixed steps per solve (at most "
                f"{MAX_FIXED_STEPS:.0e}); raise solver.step_size (e.g. to {span / 1000:.3g}) or "
                f"set it to null for one step per output interval"
            )

    def _engine(self, dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        counts = _EngineCounts(self)
        try:
            if self.method in ENGINE_ADAPTIVE:
                return engine.solve_adaptive(
                    dynamics,
                    z0,
                    times,
                    self.method,
                    self.rtol,
                    self.atol,
                    self.max_num_steps,
                    counter=counts,
                )
            if self.adjoint:
                return engine.solve_fixed_adjoint(
                    dynamics,
                    z0,
                    times,
                    self.method,
                    tuple(dynamics.parameters()),
                    self.step_size,
                    counter=counts,
                )
            return engine.solve_fixed(
                dynamics, z0, times, self.method, self.step_size, counter=counts
            )
        except engine.SolverFailure as exc:
            raise _failure(self.method, str(exc)) from exc

    def _torchdiffeq(
        self, dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor
    ) -> torch.Tensor:
        import torchdiffeq

        if self.method == "tsit5":
            from .tsit5 import install

            install()
        field = _Counted(dynamics, self)
        odeint = torchdiffeq.odeint_adjoint if self.adjoint else torchdiffeq.odeint
        kwargs: Dict[str, Any] = dict(
            rtol=self.rtol,
            atol=self.atol,
            method=_TORCHDIFFEQ_NAME.get(self.method, self.method),
            options=self.options(),
        )
        if self.adjoint:
            kwargs["adjoint_params"] = tuple(dynamics.parameters())
        try:
            zs = odeint(field, z0, times, **kwargs)  # (T, B, L)
        except (AssertionError, RuntimeError) as exc:
            text = str(exc)
            if "underflow" in text or "max_num_steps" in text:
                raise _failure(self.method, text) from exc
            raise
        finally:
            field.forward_phase = False  # later calls come from the adjoint's backward solve
        return zs.transpose(0, 1)  # (B, T, L)

    def options(self) -> Dict[str, Any]:
        """The ``options`` torchdiffeq gets (benchmarks/pipeline_overhead.py reuses them)."""
        if self.method in FIXED:
            return {"step_size": self.step_size} if self.step_size else {}
        return {"max_num_steps": self.max_num_steps} if self.max_num_steps else {}


def _method_class(method: str) -> type:
    kind = "adaptive" if method in ADAPTIVE else "fixed-step"
    if method in ENGINE_ONLY:
        where = "odepipe's engine only" + (
            " (torchdiffeq's rk4 is the same rule)" if method in _TORCHDIFFEQ_NAME else ""
        )
    elif method in ENGINE_FIXED:
        where = (
            "odepipe's engine (backend: torchdiffeq for torchdiffeq's); adjoint: true is "
            "the engine's exact discrete adjoint, memory flat in the steps"
        )
    elif method in ENGINE_ADAPTIVE:
        where = (
            "odepipe's engine (backend: torchdiffeq for torchdiffeq's); adjoint: true "
            "always uses torchdiffeq's adjoint, O(1) memory in solver steps"
        )
    else:
        where = "torchdiffeq whatever backend says; adjoint: true gives O(1) memory in steps"
    doc = f"'{method}' ({kind}): {where}."
    return type(
        f"Solver_{method}",
        (MethodSolver,),
        {"method": method, "__doc__": doc, "__module__": __name__},
    )


SOLVERS = {m: _method_class(m) for m in ADAPTIVE + FIXED}
globals().update({cls.__name__: cls for cls in SOLVERS.values()})  # "module:Solver_rk4" refs
