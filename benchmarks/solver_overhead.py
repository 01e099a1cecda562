"""Solver overhead: each solve's time over the time of the same number of bare field evaluations.

A solver can at best cost its field evaluations (forward) and their vector-Jacobian products
(backward). This measures how far from that each backend is, on the spiral recipe's field (MLP,
2 hidden layers of 50, ELU) over T output times on [0, 10]:

  1. methods (euler, rk4, dopri5) x batch (1, 100, 1000) x latent (4, 64), forward (no_grad)
     and forward+backward, for the raw engine (plugins/latent_ode/engine), the registered
     odepipe Solver on its default backend (the engine behind ``SOLVERS[method]``: what a
     recipe gets), torchdiffeq, and a hand-written loop (euler/rk4) that is the floor a Python
     loop over torch ops can reach;
  2. a T sweep (50, 100, 200, 400) at batch 1000, latent 64: the ratios should not grow with T
     (torchdiffeq's ``solution[j] = y`` writes make its backward O(T^2 B L));
  3. the engine's fixed-grid adjoint against backprop from 10 to 1000 rk4 steps: NFE, time of
     a training step (forward, loss, backward) and its peak memory (peak RSS above the pre-step
     RSS, each in a fresh Linux process with the peak mark reset just before the step and
     glibc's mmap threshold pinned so freed tensors leave RSS).

``--spiral-step`` (not in the default sections): recipes/spiral.yaml's training step (same
batch size, networks, rk4 at its step, Adam at its lr, its grad clip) with ``solver.backend``
odepipe against torchdiffeq, the two models built from the same seed (identical weights) and
stepped alternately in one process on one thread with identical noise; prints the median of
per-round time ratios and how far the losses drift apart after N steps.

The denominator is always the engine's NFE (torchdiffeq evaluates the same number of times for
these methods unless its grid ends on a zero-length step). Bare forward+backward: that many
evaluations of the field on one (B, L) input and one ``autograd.backward`` over all of them.

    python benchmarks/solver_overhead.py            # everything (~10 min on one core)
    python benchmarks/solver_overhead.py --quick    # a small subset (~1 min)
    python benchmarks/solver_overhead.py --spiral-step [--spiral-steps 100]   # the A/B only
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def load_engine():
    """The engine through its package, or from its folder if the package around it is broken."""
    try:
        return importlib.import_module("odepipe_plugins.latent_ode.engine")
    except Exception:
        path = ROOT / "plugins" / "latent_ode" / "engine"
        spec = importlib.util.spec_from_file_location(
            "_odepipe_engine", path / "__init__.py", submodule_search_locations=[str(path)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["_odepipe_engine"] = module
        spec.loader.exec_module(module)
        return module


engine = load_engine()


def field(latent: int, width: int = 50) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(latent, width), nn.ELU(), nn.Linear(width, width), nn.ELU(),
                         nn.Linear(width, latent))


def timed(fn: Callable[[], object], reps: int) -> float:
    """Fastest of ``reps`` runs after a warm-up (one run if a run takes > 2 s). The minimum, not
    the median: on a shared machine interference only ever adds time."""
    return interleaved({"x": fn}, reps)["x"]


def interleaved(fns: Dict[str, Callable[[], object]], reps: int) -> Dict[str, float]:
    """``timed`` for several functions, run in turns so that drifts in machine load hit all."""
    best: Dict[str, float] = {}
    slow = set()
    for name, fn in fns.items():                 # warm-up
        start = time.perf_counter()
        fn()
        if time.perf_counter() - start > 2.0:
            slow.add(name)
    for rep in range(reps):
        for name, fn in fns.items():
            if name in slow and rep > 0:
                continue
            start = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    return best


class TimeFree(nn.Module):
    """``field`` as an odepipe Dynamics-shaped module: ``forward(t, z)`` ignoring ``t``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def registered_solver(method: str, args) -> nn.Module:
    """The recipe's solver of this name on its default backend (the engine), or None when the
    plugin package cannot be imported (the raw-engine columns still run)."""
    try:
        from odepipe_plugins.latent_ode.solvers import SOLVERS
    except Exception:  # noqa: BLE001 - a broken package must not stop the engine's columns
        return None
    return SOLVERS[method](rtol=args.rtol, atol=args.atol)


