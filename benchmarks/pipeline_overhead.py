"""What odepipe's pipeline costs on top of the model: a training step through ``Pipeline.elbo``
(Batch, Posterior, counting Solver wrapper, distribution, ELBO) against the very same networks
called by hand through ``torchdiffeq.odeint``.

    nice -n 5 python benchmarks/pipeline_overhead.py                 # recipes/spiral.yaml
    nice -n 5 python benchmarks/pipeline_overhead.py --recipe spiral --steps 40 solver=dopri5

Both paths start from identical weights and draw identical noise, so their losses must agree
(the script checks it: same model, same arithmetic); each has its own Adam. Steps alternate
pipeline / direct in one process on one thread; the ratio is the median over rounds of
pipeline time / direct time within the round (goal <= 1.05); median/median and min/min are
printed beside it. The pipeline's solver runs with ``solver.backend=torchdiffeq`` unless an
override names a backend, so that both paths do the same arithmetic and this measures odepipe's
code alone (odepipe's own engine against torchdiffeq: ``solver_overhead.py --spiral-step``).
Then, on the pipeline alone, hooks time the solver's forward
call and the dynamics calls inside it: the share of solver time spent inside the vector field.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any, Dict, List

import torch
import torchdiffeq

from odepipe.run.build import build
from odepipe.recipe import load_recipe


def direct_loss(model: Any, batch: Any, solver_kwargs: Dict[str, Any]) -> torch.Tensor:
    """The latent ODE's negative ELBO written straight against torch and torchdiffeq, using the
    networks of ``model`` (a Pipeline with a recurrent encoder and MLP decoder)."""
    enc, dec = model.encoder, model.decoder
    x = batch.values  # (B, T, D)
    B = x.shape[0]
    dt = torch.diff(batch.times, prepend=batch.times[:1]).view(1, -1, 1).expand(B, -1, 1)
    steps = torch.cat([x, torch.ones_like(x), dt], dim=-1)  # value, mask, time gap
    _, h = enc.rnn(torch.flip(steps, dims=[1]))  # read in reverse time
    h = h[0] if isinstance(h, tuple) else h
    mean, logvar = enc.to_posterior(h[-1]).chunk(2, dim=-1)  # (B, L)
    z0 = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
    zt = torchdiffeq.odeint(model.dynamics, z0, batch.times, **solver_kwargs)  # (T, B, L)
    x_mean = dec.net(zt.transpose(0, 1))  # (B, T, D)
    std = dec.log_std.exp().expand_as(x_mean)
    log_lik = torch.distributions.Normal(x_mean, std).log_prob(x).flatten(1).sum(1).mean()
    kl = (0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)).mean(0).sum()
    return -(log_lik - kl)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="spiral")
    parser.add_argument("--steps", type=int, default=60, help="timed steps of each path")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, key=value")
    args = parser.parse_args()
    torch.set_num_threads(1)
    overrides = list(args.overrides)
    if not any(o.startswith("solver.backend=") for o in overrides):
        overrides.append("solver.backend=torchdiffeq")
    recipe = load_recipe(args.recipe, overrides)
    torch.manual_seed(recipe.seed)
    data, model = build(recipe)
    solver = model.solver
    if not hasattr(solver, "method"):
        raise SystemExit(f"solver {type(solver).__name__} is not a torchdiffeq method; this "
                         f"benchmark compares against torchdiffeq.odeint")
    kwargs = dict(method=solver.method, rtol=solver.rtol, atol=solver.atol,
                  options=solver.options())
    if solver.adjoint:
        raise SystemExit("use solver.adjoint=false: the direct path calls torchdiffeq.odeint")
    direct = copy.deepcopy(model)
    cfg = recipe.train
    items = list(data.dataset("train"))
    batch = data.collate(items[:cfg.batch_size])
    opt_p = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    opt_d = torch.optim.Adam(direct.parameters(), lr=cfg.lr)
    clip = cfg.grad_clip or float("inf")

    def pipeline_step(seed: int) -> float:
        torch.manual_seed(seed)
        model.solver.reset_nfe()
        loss = model.elbo(batch).loss
        opt_p.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt_p.step()
        return loss.item()

    def direct_step(seed: int) -> float:
        torch.manual_seed(seed)
        loss = direct_loss(direct, batch, kwargs)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(direct.parameters(), clip)
        opt_d.step()
        return loss.item()

    t_p: List[float] = []
    t_d: List[float] = []
    worst = 0.0
    for i in range(args.steps + 2):  # the first two rounds warm up
        for fn, store in ((pipeline_step, t_p), (direct_step, t_d)) if i % 2 == 0 else \
                ((direct_step, t_d), (pipeline_step, t_p)):
            start = time.perf_counter()
            loss = fn(i)
            store.append(time.perf_counter() - start)
            if fn is pipeline_step:
                lp = loss
            else:
                ld = loss
        worst = max(worst, abs(lp - ld) / max(1.0, abs(ld)))
    t_p, t_d = t_p[2:], t_d[2:]
    mp, md = statistics.median(t_p), statistics.median(t_d)
    print(f"recipe {recipe.name}: solver {solver.method} {kwargs['options'] or ''} "
          f"backend={getattr(solver, 'backend', '?')} "
          f"rtol={solver.rtol} atol={solver.atol}, batch {batch.size}, "
          f"{args.steps} alternating steps, 1 thread")
    print(f"losses of the two paths agree to {worst:.1e} (relative, worst step)")
    print(f"pipeline step  median {mp * 1e3:8.2f} ms  (min {min(t_p) * 1e3:.2f})")
    print(f"direct step    median {md * 1e3:8.2f} ms  (min {min(t_d) * 1e3:.2f})")
    # each round runs both paths back to back, so the ratio within a round cancels the load
    # that other processes put on the machine from one moment to the next
    ratio = statistics.median(p / d for p, d in zip(t_p, t_d))
    print(f"overhead ratio pipeline/direct (median of per-round ratios): {ratio:.3f} "
          f"[{'PASS' if ratio <= 1.05 else 'FAIL'}: <= 1.05]; median/median {mp / md:.3f}, "
          f"min/min {min(t_p) / min(t_d):.3f}")

    # -- where the solver's forward time goes ----------------------------------------------
    clock: Dict[str, float] = {"solver": 0.0, "field": 0.0}
    marks: Dict[str, float] = {}

    def enter(name: str) -> Any:
        return lambda *a: marks.__setitem__(name, time.perf_counter())

    def leave(name: str) -> Any:
        def hook(*a: Any) -> None:
            clock[name] += time.perf_counter() - marks[name]
        return hook

    handles = [model.solver.register_forward_pre_hook(enter("solver")),
               model.solver.register_forward_hook(leave("solver")),
               model.dynamics.register_forward_pre_hook(enter("field")),
               model.dynamics.register_forward_hook(leave("field"))]
    nfe = 0
    total = 0.0
    for i in range(max(5, args.steps // 3)):
        start = time.perf_counter()
        pipeline_step(1000 + i)
        total += time.perf_counter() - start
        nfe += model.solver.nfe_forward
    for h in handles:
        h.remove()
    share = clock["field"] / clock["solver"]
    print(f"solver forward: {clock['solver'] / total:.0%} of the training step; "
          f"{nfe / max(5, args.steps // 3):.0f} field evaluations per step")
    print(f"share of solver forward time inside the dynamics function: {share:.0%} "
          f"(the rest is torchdiffeq's step arithmetic, interpolation and bookkeeping)")


if __name__ == "__main__":
    main()
