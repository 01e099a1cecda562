"""Series data: the spirals, random linear spirals, the user's own long-format CSV; and the
commands that use a trained series run (``odepipe extrapolate``)."""

from __future__ import annotations

from typing import Any

import odepipe

_HERE = __name__


@odepipe.hookimpl
def odepipe_register_data_sources(register: odepipe.Register) -> None:
    register("spiral", f"{_HERE}.spiral:SpiralData")
    register("linear_spirals", f"{_HERE}.linear_spirals:LinearSpiralData")
    register("csv", f"{_HERE}.csv_source:CSVData")


@odepipe.hookimpl
def odepipe_register_commands(cli: Any) -> None:
    from .commands import extrapolate

    cli.add_command(extrapolate)
