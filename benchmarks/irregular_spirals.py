"""Irregular spirals by the Neural ODE paper's protocol (Chen et al. 2018, section 5.1, Table 2):
the latent ODE with an ODE-RNN encoder, the latent ODE with a GRU encoder and the RNN baseline,
for 30, 50 and 100 observed points, the same number of training steps each, over seeds; the
table (median and range over seeds per cell) is printed beside the paper's.

The protocol (docs/irregular.md has the long form):

- data: the spirals of torchdiffeq's latent ODE example (noise std 0.3; 1000 training, 100
  validation and 200 test spirals). Each spiral's window is its first 100 grid points (the
  paper's "100 equally-spaced timesteps"); the 100 points after it are its continuation.
- observed: n = 30, 50 or 100 of the window's 100 points per spiral, drawn at random without
  replacement, a different draw for every spiral (``data.n_irregular``); in training the model
  sees and is scored on those points only, like the paper.
- predicted: from those n points, encoded to the posterior mean of z0 and decoded along the
  latent ODE, (a) the window's 100 - n unobserved points: interpolation, and (b) the 100 points
  after the window: extrapolation, the paper's Table 2 ("predictive RMSE on 100 time points
  extending beyond those that were used for training").
- RMSE: the square root of the mean squared error over every test spiral, point and both
  coordinates, against the noiseless curve, in the data's units (no normalization).
- differs from the paper: our RNN baseline is the same VAE with the latent ODE replaced by a GRU
  stepping the latent over the time grid (solver=gru_baseline; the paper's is a plain RNN that
  reads time and observation and predicts ahead); the paper does not say whether it scores
  against the noisy or the clean continuation nor how many test spirals or runs it used; we
  train for a fixed number of CPU steps, not to convergence.

Paper, Table 2 (predictive RMSE):   n = 30    n = 50    n = 100
    latent ODE (RNN encoder)          0.1642    0.1502    0.1346
    RNN                               0.3937    0.5936    0.3426

    python benchmarks/irregular_spirals.py                                # full grid, 3 seeds
    python benchmarks/irregular_spirals.py --observed 50 --models gru,rnn      # the must-show
    python benchmarks/irregular_spirals.py --quick                         # smoke test (tiny)
    python benchmarks/irregular_spirals.py --table A.jsonl B.jsonl         # table of earlier runs

Every run trains ``train.steps`` of the recipe (``--steps`` to change it, the same for every
model) with no time limit, so quality does not depend on the machine's load; the wall time of
each run is recorded beside it. Each run appends one line to ``--results`` (JSON lines), so runs
done in separate processes make one table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import time
from typing import Any, Dict, List, Sequence, Tuple

import torch

from odepipe import Run, load_recipe, train

RECIPE = "spiral_irregular"
#: model key -> (row label, recipe overrides)
MODELS: Dict[str, Tuple[str, List[str]]] = {
    "gru": ("latent ODE, GRU encoder", []),
    "odernn": ("latent ODE, ODE-RNN encoder", ["encoder=odernn"]),
    "rnn": ("RNN baseline (solver=gru_baseline)", ["solver=gru_baseline"]),
}
OBSERVED = (30, 50, 100)
#: Chen et al. 2018, Table 2: predictive (extrapolation) RMSE on the test set
PAPER = {
    "latent ODE (paper)": {30: 0.1642, 50: 0.1502, 100: 0.1346},
    "RNN (paper)": {30: 0.3937, 50: 0.5936, 100: 0.3426},
}
#: --quick: a few tiny steps of every model, to show the script runs end to end
QUICK = [
    "data.n_spirals=16",
    "data.n_test=8",
    "data.n_valid=8",
    "train.batch_size=8",
    "train.eval_items=8",
    "train.steps=2",
    "encoder.hidden_size=4",
    "dynamics.hidden_size=4",
    "decoder.hidden_size=4",
]
METRICS = ("extrap", "interp", "observed")


def overrides(model: str, observed: int, seed: int, extra: Sequence[str]) -> List[str]:
    """The recipe overrides of one run: step-counted, one thread, no plots, no time limit."""
    return [
        f"seed={seed}",
        f"data.n_irregular={observed}",
        "train.max_seconds=null",
        "train.threads=1",
        "train.device=cpu",
        "train.plot=false",
        "train.checkpoint_every=0",
        *MODELS[model][1],
        *extra,
    ]


def run_one(model: str, observed: int, seed: int, extra: Sequence[str], out: str) -> Dict[str, Any]:
    """Trains one model into ``out/<model>-<n>-s<seed>`` and returns its line of results."""
    settings = overrides(model, observed, seed, extra)
    recipe = load_recipe(RECIPE, settings)
    run = Run.create(os.path.join(out, f"{model}-{observed}-s{seed}"), overwrite=True)
    if run.replaced:  # the benchmark's own earlier output
        shutil.rmtree(run.replaced, ignore_errors=True)
    started = time.perf_counter()
    summary = train(recipe, run, progress=False)
    record: Dict[str, Any] = {
        "model": model,
        "observed": observed,
        "seed": seed,
        "overrides": settings,
        "steps": summary["steps"],
        "kept_step": summary.get("kept_step"),
        "train_seconds": summary["seconds"],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "run": run.path,
    }
    for name in METRICS:
        mse = summary.get(f"test_{name}_mse")
        record[f"{name}_rmse"] = None if mse is None else math.sqrt(mse)
    return record


def cell(values: Sequence[float]) -> str:
    """``median [min-max] xK`` over seeds (one seed: the value alone, marked x1)."""
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.3f} x1"
    return f"{med:.3f} [{min(values):.3f}-{max(values):.3f}] x{len(values)}"


def group(records: Sequence[Dict[str, Any]]) -> Dict[Tuple[str, int], List[Dict[str, Any]]]:
    """Records by (model, observed), the last record of a repeated (model, n, seed) kept."""
    latest: Dict[Tuple[str, int, int], Dict[str, Any]] = {}
    for r in records:
        latest[(r["model"], r["observed"], r["seed"])] = r
    cells: Dict[Tuple[str, int], List[Dict[str, Any]]] = {}
    for (model, n, _), r in sorted(latest.items()):
        cells.setdefault((model, n), []).append(r)
    return cells


def table(records: Sequence[Dict[str, Any]]) -> str:
    """The results beside the paper: extrapolation and interpolation RMSE per model and n,
    each cell ``median [min-max] x<seeds>``, then each cell's steps, seeds and wall time, and
    what the grid lacks (a cell not run, or run with fewer than 3 seeds, is named)."""
    cells = group(records)
    columns = sorted(set(OBSERVED) | {n for _, n in cells})  # the paper's grid, always shown
    models = list(MODELS)
    width = 30
    head = f"{'':<40}" + "".join(f"{f'n = {n}':>{width}}" for n in columns)
    lines = ["irregular spirals, test RMSE (data units, clean curve), median [range] x seeds", ""]
    for metric, title in (
        ("extrap", "extrapolation: the 100 points after the window"),
        ("interp", "interpolation: the window's unobserved points"),
    ):
        lines += [title, head]
        for m in models:
            key = metric + "_rmse"
            values = [
                [r[key] for r in cells.get((m, n), []) if r[key] is not None] for n in columns
            ]
            lines.append(f"{MODELS[m][0]:<40}" + "".join(f"{cell(v):>{width}}" for v in values))
        if metric == "extrap":
            for label, paper_row in PAPER.items():
                lines.append(
                    f"{label:<40}"
                    + "".join(
                        f"{paper_row[n]:>{width}.4f}" if n in paper_row else f"{'-':>{width}}"
                        for n in columns
                    )
                )
            for latent in ("gru", "odernn"):
                ratio = []
                for n in columns:
                    a = [r["extrap_rmse"] for r in cells.get((latent, n), [])]
                    b = [r["extrap_rmse"] for r in cells.get(("rnn", n), [])]
                    ratio.append(
                        f"{statistics.median(b) / statistics.median(a):.2f}x" if a and b else "-"
                    )
                label = f"RNN / {MODELS[latent][0].split(', ')[1]} (medians)"
                lines.append(f"{label:<40}" + "".join(f"{x:>{width}}" for x in ratio))
            paper = [
                PAPER["RNN (paper)"][n] / PAPER["latent ODE (paper)"][n]
                if n in PAPER["RNN (paper)"]
                else None
                for n in columns
            ]
            lines.append(
                f"{'RNN / latent ODE (paper)':<40}"
                + "".join(f"{f'{p:.2f}x' if p else '-':>{width}}" for p in paper)
            )
        lines.append("")
    lines.append("budget per cell: steps, seeds, wall seconds of training (median)")
    lines.append(head)
    for m in models:
        budget = []
        for n in columns:
            rs = cells.get((m, n), [])
            steps = sorted({r["steps"] for r in rs})
            text = (
                (
                    f"{'/'.join(map(str, steps))} st, s{','.join(str(r['seed']) for r in rs)}, "
                    f"{statistics.median(r['train_seconds'] for r in rs):.0f} s"
                )
                if rs
                else "-"
            )
            budget.append(f"{text:>{width}}")
        lines.append(f"{MODELS[m][0]:<40}" + "".join(budget))
    short = [
        f"{MODELS[m][0]} n={n}: "
        + (f"{len(cells[(m, n)])} seed(s)" if (m, n) in cells else "not run")
        for m in models
        for n in columns
        if len(cells.get((m, n), [])) < 3
    ]
    lines.append("")
    if short:
        lines.append("NOT a full grid of 3 seeds per cell:")
        lines += [f"  {text}" for text in short]
    else:
        lines.append("complete grid: every cell has 3 seeds")
    return "\n".join(lines)


def read(paths: Sequence[str]) -> List[Dict[str, Any]]:
    records: List[Dict[str, Any]] = []
    for path in paths:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--observed", default="30,50,100", help="observed points per spiral")
    parser.add_argument("--models", default=",".join(MODELS), help="of: " + ", ".join(MODELS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps of every run (default: the recipe's train.steps)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe override for every run (repeatable)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: tiny data and models, 2 steps, n = 50, seed 0",
    )
    parser.add_argument("--out", default="runs/bench-irregular", help="folder of the runs")
    parser.add_argument(
        "--results",
        default=None,
        help="JSON lines file each run appends to (default OUT/results.jsonl)",
    )
    parser.add_argument(
        "--table",
        nargs="+",
        default=None,
        metavar="RESULTS",
        help="print the table of these results files and train nothing",
    )
    args = parser.parse_args(argv)
    if args.table:
        text = table(read(args.table))
        print(text)
        return text
    torch.set_num_threads(1)
    observed = [50] if args.quick else [int(n) for n in args.observed.split(",")]
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(MODELS)}")
    extra = (QUICK if args.quick else []) + args.set
    if args.steps is not None:
        extra.append(f"train.steps={args.steps}")
    results = args.results or os.path.join(args.out, "results.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(results)), exist_ok=True)
    done: List[Dict[str, Any]] = []
    for n in observed:
        for seed in seeds:
            for model in models:
                record = run_one(model, n, seed, extra, args.out)
                done.append(record)
                with open(results, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(
                    f"done: {model} n={n} seed={seed}: extrap {record['extrap_rmse']:.3f} "
                    f"interp {record['interp_rmse'] or float('nan'):.3f}, {record['steps']} "
                    f"steps, {record['train_seconds']:.0f} s",
                    flush=True,
                )
    text = table(done)
    print("\n" + text)
    return text


if __name__ == "__main__":
    main()
