"""Two races on the noisy spirals, as time to fixed extrapolation thresholds over several seeds.

    nice -n 5 python benchmarks/spiral_vs_reference.py            # 3 seeds x 3 runners x 150 s
    python benchmarks/spiral_vs_reference.py --quick              # smoke test, seconds

Runners, each trained on one torch thread for the same wall budget of training seconds:

* ``hand``: an example-style hand-written loop, re-implemented from the published settings of
  torchdiffeq's ``examples/latent_ode.py`` (not its code): an Elman RNN recognition network (25
  hidden) read in reverse time, latent size 4, ODE function MLP 4-20-20-4 with ELU, decoder MLP
  4-20-2 with ReLU, ``torchdiffeq.odeint`` with dopri5 at torchdiffeq's default tolerances
  (rtol 1e-7, atol 1e-9), the full batch of 1000 spirals every iteration, Adam at lr 0.01,
  Gaussian log-likelihood with noise std 0.3 and the analytic KL to N(0, I).
* ``odepipe-reference``: ``recipes/spiral_reference.yaml`` (the same model and loop as a recipe)
  through odepipe's own training step (``odepipe.run.train.Training.one_step``) and solver.
* ``odepipe-default``: ``recipes/spiral.yaml``, odepipe's default recipe, the same way.

Race (a), tools: ``hand`` against ``odepipe-reference``, one model and loop through two tools.
Race (b), recipes: ``hand`` against ``odepipe-default``, the example's recipe against ours.

All three train on the same 1000 noisy spirals of a seed (odepipe's ``spiral`` source with the
example's generator settings) and are scored on the same 200 held-out ones: extrapolation MSE,
i.e. encode the 100 noisy observed points, decode the posterior mean over the next 100 time
points, mean squared error against the noiseless continuation (odepipe's ``extrap_mse``). Each
runner is evaluated every ``--eval-seconds`` of its training clock (and at its start and end);
evaluation time is taken off the clock. A runner's time to a threshold is the first evaluation
at or below it; a threshold it never reached within its budget (or its recipe's steps) is
reported as not reached, never replaced by the runner's final value. Medians are over seeds,
a seed that did not reach counting as slower than every seed that did.

Writes the curves and the table to ``benchmarks/results/spiral_vs_reference.json`` and plots
them to ``benchmarks/results/spiral_vs_reference.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torchdiffeq
from odepipe_plugins.series.spiral import SpiralData
from torch import nn

from odepipe.recipe import load_recipe
from odepipe.run.folder import Run
from odepipe.run.train import Training

HERE = os.path.dirname(os.path.abspath(__file__))
#: the issue's thresholds are 1.0, 0.3, 0.1; 3.0 is an extra, looser one, for runners (the
#: example's loop at its tolerances) that reach none of them in a few minutes
THRESHOLDS = (3.0, 1.0, 0.3, 0.1)
RUNNERS = ("hand", "odepipe-reference", "odepipe-default")
RACES = (("tools", "hand", "odepipe-reference"), ("recipes", "hand", "odepipe-default"))
RECIPES = {"odepipe-reference": "spiral_reference", "odepipe-default": "spiral"}


# -- the example-style hand loop, from the example's published settings ------------------------
class ElmanRecognition(nn.Module):
    """h <- tanh(W [x_t, h]) over the observations in reverse time; q(z0) from a linear head."""

    def __init__(self, latent_dim: int = 4, obs_dim: int = 2, hidden: int = 25):
        super().__init__()
        self.hidden, self.latent_dim = hidden, latent_dim
        self.i2h = nn.Linear(obs_dim + hidden, hidden)
        self.h2o = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = x.new_zeros(x.shape[0], self.hidden)
        for t in range(x.shape[1] - 1, -1, -1):
            h = torch.tanh(self.i2h(torch.cat([x[:, t], h], dim=-1)))
        out = self.h2o(h)
        return out[:, :self.latent_dim], out[:, self.latent_dim:]


class ODEFunc(nn.Module):
    def __init__(self, latent_dim: int = 4, hidden: int = 20):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ELU(),
                                 nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, latent_dim))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Reference(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rec, self.func = ElmanRecognition(), ODEFunc()
        self.dec = nn.Sequential(nn.Linear(4, 20), nn.ReLU(), nn.Linear(20, 2))

    def loss(self, x: torch.Tensor, ts: torch.Tensor, noise_std: float = 0.3) -> torch.Tensor:
        mean, logvar = self.rec(x)
        z0 = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        pred_x = self.dec(torchdiffeq.odeint(self.func, z0, ts).permute(1, 0, 2))  # (B, T, 2)
        noise_logvar = 2.0 * math.log(noise_std)
        logpx = -0.5 * (math.log(2 * math.pi) + noise_logvar
                        + (x - pred_x) ** 2 / math.exp(noise_logvar))
        kl = 0.5 * (mean ** 2 + logvar.exp() - 1.0 - logvar)  # KL(q || N(0, I)), analytic
        return (-logpx.sum((1, 2)) + kl.sum(-1)).mean()

    @torch.no_grad()
    def extrapolate(self, x: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        mean, _ = self.rec(x)
        return self.dec(torchdiffeq.odeint(self.func, mean, ts).permute(1, 0, 2))


def extrap_mse(predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               data: SpiralData) -> float:
    """Mean over test spirals of the MSE of the predicted continuation (odepipe's extrap_mse)."""
    test = list(data.dataset("test"))
    T = data.n_observed
    pred = predict(data.noisy[test], data.times)[:, T:]
    return float(((pred - data.clean[test, T:]) ** 2).flatten(1).mean(1).mean())


# -- one runner: a step function and an evaluation, raced on one clock ---------------------------
class Runner:
    """``step()`` trains one step; ``score()`` is the test extrapolation MSE now; ``steps``:
    the most steps it may take (a recipe's ``train.steps``)."""

    steps: int
    data: SpiralData

    def step(self) -> None:
        raise NotImplementedError

    def score(self) -> float:
        raise NotImplementedError


class HandLoop(Runner):
    def __init__(self, data: SpiralData, seed: int, iters: int):
        torch.manual_seed(seed)
        self.data, self.steps = data, iters
        self.model = Reference()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.01)
        self.x = data.noisy[list(data.dataset("train"))]  # all of them: the full batch
        self.ts = data.times[:data.n_observed]

    def step(self) -> None:
        self.opt.zero_grad()
        self.model.loss(self.x, self.ts).backward()
        self.opt.step()

    def score(self) -> float:
        return extrap_mse(self.model.extrapolate, self.data)


