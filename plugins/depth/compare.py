"""ResNet vs Neural ODE: time per training step and peak memory against depth K.

Three ways to train the same latent model (GRU encoder, MLP field, MLP decoder on the spirals):

- ``resnet``: the ``resnet`` solver, K residual blocks with their own weights;
- ``backprop``: ``euler`` with K steps, gradients by backpropagating through the solver;
- ``adjoint``: ``euler`` with K steps and ``adjoint: true`` (gradients from a backward solve).

How memory is measured, and why this way: every (method, K) runs in a fresh Python process, so
nothing one configuration allocated can hide another's peak. Inside it, after the model, data
and optimizer exist and the garbage collector has run, the kernel's high-water mark of resident
memory is reset (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0) and the current resident size
recorded; after the training steps the peak (``VmHWM``) minus that baseline is the memory the
steps needed: activations kept for backward, gradients, Adam's state, allocator slack. This counts
every byte the process touched, which ``tracemalloc`` (Python objects only) would miss, and it
needs no CUDA. Beside it, ``saved_mb`` counts the bytes of the distinct tensors autograd saved for
backward during one forward pass (parameters excluded), the part that grows with K.

Imported by ``odepipe compare`` and ``benchmarks/resnet_vs_ode.py``; torch is imported only in
the functions that run a measurement.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import odepipe

METHODS = ("resnet", "backprop", "adjoint")
DEFAULT_LAYERS = (10, 30, 100, 300, 1000)
#: glibc malloc serves every block over 64 KiB with its own mmap and unmaps it when freed, so
#: the resident set follows the memory actually in use rather than what the allocator keeps
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "131072"}


def base_recipe(batch_size: int, latent_dim: int, hidden_size: int) -> Dict[str, Any]:
    """The model every configuration trains; only the solver changes."""
    return {
        "seed": 0,
        "data": {"type": "spiral", "n_spirals": batch_size, "n_test": 4, "noise_std": 0.3},
        "encoder": {"type": "gru", "hidden_size": 25},
        "dynamics": {
            "type": "mlp",
            "hidden_size": hidden_size,
            "num_layers": 2,
            "activation": "elu",
        },
        "solver": {"type": "euler", "step_size": 1.0},  # replaced per configuration
        "decoder": {"type": "mlp", "hidden_size": 20},
        "model": {"latent_dim": latent_dim},
        "train": {
            "batch_size": batch_size,
            "lr": 1e-3,
            "grad_clip": 10.0,
            "threads": 1,
            "device": "cpu",
        },
    }


def _proc_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}; peak memory needs Linux")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def build_model(
    method: str,
    layers: int,
    batch_size: int = 128,
    latent_dim: int = 16,
    hidden_size: int = 64,
    threads: int = 1,
) -> Any:
    """The pipeline, one fixed batch and a training-step function for one configuration."""
    import torch

    from odepipe import PluginHost, build, validate

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    raw = base_recipe(batch_size, latent_dim, hidden_size)
    if method == "resnet":
        raw["solver"] = {"type": "resnet", "layers": layers}
    else:
        # torchdiffeq, as measured in docs/performance.md (odepipe's engine: docs/solvers.md)
        raw["solver"] = {
            "type": "euler",
            "step_size": 1.0,
            "adjoint": method == "adjoint",
            "backend": "torchdiffeq",
        }
    data, model = build(validate(raw, "<compare>", PluginHost(entry_points=False)))
    batch = data.collate(list(data.dataset("train"))[:batch_size])
    if method != "resnet":  # K Euler steps over the observed window, exactly
        span = float(batch.times[-1] - batch.times[0])
        model.solver.step_size = span / layers * (1 + 1e-6)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        """One training step as odepipe.run.train does it: ELBO, backward, clip, Adam."""
        model.solver.reset_nfe()
        loss = model.elbo(batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()

    return model, batch, step


def measure_memory(method: str, layers: int, steps: int = 2, **options: Any) -> Dict[str, Any]:
    """Peak memory of ``steps`` training steps over the baseline (MB); run in a fresh process.

    Also returns autograd-saved MB of one forward pass and NFE per step."""
    import gc

    model, batch, step = build_model(method, layers, **options)
    gc.collect()
    baseline_kb = _proc_kb("VmRSS")
    exact = _reset_peak()
    for _ in range(steps):
        step()
    peak_kb = _proc_kb("VmHWM")
    nfe = {"nfe_forward": model.solver.nfe_forward, "nfe_backward": model.solver.nfe_backward}
    return {
        "method": method,
        "layers": layers,
        **options,
        "peak_mb": (peak_kb - baseline_kb) / 1024,
        "baseline_mb": baseline_kb / 1024,
        "peak_exact": exact,
        "saved_mb": _saved_mb(model, batch) / 2**20,
        **nfe,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def measure_time(
    layers: int, methods: Sequence[str] = METHODS, steps: int = 3, **options: Any
) -> Dict[str, float]:
    """Seconds per training step of every method at one K, in this one process: one warm-up
    step each, then ``steps`` rounds that step each method in turn (so load from elsewhere on
    the machine falls on all of them alike); the median per method."""
    steppers = {m: build_model(m, layers, **options)[2] for m in methods}
    for step in steppers.values():
        step()
    times: Dict[str, List[float]] = {m: [] for m in methods}
    for _ in range(steps):
        for method, step in steppers.items():
            start = time.perf_counter()
            step()
            times[method].append(time.perf_counter() - start)
    return {m: statistics.median(t) for m, t in times.items()}


def _saved_mb(model: Any, batch: Any) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves during one forward pass."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: Dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model.elbo(batch).loss
    del loss
    return sum(seen.values())


def run_child(task: str, **kwargs: Any) -> Any:
    """Runs :func:`measure_memory` or :func:`measure_time` in a fresh Python process."""
    spec = json.dumps({"task": task, **kwargs})
    proc = subprocess.run(
        [sys.executable, "-m", "odepipe_plugins.depth.compare", spec],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **MALLOC_ENV},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{task} {kwargs} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(
    layers: Sequence[int] = DEFAULT_LAYERS,
    methods: Sequence[str] = METHODS,
    steps: int = 3,
    echo: Any = print,
    **options: Any,
) -> List[Dict[str, Any]]:
    """Every (method, K): memory in a process of its own, time per step in one process per K
    that steps the methods in turn. Returns one row per (method, K)."""
    options = {"batch_size": 128, "latent_dim": 16, "hidden_size": 64, "threads": 1, **options}
    rows = []
    for k in layers:
        seconds = run_child("time", layers=k, methods=list(methods), steps=steps, **options)
        for method in methods:
            row = run_child("memory", method=method, layers=k, **options)
            row["step_s"] = seconds[method]
            echo(
                f"  measured {method:<8} K={k:<5} {row['step_s'] * 1e3:9.1f} ms/step "
                f"{row['peak_mb']:8.1f} MB peak"
            )
            rows.append(row)
    return rows


def _get(rows: Sequence[Dict[str, Any]], method: str, k: int) -> Optional[Dict[str, Any]]:
    return next((r for r in rows if r["method"] == method and r["layers"] == k), None)


def table(rows: Sequence[Dict[str, Any]]) -> str:
    """The side-by-side table with ratios, and the claims checked on the measured rows."""
    ks = sorted({r["layers"] for r in rows})
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    head = (
        f"{'K':>5} | "
        + " ".join(f"{m + ' ms':>12}" for m in methods)
        + " | "
        + " ".join(f"{m + ' MB':>12}" for m in methods)
        + " | "
        + " ".join(f"{m + ' saved':>14}" for m in methods)
    )
    ratio_cols = []
    if {"resnet", "adjoint"} <= set(methods):
        ratio_cols.append(
            ("adj/res time", lambda k: _ratio(rows, "adjoint", "resnet", k, "step_s"))
        )
    if {"backprop", "adjoint"} <= set(methods):
        ratio_cols.append(
            ("bp/adj mem", lambda k: _ratio(rows, "backprop", "adjoint", k, "peak_mb"))
        )
    head += " | " + " ".join(f"{name:>12}" for name, _ in ratio_cols)
    lines = [head, "-" * len(head)]
    for k in ks:
        cells = [_get(rows, m, k) for m in methods]
        line = (
            f"{k:>5} | "
            + " ".join(f"{c['step_s'] * 1e3:12.1f}" if c else f"{'-':>12}" for c in cells)
            + " | "
            + " ".join(f"{c['peak_mb']:12.1f}" if c else f"{'-':>12}" for c in cells)
            + " | "
            + " ".join(f"{c['saved_mb']:14.2f}" if c else f"{'-':>14}" for c in cells)
            + " | "
            + " ".join(f"{fn(k):12.2f}" for _, fn in ratio_cols)
        )
        lines.append(line)
    lines += ["", *claims(rows)]
    return "\n".join(lines)


def _ratio(rows: Sequence[Dict[str, Any]], a: str, b: str, k: int, key: str) -> float:
    ra, rb = _get(rows, a, k), _get(rows, b, k)
    if not ra or not rb or not rb[key]:
        return float("nan")
    return ra[key] / rb[key]


def claims(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """The founding claims, each checked on the measured rows (lines that say PASS or FAIL)."""
    ks = sorted({r["layers"] for r in rows})
    out = []
    lo, hi = ks[0], ks[-1]
    adj_lo, adj_hi = _get(rows, "adjoint", lo), _get(rows, "adjoint", hi)
    if adj_lo and adj_hi and lo != hi:
        change = adj_hi["peak_mb"] / adj_lo["peak_mb"] - 1
        out.append(
            f"adjoint peak memory K={hi} vs K={lo}: {adj_hi['peak_mb']:.1f} vs "
            f"{adj_lo['peak_mb']:.1f} MB ({change:+.1%}) "
            f"[{'PASS' if abs(change) <= 0.10 else 'FAIL'}: within 10%]"
        )
    bp_lo, bp_hi = _get(rows, "backprop", lo), _get(rows, "backprop", hi)
    if bp_lo and bp_hi and lo != hi:
        growth = bp_hi["peak_mb"] / bp_lo["peak_mb"]
        out.append(
            f"backprop-through-solver peak memory K={hi} vs K={lo}: {bp_hi['peak_mb']:.1f}"
            f" vs {bp_lo['peak_mb']:.1f} MB (x{growth:.1f}) "
            f"[{'PASS' if growth > 1.5 else 'FAIL'}: grows with K]"
        )
    faster = [k for k in ks if _ratio(rows, "adjoint", "resnet", k, "step_s") > 1]
    both = [k for k in ks if _get(rows, "adjoint", k) and _get(rows, "resnet", k)]
    if both:
        out.append(
            f"resnet faster per step than adjoint at K in {faster} of {both} "
            f"[{'PASS' if faster == both else 'FAIL'}]"
        )
    return out


def plot(rows: Sequence[Dict[str, Any]], path: str) -> str:
    """Memory and time per step against K (log-log), one line per method; returns the path."""
    plt = odepipe.pyplot()

    fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
    for method in METHODS:
        pts = sorted((r["layers"], r) for r in rows if r["method"] == method)
        if not pts:
            continue
        ks = [k for k, _ in pts]
        ax_mem.plot(ks, [r["peak_mb"] for _, r in pts], "o-", label=method)
        ax_time.plot(ks, [r["step_s"] * 1e3 for _, r in pts], "o-", label=method)
    for ax, label in (
        (ax_mem, "peak memory of a training step (MB over baseline)"),
        (ax_time, "time per training step (ms)"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("K (ResNet layers = Euler steps)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    r0 = rows[0]
    fig.suptitle(
        f"ResNet vs Neural ODE (batch {r0['batch_size']}, latent {r0['latent_dim']}, "
        f"field width {r0['hidden_size']}, {r0['threads']} thread)"
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__":  # the child process of run_child
    _spec = json.loads(sys.argv[1])
    _task = _spec.pop("task")
    print(json.dumps((measure_memory if _task == "memory" else measure_time)(**_spec)))