def hand_loop(method: str) -> Optional[Callable]:
    """A hand-written loop stepping between consecutive output times (the floor)."""
    def euler(f, z, ts):
        out = [z]
        for t0, t1 in zip(ts[:-1], ts[1:]):
            z = z + (t1 - t0) * f(t0, z)
            out.append(z)
        return torch.stack(out, dim=1)

    def rk4(f, z, ts):
        out = [z]
        for t0, t1 in zip(ts[:-1], ts[1:]):
            h = t1 - t0
            k1 = f(t0, z)
            k2 = f(t0 + h / 2, z + h / 2 * k1)
            k3 = f(t0 + h / 2, z + h / 2 * k2)
            k4 = f(t1, z + h * k3)
            z = z + h / 6 * (k1 + 2 * (k2 + k3) + k4)
            out.append(z)
        return torch.stack(out, dim=1)

    return {"euler": euler, "rk4": rk4}.get(method)


class Case:
    """One (method, batch, latent, T) problem and the ways of solving it."""

    def __init__(self, method: str, batch: int, latent: int, n_times: int, args):
        self.method, self.args = method, args
        self.net = field(latent)
        self.f = lambda t, z: self.net(z)
        self.dynamics = TimeFree(self.net)
        self.solver = registered_solver(method, args)
        torch.manual_seed(1)
        self.z0 = torch.randn(batch, latent)
        self.times = torch.linspace(0, 10, n_times)
        self.t0 = torch.tensor(0.0)
        self.grad = torch.ones(batch, latent)
        counter = engine.NFECounter()
        with torch.no_grad():
            self.ours(self.z0, counter)
        self.nfe = counter.forward

    def ours(self, z0, counter=None):
        if self.method == "dopri5":
            return engine.solve_adaptive(self.f, z0, self.times, "dopri5", self.args.rtol,
                                         self.args.atol, counter=counter)
        return engine.solve_fixed(self.f, z0, self.times, self.method, counter=counter)

    def registered(self, z0):
        return self.solver(self.dynamics, z0, self.times)

    def torchdiffeq(self, z0):
        import torchdiffeq
        return torchdiffeq.odeint(self.f, z0, self.times, method=self.method,
                                  rtol=self.args.rtol, atol=self.args.atol).transpose(0, 1)

    def hand(self, z0):
        loop = hand_loop(self.method)
        return loop(self.f, z0, list(self.times.unbind(0)))

    def bare_forward(self):
        with torch.no_grad():
            for _ in range(self.nfe):
                self.f(self.t0, self.z0)

    def bare_backward(self):
        z = self.z0.clone().requires_grad_()
        outs = [self.f(self.t0, z) for _ in range(self.nfe)]
        torch.autograd.backward(outs, [self.grad] * self.nfe)

    def forward_of(self, solve):
        def run():
            with torch.no_grad():
                solve(self.z0)
        return run

    def backward_of(self, solve):
        def run():
            z = self.z0.clone().requires_grad_()
            solve(z).sum().backward()
        return run

    def ratios(self, reps: int) -> Dict[str, float]:
        solvers = {"ours": self.ours, "tdq": self.torchdiffeq}
        if self.solver is not None:
            solvers["Solver"] = self.registered
        if hand_loop(self.method):
            solvers["hand"] = self.hand
        fns = {"bare_f": self.bare_forward, "bare_fb": self.bare_backward}
        for name, solve in solvers.items():
            fns[f"{name}_f"] = self.forward_of(solve)
            fns[f"{name}_fb"] = self.backward_of(solve)
        t = interleaved(fns, reps)
        out = {"bare_f_ms": 1e3 * t["bare_f"], "bare_fb_ms": 1e3 * t["bare_fb"]}
        for name in solvers:
            out[f"{name}_f"] = t[f"{name}_f"] / t["bare_f"]
            out[f"{name}_fb"] = t[f"{name}_fb"] / t["bare_fb"]
        return out


def fmt(x: Optional[float], spec: str = "6.2f") -> str:
    return format(x, spec) if x is not None else "     -"


