"""``odepipe compare``: ResNet vs Neural ODE (backprop and adjoint), time and memory against K.

Imported for every command line, so nothing heavy at module top; the measurement lives in
``odepipe_plugins.depth.compare`` and runs each configuration in a fresh process.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import click

import odepipe


def _int_list(ctx: click.Context, param: click.Parameter, value: str) -> list:
    try:
        ks = [int(k) for k in value.split(",") if k.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 10,100,1000, got "
                                 f"{value!r}") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter(f"every K must be >= 1, got {value!r}")
    return ks


@click.command()
@click.option("--layers", default="10,30,100,300,1000", show_default=True, callback=_int_list,
              help="Depths K to measure: ResNet layers = Euler steps of the ODE.")
@click.option("--methods", default="resnet,backprop,adjoint", show_default=True,
              help="Any of resnet, backprop, adjoint.")
@click.option("--steps", default=3, show_default=True, type=click.IntRange(min=1),
              help="Timed training steps per method and K (after one warm-up step).")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1),
              help="Spirals per training step.")
@click.option("--latent-dim", default=16, show_default=True, type=click.IntRange(min=1),
              help="Size of the latent state the field and each ResNet layer act on.")
@click.option("--hidden-size", default=64, show_default=True, type=click.IntRange(min=1),
              help="Width of the MLP vector field (each ResNet layer is one copy of it).")
@click.option("--out", default="compare", show_default=True, type=click.Path(file_okay=False),
              help="Folder for resnet_vs_ode.png and resnet_vs_ode.json.")
def compare(layers: list, methods: str, steps: int, batch_size: int, latent_dim: int,
            hidden_size: int, out: Optional[str]) -> None:
    """Time per training step and peak memory of a ResNet, an Euler Neural ODE trained by
    backprop through the solver, and the same ODE trained with the adjoint, for each depth K.

    Memory: each configuration in a fresh process, peak resident memory of its training steps
    over the baseline. Prints a table with ratios and the founding claims checked, and saves a
    plot of memory and time against K.
    """
    from .compare import METHODS, compare as measure, plot, table

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise odepipe.OdepipeError(f"--methods got {', '.join(unknown) or 'nothing'}; choose "
                                   f"from {', '.join(METHODS)}")
    rows = measure(layers, chosen, steps=steps, echo=click.echo, batch_size=batch_size,
                   latent_dim=latent_dim, hidden_size=hidden_size)
    click.echo(table(rows))
    os.makedirs(out, exist_ok=True)
    click.echo(f"plot: {plot(rows, os.path.join(out, 'resnet_vs_ode.png'))}")
    path = os.path.join(out, "resnet_vs_ode.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=1)
    click.echo(f"rows: {path}")
