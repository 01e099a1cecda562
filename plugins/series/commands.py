"""``odepipe extrapolate``: predict a user's series forward with a trained series run.

Imported for every command line, so nothing heavy at module top: torch, numpy and matplotlib
are imported inside the commands.
"""

from __future__ import annotations

import math
import os
from typing import Any, List, Optional

import click

import odepipe

#: predicted points per series that --points accepts
MAX_POINTS = 1_000_000
#: predicted points over all series together: the CSV has one row per point (about 30 bytes),
#: and the prediction keeps about 1 KB per point while it is decoded (8 posterior draws of the
#: latent path, the decoder's hidden layers, mean and std), so about 2 GB at the most
MAX_TOTAL_POINTS = 2_000_000


class FiniteFloat(click.ParamType):
    """A float that is neither NaN nor infinite (click's FLOAT accepts both)."""

    name = "number"

    def convert(
        self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]
    ) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(
                f"{value!r} is not a finite number; give a time in the input file's "
                f"units, after the series' last observed time, e.g. --until 15",
                param,
                ctx,
            )
        return float(number)


@click.command()
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A finished run folder (from odepipe run); its kept weights are used "
    "(best.pt with train.keep=best, else checkpoint.pt).",
)
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Seed series: a long-format CSV with the run's id, time and feature columns.",
)
@click.option(
    "--until",
    required=True,
    type=FiniteFloat(),
    help="Predict every series up to this time (in the file's time units), after "
    "the last observed time of every series.",
)
@click.option(
    "--points",
    default=200,
    show_default=True,
    type=click.IntRange(1, MAX_POINTS),
    help=f"Points of the predicted grid per series, from its first time to --until "
    f"(1: --until alone); at most {MAX_TOTAL_POINTS:,} over all series.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="CSV to write (default RUN/extrapolations/<input>.csv); the plot goes beside it as .png.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.pass_obj
def extrapolate(
    host: odepipe.PluginHost,
    run_dir: str,
    input_path: str,
    until: float,
    points: int,
    out: Optional[str],
    device: str,
) -> None:
    """Encode each series of INPUT and predict it forward to --until (generate_with_seed).

    Writes the prediction from each series' first time to --until as a CSV in the same long
    format as the input, and a plot of the observed points and predicted curves.
    """
    import numpy as np
    import torch
    from odepipe_plugins.series.csv_source import MAX_POINTS as MAX_SERIES_ROWS
    from odepipe_plugins.series.predictive import (
        PLOT_SAMPLES,
        posterior_predictive,
        std_in_data_units,
    )
    from odepipe_plugins.series.series_io import read_long_csv, write_long_csv
    from odepipe_plugins.series.series_plot import Panel, plot_series

    _, data, model = odepipe.load_run(run_dir, device, host=host)
    source = odepipe.require_capability(
        data,
        odepipe.SeriesCodecSource,
        where=f"the run in {run_dir}",
        role="data source",
        command="extrapolate",
        fix="give a run of the csv, spiral or linear_spirals data sources",
    )
    codec = source.series_codec()
    _, series = read_long_csv(
        input_path,
        codec.id_column,
        codec.time_column,
        codec.features,
        key="--input",
        fix_columns=f"use the run's columns ({codec.id_column}, {codec.time_column}, "
        f"{', '.join(codec.features)})",
        max_points=getattr(source, "max_points", MAX_SERIES_ROWS),
    )
    last = max(series, key=lambda s: s.times[-1])
    if until <= last.times[-1]:
        raise click.BadParameter(
            f"series {last.id} is observed up to {codec.time_column} {last.times[-1]:g}, at or "
            f"after --until {until:g}; give a later --until (e.g. {_later(series):g}) to "
            f"predict past what every series shows",
            param_hint="--until",
        )
    if len(series) * points > MAX_TOTAL_POINTS:
        raise click.BadParameter(
            f"{len(series)} series x {points} points is more than {MAX_TOTAL_POINTS:,} predicted "
            f"points (about 1 KB each while decoded); give --points "
            f"{max(1, MAX_TOTAL_POINTS // len(series))} or fewer, or split --input",
            param_hint="--points",
        )
    stem = os.path.splitext(os.path.basename(input_path))[0]
    out = out or os.path.join(odepipe.Run(run_dir).extrapolations_dir, f"{stem}.csv")
    png = os.path.splitext(out)[0] + ".png"
    _check_writable(out, png)
    seed = codec.to_batch(series).to(device)
    rel = np.stack(
        [
            np.linspace(0.0, until - s.times[0], points)
            if points > 1
            else np.array([until - s.times[0]])
            for s in series
        ]
    )  # (B, P)
    times = torch.tensor(rel / codec.time_scale, dtype=torch.float32, device=device)
    with torch.no_grad():
        pred = model.extrapolate(seed, times).cpu().numpy()  # (B, P, D)
    values = codec.decode_values(pred)
    band_mean, band_std = posterior_predictive(model, seed, times)
    absolute = rel + np.array([s.times[0] for s in series])[:, None]
    ids = [s.id for s in series]
    try:
        write_long_csv(out, codec, ids, absolute, values)
        plot_series(
            png,
            codec,
            [
                Panel(
                    s.id,
                    absolute[i],
                    codec.decode_values(band_mean[i].numpy()),
                    std_in_data_units(codec, band_mean[i].numpy(), band_std[i].numpy()),
                    seen=s,
                    seen_until=float(s.times[-1]),
                )
                for i, s in enumerate(series)
            ],
            title=f"{os.path.basename(input_path)}: observed (shaded), then predicted to "
            f"{codec.time_column}={until:g}\n(mean of {PLOT_SAMPLES} posterior draws of "
            f"z0 ± 1 predictive std; the CSV holds the prediction at the posterior mean)",
        )
    except OSError as exc:
        raise odepipe.CheckpointError(_unwritable(out, exc)) from None
    for s, v in zip(series, values):
        end = ", ".join(f"{k}={x:.3g}" for k, x in zip(codec.features, v[-1]))
        click.echo(f"{s.id}: {len(s.times)} observed up to {s.times[-1]:g}; at {until:g}: {end}")
    click.echo(f"wrote {out} ({len(series)} series x {points} points) and {png}")


def _later(series: Any) -> float:
    """A suggested --until: past every series' end by half the longest span."""
    end = max(s.times[-1] for s in series)
    span = max(s.times[-1] - s.times[0] for s in series)
    return float(end + max(span / 2, 1.0))


def _check_writable(*paths: str) -> None:
    """Creates the outputs' folder and checks it takes files, before any prediction is made,
    so an unwritable --out costs no model time and leaves nothing behind."""
    for path in paths:
        folder = os.path.dirname(os.path.abspath(path))
        blocker = next(
            (p for p in _parents(folder) if os.path.exists(p) and not os.path.isdir(p)), None
        )
        if blocker is not None:
            raise odepipe.CheckpointError(
                _unwritable(path, NotADirectoryError(f"{blocker} is a file, not a folder"))
            )
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise odepipe.CheckpointError(_unwritable(path, exc)) from None
        if os.path.isdir(path):
            raise odepipe.CheckpointError(
                f"--out {path}: is a folder; give the path of the "
                f"CSV to write, e.g. --out {path}/prediction.csv"
            )
        if not os.access(folder, os.W_OK) or (
            os.path.exists(path) and not os.access(path, os.W_OK)
        ):
            raise odepipe.CheckpointError(_unwritable(path, PermissionError("permission denied")))


def _parents(folder: str) -> List[str]:
    """``folder`` and the folders above it, nearest first."""
    chain = [folder]
    while os.path.dirname(chain[-1]) != chain[-1]:
        chain.append(os.path.dirname(chain[-1]))
    return chain


def _unwritable(path: str, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return (
        f"cannot write the prediction to {path} ({reason}); nothing was written. Give "
        f"--out a CSV path in a folder you can write to, e.g. --out ./prediction.csv"
    )