def overhead_table(args) -> None:
    print("\n## 1. Solve time / bare evaluations (forward no_grad | forward+backward)")
    print(f"T={args.T} output times on [0, 10]; fixed grids step between outputs; dopri5 "
          f"rtol={args.rtol} atol={args.atol}")
    print("ours: the raw engine; Solver: the registered odepipe Solver (default backend, the "
          "engine); tdq: torchdiffeq.odeint")
    print(f"{'method':7} {'B':>5} {'L':>3} {'nfe':>5} {'bare f/fb ms':>14} | "
          f"{'ours':>6} {'Solver':>6} {'tdq':>6} {'hand':>6} | "
          f"{'ours':>6} {'Solver':>6} {'tdq':>6} {'hand':>6}")
    for method in args.methods:
        for batch in args.batches:
            for latent in args.latents:
                case = Case(method, batch, latent, args.T, args)
                r = case.ratios(args.reps)
                print(f"{method:7} {batch:5d} {latent:3d} {case.nfe:5d} "
                      f"{r['bare_f_ms']:6.1f}/{r['bare_fb_ms']:7.1f} | "
                      f"{fmt(r['ours_f'])} {fmt(r.get('Solver_f'))} {fmt(r['tdq_f'])} "
                      f"{fmt(r.get('hand_f'))} | {fmt(r['ours_fb'])} {fmt(r.get('Solver_fb'))} "
                      f"{fmt(r['tdq_fb'])} {fmt(r.get('hand_fb'))}",
                      flush=True)


def t_sweep(args) -> None:
    print(f"\n## 2. T sweep at B={args.sweep_batch}, L={args.sweep_latent} "
          "(forward+backward / bare)")
    print("(ratios to bare, and ms per output time: flat per-output cost = linear in T)")
    print(f"{'method':7} {'T':>4} {'nfe':>5} {'bare ms':>8} | {'ours':>6} {'tdq':>6} | "
          f"{'ours ms/T':>9} {'tdq ms/T':>9}")
    for method in ("rk4", "dopri5"):
        for n_times in args.sweep_T:
            case = Case(method, args.sweep_batch, args.sweep_latent, n_times, args)
            t = interleaved({"bare": case.bare_backward, "ours": case.backward_of(case.ours),
                             "tdq": case.backward_of(case.torchdiffeq)}, args.reps)
            base, ours, tdq = t["bare"], t["ours"] / t["bare"], t["tdq"] / t["bare"]
            print(f"{method:7} {n_times:4d} {case.nfe:5d} {1e3 * base:8.1f} | {ours:6.2f} "
                  f"{tdq:6.2f} | {1e3 * t['ours'] / n_times:9.3f} "
                  f"{1e3 * t['tdq'] / n_times:9.3f}", flush=True)


def training_step(mode: str, steps: int, batch: int, latent: int, n_times: int):
    """A closure running forward, an MSE loss and backward for ``mode`` in (adjoint, backprop)
    with ``steps`` rk4 steps over [0, 10], plus the counter it fills."""
    net = field(latent)
    params = tuple(net.parameters())
    f = lambda t, z: net(z)  # noqa: E731
    torch.manual_seed(1)
    z0 = torch.randn(batch, latent)
    times = torch.linspace(0, 10, n_times)
    target = torch.randn(batch, n_times, latent)
    counter = engine.NFECounter()

    def run():
        z = z0.clone().requires_grad_()
        if mode == "adjoint":
            out = engine.solve_fixed_adjoint(f, z, times, "rk4", params, 10.0 / steps,
                                             counter=counter)
        else:
            out = engine.solve_fixed(f, z, times, "rk4", 10.0 / steps, counter=counter)
        loss = (out - target).pow(2).mean()
        grads = torch.autograd.grad(loss, (z,) + params)
        return grads
    return run, counter


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        return int(next(line for line in fh if line.startswith(key)).split()[1])


