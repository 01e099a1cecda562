"""Irregularly sampled series: the ODE-RNN encoder and the RNN baseline it is compared with."""
from __future__ import annotations

import odepipe

_HERE = __name__


@odepipe.hookimpl
def odepipe_register_encoders(register: odepipe.Register) -> None:
    register("odernn", f"{_HERE}.odernn:ODERNNEncoder")


@odepipe.hookimpl
def odepipe_register_solvers(register: odepipe.Register) -> None:
    register("gru_baseline", f"{_HERE}.rnn_baseline:GRUBaseline")