class OdepipeLoop(Runner):
    """A recipe set up by odepipe's ``Training`` in a scratch folder, stepped by its own
    ``one_step`` (batching, schedules, the pipeline's loss and solver, clipping, Adam)."""

    def __init__(self, recipe_name: str, seed: int, overrides: Sequence[str], folder: str):
        recipe = load_recipe(recipe_name, [f"seed={seed}", "train.threads=1", "train.plot=false",
                                           *overrides])
        self.training = Training(recipe, Run(folder), progress=False)
        self.training.set_up(resume=False)
        self.training.model.train()
        self.data, self.steps = self.training.data, recipe.train.steps

    def step(self) -> None:
        self.training.one_step()

    @torch.no_grad()
    def score(self) -> float:
        model, data = self.training.model, self.data
        was = model.training
        model.eval()
        seed = data.collate(list(data.dataset("test")))  # the test spirals' observed windows
        try:
            return extrap_mse(lambda x, ts: model.extrapolate(seed, ts), data)
        finally:
            model.train(was)


def race(runner: Runner, budget_s: float, eval_s: float, log: Callable[[str], None],
         name: str) -> List[Dict[str, float]]:
    """Steps ``runner`` until ``budget_s`` seconds of training or its steps; evaluates at
    clock 0, then at the first step past each multiple of ``eval_s``, and at the end."""
    curve: List[Dict[str, float]] = []
    clock, steps, next_eval = 0.0, 0, 0.0

    def evaluate() -> None:
        mse = runner.score()
        curve.append({"step": steps, "seconds": clock, "extrap_mse": mse})
        log(f"  {name:18s} step {steps:5d}  {clock:7.1f} s  extrap MSE {mse:.4f}")

    while True:
        if clock >= next_eval:
            evaluate()
            while next_eval <= clock:
                next_eval += eval_s
        if clock >= budget_s or steps >= runner.steps:
            break
        start = time.perf_counter()
        runner.step()
        clock += time.perf_counter() - start
        steps += 1
    if curve[-1]["step"] != steps:
        evaluate()
    return curve


