"""``odepipe oscillator``: print a noiseless damped-oscillator trajectory (no torch needed)."""
from __future__ import annotations

import math

import click


@click.command("oscillator")
@click.option("--omega", default=1.0, show_default=True, help="Natural frequency.")
@click.option("--damping", default=0.1, show_default=True, help="Damping ratio zeta, in [0, 1).")
@click.option("--points", default=5, show_default=True, help="Number of time points.")
@click.option("--t-max", default=10.0, show_default=True, help="Last time point.")
def oscillator(omega: float, damping: float, points: int, t_max: float) -> None:
    """Print t, x, v of a damped oscillator starting at x=1 (from the odepipe-example plugin)."""
    if not 0 <= damping < 1:
        raise click.BadParameter("must be in [0, 1)", param_hint="--damping")
    wd = omega * math.sqrt(1 - damping ** 2)
    click.echo("t,x,v")
    for i in range(points):
        t = t_max * i / max(points - 1, 1)
        decay = math.exp(-damping * omega * t)
        x = decay * math.cos(wd * t)
        v = decay * (-damping * omega * math.cos(wd * t) - wd * math.sin(wd * t))
        click.echo(f"{t:.4g},{x:.6f},{v:.6f}")
