"""Depth as a solver: the ResNet (Euler with a copy of the field per step) and
``odepipe compare``, which measures it against the Neural ODE trained by backprop and adjoint."""

from __future__ import annotations

from typing import Any

import odepipe

_HERE = __name__


@odepipe.hookimpl
def odepipe_register_solvers(register: odepipe.Register) -> None:
    register("resnet", f"{_HERE}.resnet:ResNetSolver")


@odepipe.hookimpl
def odepipe_register_commands(cli: Any) -> None:
    from .commands import compare

    cli.add_command(compare)
