"""The hooks odepipe finds through the entry point ``example = "odepipe_example.plugin"``.

Components are registered by ``"module:Class"`` reference: odepipe imports a module only when a
recipe uses its component, so this plugin costs nothing to other runs and ``odepipe --help``
stays fast (and free of torch) with it installed.
"""
from pathlib import Path

import odepipe


@odepipe.hookimpl
def odepipe_register_data_sources(register):
    register("damped_oscillator", "odepipe_example.oscillator:DampedOscillator")


@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("damped_linear", "odepipe_example.dynamics:DampedLinear")


@odepipe.hookimpl
def odepipe_register_decoders(register):
    register("student_t", "odepipe_example.decoders:StudentTDecoder",
             help="MLP mean with a heavy-tailed Student-t likelihood.")


@odepipe.hookimpl
def odepipe_register_commands(cli):
    from .command import oscillator

    cli.add_command(oscillator)


@odepipe.hookimpl
def odepipe_register_recipes(register):
    # shipped as package data (pyproject: [tool.setuptools.package-data]), so a wheel has it too
    register("oscillator", Path(__file__).parent / "oscillator.yaml")
