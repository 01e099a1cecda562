"""``odepipe extrapolate``: predict a user's series forward with a trained series run.

Imported for every command line, so nothing heavy at module top: torch, numpy and matplotlib
are imported inside the commands.
"""
from __future__ import annotations

import os
from typing import Optional

import click

import odepipe


@click.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help="A finished run folder (from odepipe run).")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Seed series: a long-format CSV with the run's id, time and feature columns.")
@click.option("--until", required=True, type=float,
              help="Predict every series up to this time (in the file's time units).")
@click.option("--points", default=200, show_default=True, type=click.IntRange(min=2),
              help="Points of the predicted grid per series.")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="CSV to write (default RUN/extrapolations/<input>.csv); the plot goes "
                   "beside it as .png.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.pass_obj
def extrapolate(host: odepipe.PluginHost, run_dir: str, input_path: str, until: float, points: int, out: Optional[str],
                device: str) -> None:
    """Encode each series of INPUT and predict it forward to --until (generate_with_seed).

    Writes the prediction from each series' first time to --until as a CSV in the same long
    format as the input, and a plot of the observed points and predicted curves.
    """
    import numpy as np
    import torch

    from odepipe_plugins.series.series_io import plot_series, read_long_csv, write_long_csv

    _, data, model = odepipe.load_run(run_dir, device, host=host)
    source = odepipe.require_capability(
        data, odepipe.SeriesCodecSource, where=f"the run in {run_dir}", role="data source",
        command="extrapolate", fix="give a run of the csv, spiral or linear_spirals data sources")
    codec = source.series_codec()
    _, series = read_long_csv(
        input_path, codec.id_column, codec.time_column, codec.features, key="--input",
        fix_columns=f"use the run's columns ({codec.id_column}, {codec.time_column}, "
                    f"{', '.join(codec.features)})")
    late = [s.id for s in series if s.times[0] >= until]
    if late:
        raise click.BadParameter(f"series {', '.join(late[:5])} start at or after --until "
                                 f"{until:g}; give a later --until", param_hint="--until")
    seed = codec.to_batch(series).to(device)
    rel = np.stack([np.linspace(0.0, until - s.times[0], points) for s in series])  # (B, P)
    times = torch.tensor(rel / codec.time_scale, dtype=torch.float32, device=device)
    with torch.no_grad():
        pred = model.extrapolate(seed, times).cpu().numpy()  # (B, P, D)
    values = codec.decode_values(pred)
    absolute = rel + np.array([s.times[0] for s in series])[:, None]
    stem = os.path.splitext(os.path.basename(input_path))[0]
    out = out or os.path.join(odepipe.Run(run_dir).extrapolations_dir, f"{stem}.csv")
    ids = [s.id for s in series]
    write_long_csv(out, codec, ids, absolute, values)
    png = os.path.splitext(out)[0] + ".png"
    plot_series(png, codec, ids, absolute, values, observed=series,
                title=f"observed (points) and extrapolated to {codec.time_column}={until:g}")
    for s, v in zip(series, values):
        last = ", ".join(f"{k}={x:.3g}" for k, x in zip(codec.features, v[-1]))
        click.echo(f"{s.id}: {len(s.times)} observed up to {s.times[-1]:g}; at {until:g}: {last}")
    click.echo(f"wrote {out} ({len(series)} series x {points} points) and {png}")