def memory_child(mode: str, steps: int, batch: int, latent: int, n_times: int) -> None:
    """Runs in a fresh process: warm up on a tiny batch, reset the kernel's peak-RSS mark
    (``/proc/self/clear_refs``), run one full training step, print its peak RSS above the RSS
    just before it, in bytes."""
    training_step(mode, steps, 2, latent, n_times)[0]()
    run, _ = training_step(mode, steps, batch, latent, n_times)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_kib("VmRSS:")
    run()
    print(max(_status_kib("VmHWM:") - before, 0) * 1024)


def peak_memory(mode: str, steps: int, batch: int, latent: int, n_times: int,
                threads: int) -> float:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--_memory", mode,
                          str(steps), str(batch), str(latent), str(n_times)],
                         capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 2 ** 20


def adjoint_table(args) -> None:
    b, lat, n_times = args.adj_batch, args.adj_latent, args.adj_T
    print(f"\n## 3. Fixed-grid adjoint vs backprop: rk4, B={b}, L={lat}, T={n_times} outputs on "
          "[0, 10], training step = forward + MSE + backward; adjoint chunk_steps=8")
    print(f"{'steps':>5} | {'nfe f/b (adj)':>13} {'recomp':>7} | {'backprop s':>10} "
          f"{'adjoint s':>9} {'ratio':>5} | {'backprop MiB':>12} {'adjoint MiB':>11}")
    mem: Dict[str, List[float]] = {"adjoint": [], "backprop": []}
    for steps in args.adj_steps:
        runs = {mode: training_step(mode, steps, b, lat, n_times) for mode in mem}
        counter = runs["adjoint"][1]
        counter.reset()
        runs["adjoint"][0]()
        nfe = (counter.forward, counter.backward, counter.recompute)
        t = interleaved({mode: run for mode, (run, _) in runs.items()}, args.reps)
        for mode in mem:
            mem[mode].append(peak_memory(mode, steps, b, lat, n_times, args.threads))
        print(f"{steps:5d} | {nfe[0]:6d}/{nfe[1]:<6d} {nfe[2]:7d} | {t['backprop']:10.3f} "
              f"{t['adjoint']:9.3f} {t['adjoint'] / t['backprop']:5.2f} | "
              f"{mem['backprop'][-1]:12.1f} {mem['adjoint'][-1]:11.1f}", flush=True)
    spread = max(mem["adjoint"]) / min(mem["adjoint"]) - 1
    print(f"adjoint peak memory spread over {args.adj_steps[0]}..{args.adj_steps[-1]} steps: "
          f"{100 * spread:.1f}%")


