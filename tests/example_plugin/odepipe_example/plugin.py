"""The hooks odepipe finds through the entry point ``example = "odepipe_example.plugin"``.

Kept free of torch at import time: component modules are imported inside the hooks, so
``odepipe --help`` stays fast with this plugin installed.
"""
import odepipe


@odepipe.hookimpl
def odepipe_register_data_sources(register):
    from .oscillator import DampedOscillator

    register("damped_oscillator", DampedOscillator)


@odepipe.hookimpl
def odepipe_register_dynamics(register):
    from .dynamics import DampedLinear

    register("damped_linear", DampedLinear)


@odepipe.hookimpl
def odepipe_register_decoders(register):
    from .decoders import StudentTDecoder

    register("student_t", StudentTDecoder, help="MLP mean with a heavy-tailed Student-t likelihood.")


@odepipe.hookimpl
def odepipe_register_commands(cli):
    from .command import oscillator

    cli.add_command(oscillator)
