"""odepipe's spiral recipe against torchdiffeq's latent ODE example loop, on the same data.

    nice -n 5 python benchmarks/spiral_vs_reference.py                      # 2000 reference iters
    nice -n 5 python benchmarks/spiral_vs_reference.py --reference-iters 900

The reference is a re-implementation, written from the published settings of torchdiffeq's
``examples/latent_ode.py`` (not its code): an Elman RNN recognition network (25 hidden) read in
reverse time, latent size 4, ODE function MLP 4-20-20-4 with ELU, decoder MLP 4-20-2 with ReLU,
``odeint`` with dopri5 at torchdiffeq's default tolerances (rtol 1e-7, atol 1e-9), the full
batch of 1000 spirals every iteration, Adam at lr 0.01, Gaussian log-likelihood with noise std
0.3 and the analytic KL to N(0, I). Its data is odepipe's ``spiral`` source (same generator
settings as the example; see odepipe_plugins/series/spiral.py), so both models train on the same 1000
noisy spirals and are scored on the same 200 held-out ones.

Quality: extrapolation MSE on the test split, i.e. encode the 100 noisy observed points, decode
the posterior mean over the next 100 time points, mean squared error against the noiseless
continuation (odepipe's ``extrap_mse``). Clocks count training only: evaluations are timed and
taken off. Both run on one torch thread, one after the other in this one process.

Prints: the reference's final MSE and training time T_ref; the wall time odepipe (the committed
``recipes/spiral.yaml`` through odepipe's own training loop, ``odepipe.run.train.train``) needs to
reach that MSE, and the ratio to T_ref (goal <= 0.2); both models' MSE at equal wall times.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

import torch
import torchdiffeq
from torch import nn

import odepipe.run.train as odetrain
from odepipe.recipe import load_recipe
from odepipe_plugins.series.spiral import SpiralData

HERE = os.path.dirname(os.path.abspath(__file__))


# -- the reference model, from the example's published settings -------------------------------
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


def run_reference(data: SpiralData, iters: int, eval_every: int, log: Callable) -> List[Dict]:
    torch.manual_seed(0)
    model = Reference()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = data.noisy[list(data.dataset("train"))]  # all 1000: the full batch
    ts = data.times[:data.n_observed]
    curve, clock = [], 0.0
    for it in range(1, iters + 1):
        start = time.perf_counter()
        opt.zero_grad()
        loss = model.loss(x, ts)
        loss.backward()
        opt.step()
        clock += time.perf_counter() - start
        if it % eval_every == 0 or it == iters:
            mse = extrap_mse(model.extrapolate, data)
            curve.append({"step": it, "seconds": clock, "extrap_mse": mse, "loss": loss.item()})
            log(f"  reference iter {it:5d}  {clock:7.1f} s  loss {loss.item():9.2f}  "
                f"extrap MSE {mse:.4f}")
    return curve


class _Stop(Exception):
    pass


def run_odepipe(recipe_name: str, overrides: List[str], budget_s: float, target: float,
                eval_every: int, log: Callable) -> List[Dict]:
    """Trains the recipe through odepipe.run.train.train; evaluates every ``eval_every`` steps from
    the on_event callback (its time taken off the clock); stops at ``budget_s`` of training."""
    recipe = load_recipe(recipe_name, ["train.eval_every=0", "train.plot=false",
                                       "train.threads=1", *overrides])
    captured: Dict[str, Any] = {}
    real_build = odetrain.build

    def capturing_build(*args: Any, **kwargs: Any) -> Any:  # hand the benchmark the live model
        captured["data"], captured["model"] = real_build(*args, **kwargs)
        return captured["data"], captured["model"]

    curve: List[Dict] = []
    off = [0.0]
    started = time.perf_counter()

    last: Dict[str, Any] = {}

    def on_event(step: int) -> None:
        now = time.perf_counter()
        clock = now - started - off[0]
        last.update(step=step, clock=clock)
        if step % eval_every == 0 or clock >= budget_s:
            model, data = captured["model"], captured["data"]
            was = model.training
            model.eval()
            mse = extrap_mse(lambda x, ts: _odepipe_predict(model, data, x, ts), data)
            model.train(was)
            curve.append({"step": step, "seconds": clock, "extrap_mse": mse})
            log(f"  odepipe   step {step:5d}  {clock:7.1f} s  extrap MSE {mse:.4f}"
                f"{'  <- reached the reference' if mse <= target else ''}")
            off[0] += time.perf_counter() - now
        if clock >= budget_s:
            raise _Stop

    odetrain.build = capturing_build
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            try:
                odetrain.train(recipe, run_dir, progress=False, on_event=on_event)
                if last and (not curve or curve[-1]["step"] != last["step"]):  # the end
                    model, data = captured["model"], captured["data"]
                    model.eval()
                    mse = extrap_mse(lambda x, ts: _odepipe_predict(model, data, x, ts), data)
                    curve.append({"step": last["step"], "seconds": last["clock"],
                                  "extrap_mse": mse})
                    log(f"  odepipe   step {last['step']:5d}  {last['clock']:7.1f} s  "
                        f"extrap MSE {mse:.4f} (end of the recipe's steps)")
            except _Stop:
                pass
    finally:
        odetrain.build = real_build
    return curve


@torch.no_grad()
def _odepipe_predict(model: Any, data: SpiralData, x: torch.Tensor, ts: torch.Tensor) -> Any:
    seed = data.collate(list(data.dataset("test")))  # the same test spirals, as a Batch
    seed.values = x
    return model.extrapolate(seed, ts)


def at_time(curve: List[Dict], seconds: float) -> Dict:
    """The last evaluation at or before ``seconds`` (the model one would have at that time)."""
    before = [c for c in curve if c["seconds"] <= seconds + 1e-9]
    return before[-1] if before else {"extrap_mse": float("nan"), "step": 0, "seconds": 0.0}


def report(name: str, ref: List[Dict], ode: List[Dict], iters: int, log: Callable) -> Dict:
    """Time to the reference's final quality, the ratio, and quality at equal wall times."""
    t_ref, target = ref[-1]["seconds"], ref[-1]["extrap_mse"]
    hit = next((c for c in ode if c["extrap_mse"] <= target), None)
    log(f"\n== odepipe {name} vs reference ({iters} iters): final extrap MSE {target:.4f} "
        f"after {t_ref:.1f} s of training")
    if hit:
        ratio = hit["seconds"] / t_ref
        log(f"odepipe reached it at step {hit['step']} after {hit['seconds']:.1f} s "
            f"(MSE {hit['extrap_mse']:.4f})")
        log(f"ratio odepipe time to reference quality / reference time: {ratio:.3f} "
            f"[{'PASS' if ratio <= 0.2 else 'FAIL'}: <= 0.2; reference-iters {iters}]")
    else:
        ratio = float("inf")
        last = ode[-1] if ode else {"seconds": 0.0, "extrap_mse": float("nan")}
        log(f"odepipe did not reach {target:.4f}: best {min(c['extrap_mse'] for c in ode):.4f}"
            f" in {last['seconds']:.0f} s of training [FAIL: ratio > "
            f"{last['seconds'] / t_ref:.2f}; reference-iters {iters}]")
    best = min(ref, key=lambda c: c["extrap_mse"])
    hit_best = next((c for c in ode if c["extrap_mse"] <= best["extrap_mse"]), None)
    log(f"stricter: the reference's best MSE {best['extrap_mse']:.4f} (iter {best['step']}, "
        f"{best['seconds']:.1f} s); odepipe reached it "
        + (f"after {hit_best['seconds']:.1f} s: ratio {hit_best['seconds'] / t_ref:.3f}"
           if hit_best else "never"))
    if ode:
        log(f"at the end: odepipe MSE {ode[-1]['extrap_mse']:.4f} after {ode[-1]['seconds']:.1f}"
            f" s ({ode[-1]['step']} steps); reference {target:.4f} after {t_ref:.1f} s")
    log("quality at equal wall time (extrap MSE on the 200 test spirals):")
    log(f"{'seconds':>8} | {'reference':>10} {'(iter)':>7} | {'odepipe':>10} {'(step)':>7}")
    end = min(t_ref, ode[-1]["seconds"]) if ode else t_ref
    marks = sorted({round(end * f, 1) for f in (0.1, 0.2, 0.5, 1.0)}
                   | ({round(hit["seconds"], 1)} if hit else set()))
    for s in marks:
        r, o = at_time(ref, s), at_time(ode, s)
        log(f"{s:8.1f} | {r['extrap_mse']:10.4f} {r['step']:7d} | {o['extrap_mse']:10.4f} "
            f"{o['step']:7d}")
    return {"recipe": name, "odepipe": ode, "odepipe_seconds_to_target":
            hit["seconds"] if hit else None, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-iters", type=int, default=2000,
                        help="iterations of the reference loop (the example's niters: 2000)")
    parser.add_argument("--recipe", action="append",
                        help="odepipe recipe to race (repeatable; default: spiral, the headline)")
    parser.add_argument("--budget", type=float,
                        help="cap on each odepipe recipe's training seconds (default: the "
                             "reference's time, or the recipe's own steps/max_seconds)")
    parser.add_argument("--eval-every", type=int, default=25, help="steps between evaluations")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "spiral_vs_reference.json"))
    parser.add_argument("--reuse-reference", metavar="JSON",
                        help="take the reference curve from an earlier run's JSON instead of "
                             "training it again (for iterating on odepipe; the printout says so)")
    parser.add_argument("overrides", nargs="*", help="overrides for the odepipe recipe(s)")
    args = parser.parse_args()
    recipes = args.recipe or ["spiral"]
    torch.set_num_threads(1)
    recipe = load_recipe(recipes[0], args.overrides)
    kind, params = recipe.components["data"].type, recipe.components["data"].params
    data = SpiralData(seed=recipe.seed, **params)
    print(f"data: {kind} {params} (seed {recipe.seed}); 1 torch thread")
    if args.reuse_reference:
        with open(args.reuse_reference) as f:
            saved = json.load(f)
        ref, args.reference_iters = saved["reference"], saved["reference_iters"]
        print(f"reference: REUSED from {args.reuse_reference} ({args.reference_iters} iters), "
              f"not measured in this run")
    else:
        print(f"reference (torchdiffeq examples/latent_ode.py settings), "
              f"{args.reference_iters} iters:")
        ref = run_reference(data, args.reference_iters, args.eval_every, print)
    t_ref, target = ref[-1]["seconds"], ref[-1]["extrap_mse"]
    budget = min(t_ref, args.budget) if args.budget else t_ref
    results = []
    for name in recipes:
        print(f"odepipe recipe {name} {' '.join(args.overrides)}: trains until its own steps or "
              f"max_seconds end, or {budget:.0f} s:")
        ode = run_odepipe(name, args.overrides, budget, target, args.eval_every, print)
        results.append((name, ode))
    summaries = [report(name, ref, ode, args.reference_iters, print) for name, ode in results]
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"reference_iters": args.reference_iters,
                   "reference_reused_from": args.reuse_reference, "overrides": args.overrides,
                   "reference": ref, "target_mse": target, "reference_seconds": t_ref,
                   "races": summaries}, f, indent=1)
    print(f"curves: {args.json}")


if __name__ == "__main__":
    main()
