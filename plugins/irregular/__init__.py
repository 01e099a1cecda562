"""Irregularly sampled series: the ODE-RNN encoder, the RNN baseline it is compared with, and
the spirals scored by the paper's protocol (interpolation and extrapolation)."""

from __future__ import annotations

import odepipe

_HERE = __name__


@odepipe.hookimpl
def odepipe_register_encoders(register: odepipe.Register) -> None:
    register("odernn", f"{_HERE}.odernn:ODERNNEncoder")


@odepipe.hookimpl
def odepipe_register_solvers(register: odepipe.Register) -> None:
    register("gru_baseline", f"{_HERE}.rnn_baseline:GRUBaseline")


@odepipe.hookimpl
def odepipe_register_data_sources(register: odepipe.Register) -> None:
    register("irregular_spiral", f"{_HERE}.spirals:IrregularSpiralData")
