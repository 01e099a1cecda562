"""The latent ODE's stages: recurrent encoders, MLP vector fields, ODE solvers, Gaussian
decoders for series."""

from __future__ import annotations

import odepipe

_HERE = __name__

#: method names served by :mod:`.solvers` (odepipe's engine or torchdiffeq; see its docstring).
#: Listed here, not imported from there, so registering imports neither torch nor torchdiffeq.
SOLVER_METHODS = (
    "dopri5",
    "tsit5",
    "bosh3",
    "adaptive_heun",
    "fehlberg2",
    "dopri8",
    "euler",
    "midpoint",
    "heun2",
    "heun3",
    "rk4",
    "rk38",
    "rk4_classic",
    "explicit_adams",
    "implicit_adams",
)


@odepipe.hookimpl
def odepipe_register_encoders(register: odepipe.Register) -> None:
    register("rnn", f"{_HERE}.encoders:ElmanEncoder")
    register("gru", f"{_HERE}.encoders:GRUEncoder")
    register("lstm", f"{_HERE}.encoders:LSTMEncoder")
    # no latent path (a plain language model): a declaration the Pipeline acts on, so core's
    register("none", "odepipe.pipeline:NoLatent")


@odepipe.hookimpl
def odepipe_register_dynamics(register: odepipe.Register) -> None:
    register("mlp", f"{_HERE}.dynamics:MLPDynamics")
    # dz/dt = 0, z(t) = z0 (the ablation with the ODE off): the Pipeline skips the solve
    register("zero", "odepipe.pipeline:ZeroDynamics")


@odepipe.hookimpl
def odepipe_register_solvers(register: odepipe.Register) -> None:
    for method in SOLVER_METHODS:
        register(method, f"{_HERE}.solvers:Solver_{method}")


@odepipe.hookimpl
def odepipe_register_decoders(register: odepipe.Register) -> None:
    register("mlp", f"{_HERE}.decoders:MLPDecoder")
    register("linear", f"{_HERE}.decoders:LinearDecoder")
