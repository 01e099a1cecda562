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

#: the deepest K measured: a ResNet of K layers holds K copies of the field's weights
MAX_LAYERS = 10_000
#: timed steps per method and K, at most
MAX_STEPS = 1_000


def _int_list(ctx: click.Context, param: click.Parameter, value: str) -> list:
    try:
        ks = [int(k) for k in value.split(",") if k.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers like 10,100,1000, got {value!r}"
        ) from None
    if not ks or min(ks) < 1 or max(ks) > MAX_LAYERS:
        raise click.BadParameter(
            f"every K must be >= 1 and <= {MAX_LAYERS} (each ResNet layer "
            f"holds its own copy of the field), got {value!r}"
        )
    return ks


@click.command()
@click.option(
    "--layers",
    default="10,30,100,300,1000",
    show_default=True,
    callback=_int_list,
    help="Depths K to measure: ResNet layers = Euler steps of the ODE.",
)
@click.option(
    "--methods",
    default="resnet,backprop,adjoint",
    show_default=True,
    help="Any of resnet, backprop, adjoint.",
)
@click.option(
    "--steps",
    default=3,
    show_default=True,
    type=click.IntRange(1, MAX_STEPS),
    help="Timed training steps per method and K (after one warm-up step).",
)
@click.option(
    "--batch-size",
    default=128,
    show_default=True,
    type=click.IntRange(1, 4096),
    help="Spirals per training step.",
)
@click.option(
    "--latent-dim",
    default=16,
    show_default=True,
    type=click.IntRange(1, 4096),
    help="Size of the latent state the field and each ResNet layer act on.",
)
@click.option(
    "--hidden-size",
    default=64,
    show_default=True,
    type=click.IntRange(1, 4096),
    help="Width of the MLP vector field (each ResNet layer is one copy of it).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Folder for resnet_vs_ode.png and resnet_vs_ode.json (default "
    "runs/compare-<time>, beside the runs).",
)
def compare(
    layers: list,
    methods: str,
    steps: int,
    batch_size: int,
    latent_dim: int,
    hidden_size: int,
    out: Optional[str],
) -> None:
    """Time per training step and peak memory of a ResNet, an Euler Neural ODE trained by
    backprop through the solver, and the same ODE trained with the adjoint, for each depth K.

    Memory: each configuration in a fresh process, peak resident memory of its training steps
    over the baseline. Prints a table with ratios and the founding claims checked, and saves a
    plot of memory and time against K.
    """
    from .compare import METHODS, plot, table
    from .compare import compare as measure

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise odepipe.OdepipeError(
            f"--methods got {', '.join(unknown) or 'nothing'}; choose from {', '.join(METHODS)}"
        )
    out = out or odepipe.Run.default_path("compare")
    _writable(out)  # before minutes of measuring
    rows = measure(
        layers,
        chosen,
        steps=steps,
        echo=click.echo,
        batch_size=batch_size,
        latent_dim=latent_dim,
        hidden_size=hidden_size,
    )
    click.echo(table(rows))
    path = os.path.join(out, "resnet_vs_ode.json")
    try:
        click.echo(f"plot: {plot(rows, os.path.join(out, 'resnet_vs_ode.png'))}")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    except OSError as exc:
        raise odepipe.OdepipeError(
            f"cannot write into --out {out}: {exc.strerror or exc}; choose a writable --out"
        ) from None
    click.echo(f"rows: {path}")


def _writable(out: str) -> None:
    """Makes ``out`` or says why it cannot be written (a user's mistake: exit 2)."""
    try:
        os.makedirs(out, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise odepipe.OdepipeError(
            f"cannot write into --out {out}: {exc.strerror or exc}; choose a writable --out"
        ) from None