def spiral_step(args) -> None:
    """recipes/spiral.yaml's training step, solver.backend odepipe vs torchdiffeq, A/B."""
    import statistics

    from odepipe.recipe import load_recipe
    from odepipe.run.build import build

    models, opts = {}, {}
    for backend in ("odepipe", "torchdiffeq"):
        recipe = load_recipe("spiral", [f"solver.backend={backend}", *args.spiral_overrides])
        torch.manual_seed(recipe.seed)
        data, models[backend] = build(recipe)
        opts[backend] = torch.optim.Adam(models[backend].parameters(), lr=recipe.train.lr)
    a, b = (list(m.parameters()) for m in models.values())
    assert all(torch.equal(x, y) for x, y in zip(a, b)), "the two builds must start identical"
    cfg, solver = recipe.train, models["odepipe"].solver
    items = list(data.dataset("train"))
    clip = cfg.grad_clip or float("inf")

    def step(backend: str, i: int) -> float:
        model, opt = models[backend], opts[backend]
        start = (i * cfg.batch_size) % max(1, len(items) - cfg.batch_size + 1)
        batch = data.collate(items[start:start + cfg.batch_size])
        torch.manual_seed(i)  # the same z0 noise on both sides
        model.solver.reset_nfe()
        loss = model.elbo(batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss.item()

    times: Dict[str, List[float]] = {"odepipe": [], "torchdiffeq": []}
    losses: Dict[str, List[float]] = {"odepipe": [], "torchdiffeq": []}
    warm = 2
    for i in range(args.spiral_steps + warm):
        order = ("odepipe", "torchdiffeq") if i % 2 == 0 else ("torchdiffeq", "odepipe")
        for backend in order:
            start = time.perf_counter()
            losses[backend].append(step(backend, i))
            times[backend].append(time.perf_counter() - start)
    t_o, t_t = times["odepipe"][warm:], times["torchdiffeq"][warm:]
    ratio = statistics.median(t / o for o, t in zip(t_o, t_t))
    drift = [abs(x - y) / max(1.0, abs(y)) for x, y in zip(losses["odepipe"],
                                                           losses["torchdiffeq"])]
    print(f"\n## spiral training step: solver {solver.method} step_size={solver.step_size} "
          f"adjoint={solver.adjoint}, batch {cfg.batch_size}, lr {cfg.lr} (constant here), "
          f"grad_clip {cfg.grad_clip}; {args.spiral_steps} alternating steps after {warm} "
          f"warm-up, {torch.get_num_threads()} thread(s)")
    print(f"backend odepipe     median {1e3 * statistics.median(t_o):8.2f} ms/step "
          f"(min {1e3 * min(t_o):.2f}), NFE/step {models['odepipe'].solver.nfe_forward}")
    print(f"backend torchdiffeq median {1e3 * statistics.median(t_t):8.2f} ms/step "
          f"(min {1e3 * min(t_t):.2f}), NFE/step {models['torchdiffeq'].solver.nfe_forward}")
    print(f"speed-up torchdiffeq/odepipe (median of per-round ratios): {ratio:.3f} "
          f"[{'PASS' if ratio >= 1.2 else 'FAIL'}: >= 1.2]; median/median "
          f"{statistics.median(t_t) / statistics.median(t_o):.3f}")
    print(f"loss after {len(drift)} steps: odepipe {losses['odepipe'][-1]:.6f}, torchdiffeq "
          f"{losses['torchdiffeq'][-1]:.6f}; relative difference last {drift[-1]:.1e}, "
          f"worst {max(drift):.1e}, first {drift[0]:.1e}")
    # the backends differ by float32 rounding (~1e-7 in the weights after one step); Adam at
    # the recipe's lr divides each gradient by its running RMS, so rounding noise in tiny
    # gradients becomes full-size steps and the two trainings part ways after ~20-30 steps
    # (with SGD they stay within 3e-8 of each other over 60 steps: measured, docs/solvers.md)
    marks = [n for n in (1, 10, 20, 30, 50, 100, 200) if n <= len(drift)]
    print("relative loss difference by step: " + ", ".join(f"{n}: {drift[n - 1]:.1e}"
                                                           for n in marks))


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--quick", action="store_true", help="a small subset")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--sections", default="1,2,3", help="which of the 3 tables to run")
    p.add_argument("--adj-T", type=int, default=101, help="output times in table 3")
    p.add_argument("--spiral-step", action="store_true",
                   help="only the spiral training-step A/B, backend odepipe vs torchdiffeq")
    p.add_argument("--spiral-steps", type=int, default=100, help="timed steps of each backend")
    p.add_argument("--spiral-overrides", nargs="*", default=[],
                   help="extra recipe overrides for --spiral-step (key=value)")
    p.add_argument("--_memory", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args._memory:
        mode, *rest = args._memory
        memory_child(mode, *map(int, rest))
        return
    args.methods = ("euler", "rk4", "dopri5")
    args.batches, args.latents = ((1, 100), (4,)) if args.quick else ((1, 100, 1000), (4, 64))
    args.sweep_batch, args.sweep_latent = (100, 64) if args.quick else (1000, 64)
    args.sweep_T = (50, 100) if args.quick else (50, 100, 200, 400)
    args.adj_batch, args.adj_latent = 100, 64
    args.adj_steps = (10, 100) if args.quick else (10, 100, 1000)
    if args.quick:
        args.reps = min(args.reps, 2)
    print(f"# solver_overhead: torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"fastest of {args.reps} interleaved runs after a warm-up")
    if args.spiral_step:
        spiral_step(args)
        return
    sections = set(args.sections.split(","))
    if "1" in sections:
        overhead_table(args)
    if "2" in sections:
        t_sweep(args)
    if "3" in sections:
        adjoint_table(args)


if __name__ == "__main__":
    main()