# -- reading the curves ------------------------------------------------------------------------
def time_to(curve: List[Dict[str, float]], threshold: float) -> Optional[float]:
    """Seconds of training at the first evaluation at or below ``threshold``; None: never."""
    return next((c["seconds"] for c in curve if c["extrap_mse"] <= threshold), None)


def median_time(times: Sequence[Optional[float]]) -> Optional[float]:
    """The median over seeds, a seed that never reached counting as slower than all others;
    None when the median seed itself never reached."""
    ordered = sorted(times, key=lambda t: math.inf if t is None else t)
    n = len(ordered)
    if n % 2:
        return ordered[n // 2]
    lo, hi = ordered[n // 2 - 1], ordered[n // 2]
    return None if lo is None or hi is None else (lo + hi) / 2


def _fmt(t: Optional[float], budget: float) -> str:
    return f"{t:7.1f} s" if t is not None else f"not reached in {budget:g} s"


def table(curves: Dict[str, Dict[int, List[Dict[str, float]]]], seeds: Sequence[int],
          budget: float, log: Callable[[str], None]) -> Dict[str, Any]:
    """Per race and threshold: each seed's time for both runners, their medians and ratio."""
    out: Dict[str, Any] = {}
    for race_name, left, right in RACES:
        log(f"\n== race ({'a' if race_name == 'tools' else 'b'}) {race_name}: {left} "
            f"({'the example loop' if left == 'hand' else left}) vs {right} "
            f"[{RECIPES[right]}.yaml], seeds {list(seeds)}, budget {budget:.0f} s each")
        log(f"{'threshold':>9} | {'runner':18s} | " + " | ".join(f"seed {s:<13d}" for s in seeds)
            + f" | {'median':>18s}")
        rows = []
        for thr in THRESHOLDS:
            row: Dict[str, Any] = {"threshold": thr}
            for runner in (left, right):
                times = [time_to(curves[runner][s], thr) for s in seeds]
                med = median_time(times)
                row[runner] = {"seconds_by_seed": dict(zip(map(str, seeds), times)),
                               "median_seconds": med}
                log(f"{thr:9.2f} | {runner:18s} | "
                    + " | ".join(f"{_fmt(t, budget):>18s}" for t in times)
                    + f" | {_fmt(med, budget):>18s}")
            lm, rm = row[left]["median_seconds"], row[right]["median_seconds"]
            row["median_ratio_right_over_left"] = rm / lm if lm and rm is not None else None
            if lm is not None and rm is not None:
                log(f"{'':9s}   median time {right} / {left}: {rm / lm:.2f}")
            rows.append(row)
        pace = {runner: _pace(curves[runner], seeds) for runner in (left, right)}
        for runner, p in pace.items():
            log(f"{runner:18s}: median {p['median_ms_per_step']:.1f} ms per training step, "
                f"steps in the budget by seed {p['steps_by_seed']}, lowest MSE seen by seed "
                f"{p['lowest_mse_by_seed']} (a curve's minimum, not a time to a threshold)")
        out[race_name] = {"left": left, "right": right, "rows": rows, "pace": pace}
    return out


def _pace(by_seed: Dict[int, List[Dict[str, float]]], seeds: Sequence[int]) -> Dict[str, Any]:
    """Steps taken, time per step and the lowest MSE of each seed's curve."""
    last = {s: by_seed[s][-1] for s in seeds}
    ms = [1000 * c["seconds"] / c["step"] for c in last.values() if c["step"]]
    return {"steps_by_seed": {s: int(c["step"]) for s, c in last.items()},
            "median_ms_per_step": statistics.median(ms) if ms else math.nan,
            "lowest_mse_by_seed": {s: round(min(c["extrap_mse"] for c in by_seed[s]), 4)
                                   for s in seeds}}


def plot(curves: Dict[str, Dict[int, List[Dict[str, float]]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colours = dict(zip(RUNNERS, ("tab:gray", "tab:blue", "tab:orange")))
    for runner, by_seed in curves.items():
        for i, (_, curve) in enumerate(sorted(by_seed.items())):
            ax.plot([c["seconds"] for c in curve], [c["extrap_mse"] for c in curve],
                    color=colours[runner], alpha=0.8, marker=".", ms=3,
                    label=runner if i == 0 else None)
    for thr in THRESHOLDS:
        ax.axhline(thr, color="k", lw=0.6, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("training seconds (1 torch thread, evaluations off the clock)")
    ax.set_ylabel("test extrapolation MSE")
    ax.set_title("spirals: time to extrapolation thresholds (one line per seed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reuse(args: argparse.Namespace, curves: Dict[str, Dict[int, List[Dict[str, float]]]]
           ) -> List[str]:
    """Adds the other runners' curves from ``args.reuse``, refusing a different setting."""
    with open(args.reuse) as f:
        saved = json.load(f)
    for key in ("seeds", "budget_seconds", "eval_seconds", "hand_iters", "quick"):
        mine = {"budget_seconds": args.budget, "eval_seconds": args.eval_seconds}.get(
            key, getattr(args, key, None))
        if saved.get(key) != mine:
            raise SystemExit(f"--reuse {args.reuse}: its {key} is {saved.get(key)}, not {mine}")
    reused = [r for r in RUNNERS if r not in curves and r in saved["curves"]]
    for runner in reused:
        curves[runner] = {int(s): c for s, c in saved["curves"][runner].items()}
        print(f"{runner}: curves REUSED from {args.reuse} (measured then, not in this run)")
    return reused


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float,
                        help="training seconds per runner and seed (default 150; --quick 2)")
    parser.add_argument("--eval-seconds", type=float,
                        help="training seconds between evaluations (default 10; --quick 0.5)")
    parser.add_argument("--hand-iters", type=int, default=2000,
                        help="the hand loop's most iterations (the example's niters)")
    parser.add_argument("--runners", nargs="+", default=list(RUNNERS), choices=RUNNERS)
    parser.add_argument("--reuse", metavar="JSON",
                        help="take the curves of the runners not in --runners from an earlier "
                             "run's JSON (same seeds, budget and evaluation interval; the "
                             "printout says which were reused)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 1 seed, tiny data, 2 s budget (numbers meaningless)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "spiral_vs_reference"),
                        help="path stem of the .json and .png written")
    args = parser.parse_args(argv)
    overrides: List[str] = []
    if args.quick:
        args.seeds = args.seeds[:1]
        overrides = ["data.n_spirals=16", "data.n_test=4", "train.batch_size=8"]
    args.budget = args.budget or (2.0 if args.quick else 150.0)
    args.eval_seconds = args.eval_seconds or (0.5 if args.quick else 10.0)
    torch.set_num_threads(1)
    curves: Dict[str, Dict[int, List[Dict[str, float]]]] = {r: {} for r in args.runners}
    same_data: Dict[int, torch.Tensor] = {}
    started = time.perf_counter()
    for seed in args.seeds:
        for runner_name in args.runners:
            print(f"seed {seed}, {runner_name}:", flush=True)
            with tempfile.TemporaryDirectory() as folder:
                if runner_name == "hand":
                    recipe = load_recipe("spiral_reference", [f"seed={seed}", *overrides])
                    data = SpiralData(seed=seed, **recipe.components["data"].params)
                    runner: Runner = HandLoop(data, seed, args.hand_iters)
                else:
                    runner = OdepipeLoop(RECIPES[runner_name], seed, overrides, folder)
                test = list(runner.data.dataset("test"))
                first = same_data.setdefault(seed, runner.data.noisy[test])
                assert torch.equal(first, runner.data.noisy[test]), "runners see other spirals"
                curves[runner_name][seed] = race(runner, args.budget, args.eval_seconds,
                                                 lambda s: print(s, flush=True), runner_name)
    print(f"\nmeasured on one torch thread; whole benchmark {time.perf_counter() - started:.0f} s"
          f" of wall time; thresholds {list(THRESHOLDS)}; each time is the first evaluation "
          f"(every {args.eval_seconds:g} s of training) at or below the threshold")
    reused = _reuse(args, curves) if args.reuse else []
    summary = table(curves, args.seeds, args.budget, print) if set(RUNNERS) <= set(curves) else {}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    result = {"seeds": args.seeds, "budget_seconds": args.budget,
              "eval_seconds": args.eval_seconds, "thresholds": list(THRESHOLDS),
              "hand_iters": args.hand_iters, "quick": args.quick, "overrides": overrides,
              "reused": {r: args.reuse for r in reused},
              "races": summary,
              "curves": {r: {str(s): c for s, c in by.items()} for r, by in curves.items()}}
    with open(args.out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    plot(curves, args.out + ".png")
    print(f"curves: {args.out}.json, {args.out}.png")
    return result


if __name__ == "__main__":
    main()
