"""Commands that use a trained run: ``odepipe extrapolate`` and ``odepipe sample``.

Imported for every command line, so nothing heavy at module top: torch, numpy and matplotlib
are imported inside the commands.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

import click

import odepipe


def _load(run_dir: str, device: str) -> Any:
    from odepipe.runs import load_run

    return load_run(run_dir, device)


def _check_preprocessing(run_dir: str, data: Any) -> None:
    """Refuses a run whose data file changed since training (normalization would differ)."""
    state = getattr(data, "state", None)
    path = os.path.join(run_dir, "summary.json")
    if not callable(state) or not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        recorded = json.load(f).get("data")
    now = state()
    if recorded is not None and {k: recorded.get(k) for k in now} != now:
        raise odepipe.DataError(
            f"the run in {run_dir} was trained with preprocessing {recorded}, but its data file "
            f"now gives {now}; the file changed after training. Restore it, or train again")


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
def extrapolate(run_dir: str, input_path: str, until: float, points: int, out: Optional[str],
                device: str) -> None:
    """Encode each series of INPUT and predict it forward to --until (generate_with_seed).

    Writes the prediction from each series' first time to --until as a CSV in the same long
    format as the input, and a plot of the observed points and predicted curves.
    """
    import numpy as np
    import torch

    from odepipe_plugins.series_io import plot_series, read_long_csv, write_long_csv

    _, data, model = _load(run_dir, device)
    if not callable(getattr(data, "series_codec", None)):
        raise odepipe.DataError(
            f"the run in {run_dir} uses data source {type(data).__name__}, which does not read "
            f"series from CSV; extrapolate works with runs of the csv, spiral and "
            f"linear_spirals sources")
    _check_preprocessing(run_dir, data)
    codec = data.series_codec()
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
    out = out or os.path.join(run_dir, "extrapolations", f"{stem}.csv")
    ids = [s.id for s in series]
    write_long_csv(out, codec, ids, absolute, values)
    png = os.path.splitext(out)[0] + ".png"
    plot_series(png, codec, ids, absolute, values, observed=series,
                title=f"observed (points) and extrapolated to {codec.time_column}={until:g}")
    for s, v in zip(series, values):
        last = ", ".join(f"{k}={x:.3g}" for k, x in zip(codec.features, v[-1]))
        click.echo(f"{s.id}: {len(s.times)} observed up to {s.times[-1]:g}; at {until:g}: {last}")
    click.echo(f"wrote {out} ({len(series)} series x {points} points) and {png}")


@click.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help="A finished run folder (from odepipe run).")
@click.option("-n", "n", default=5, show_default=True, type=click.IntRange(min=1),
              help="Number of draws from the prior.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for files the data source writes (series: samples.csv, samples.png).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the draws.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def sample(run_dir: str, n: int, out_dir: Optional[str], seed: int, device: str) -> None:
    """Decode N draws z0 ~ N(0, I) of a trained run, one printed line per draw."""
    import torch

    _, data, model = _load(run_dir, device)
    torch.manual_seed(seed)
    for line in data.sample(model, n, out_dir):
        click.echo(line)


@odepipe.hookimpl
def odepipe_register_commands(cli: Any) -> None:
    cli.add_command(extrapolate)
    cli.add_command(sample)
