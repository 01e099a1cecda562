"""Smoke tests of the performance benchmarks and `odepipe compare`: tiny sizes, no timings."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import sys

import torch
from click.testing import CliRunner
from odepipe_plugins.depth import compare as perf_compare

import odepipe.cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = odepipe.cli.make_cli(odepipe.cli.new_host())


def _bench(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks",
                                                                     name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(method, k, mb, s):
    return {"method": method, "layers": k, "peak_mb": mb, "step_s": s, "saved_mb": mb / 2,
            "batch_size": 4, "latent_dim": 2, "hidden_size": 4, "threads": 1}


def test_claims_pass_and_fail_on_the_numbers():
    good = [_row("resnet", 10, 10, 0.1), _row("backprop", 10, 10, 0.1),
            _row("adjoint", 10, 10, 0.3),
            _row("resnet", 1000, 90, 1.0), _row("backprop", 1000, 80, 1.0),
            _row("adjoint", 1000, 10.5, 3.0)]
    text = perf_compare.table(good)
    assert "FAIL" not in text and text.count("PASS") == 3
    bad = [dict(r) for r in good]
    bad[5]["peak_mb"] = 12.0  # adjoint grew 20%
    bad[3]["step_s"] = 4.0  # resnet slower than adjoint at K=1000
    assert perf_compare.table(bad).count("FAIL") == 2


def test_measure_memory_counts_solver_steps_and_adjoint_backward():
    options = dict(batch_size=4, latent_dim=2, hidden_size=4)
    for method in ("resnet", "backprop", "adjoint"):
        row = perf_compare.measure_memory(method, 3, steps=1, **options)
        assert row["nfe_forward"] == 3, method  # K Euler steps / K layers, exactly
        assert (row["nfe_backward"] > 0) == (method == "adjoint")
        assert row["saved_mb"] > 0 and row["peak_mb"] >= 0


def test_odepipe_compare_runs_children_and_writes_plot_and_rows(tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(CLI, [
        "compare", "--layers", "3", "--methods", "resnet,adjoint", "--steps", "1",
        "--batch-size", "4", "--latent-dim", "2", "--hidden-size", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "adj/res time" in result.output and "resnet faster per step" in result.output
    assert (out / "resnet_vs_ode.png").stat().st_size > 1000
    rows = json.loads((out / "resnet_vs_ode.json").read_text())
    assert [(r["method"], r["layers"], r["nfe_forward"]) for r in rows] == [
        ("resnet", 3, 3), ("adjoint", 3, 3)]


def test_odepipe_compare_refuses_unknown_methods_and_bad_depths():
    runner = CliRunner()
    result = runner.invoke(CLI, ["compare", "--methods", "resnet,rk9"])
    assert result.exit_code == 2 and "rk9" in result.output
    result = runner.invoke(CLI, ["compare", "--layers", "10,0"])
    assert result.exit_code == 2 and "K must be >= 1" in result.output


def test_pipeline_overhead_direct_path_is_the_same_model(monkeypatch, capsys):
    bench = _bench("pipeline_overhead")
    monkeypatch.setattr(sys, "argv", ["x", "--steps", "1", "data.n_spirals=8", "data.n_test=4",
                                      "train.batch_size=8"])
    bench.main()
    out = capsys.readouterr().out
    assert "agree to 0.0e+00" in out  # identical losses: same networks, same arithmetic
    assert "overhead ratio pipeline/direct" in out and "inside the dynamics function" in out


def test_spiral_vs_reference_quick_races_three_runners_and_writes_both_races(capsys, tmp_path):
    bench = _bench("spiral_vs_reference")
    threads = torch.get_num_threads()
    try:
        result = bench.main(["--quick", "--budget", "0.6", "--eval-seconds", "0.2",
                             "--out", str(tmp_path / "svr")])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "race (a) tools" in out and "race (b) recipes" in out
    saved = json.loads((tmp_path / "svr.json").read_text())
    assert (tmp_path / "svr.png").stat().st_size > 0
    assert saved["quick"] and saved["seeds"] == [0] == result["seeds"]
    for runner in bench.RUNNERS:
        curve = saved["curves"][runner]["0"]
        assert curve[0]["step"] == 0 and curve[0]["seconds"] == 0.0  # scored before training
        assert curve[-1]["step"] >= 1 and all(math.isfinite(c["extrap_mse"]) for c in curve)
    rows = saved["races"]["tools"]["rows"]
    assert [r["threshold"] for r in rows] == list(bench.THRESHOLDS)
    for row in rows:  # every reported time is a real evaluation at or below the threshold
        for runner in ("hand", "odepipe-reference"):
            t = row[runner]["seconds_by_seed"]["0"]
            curve = saved["curves"][runner]["0"]
            if t is None:
                assert min(c["extrap_mse"] for c in curve) > row["threshold"]
                assert "not reached in 0.6 s" in out
            else:
                assert any(c["seconds"] == t and c["extrap_mse"] <= row["threshold"]
                           for c in curve)


def test_spiral_race_never_reports_an_unreached_threshold_as_a_time():
    bench = _bench("spiral_vs_reference")
    curve = [{"step": 0, "seconds": 0.0, "extrap_mse": 5.0},
             {"step": 9, "seconds": 10.0, "extrap_mse": 0.25},
             {"step": 20, "seconds": 20.0, "extrap_mse": 3.0},   # a jump back up
             {"step": 30, "seconds": 30.0, "extrap_mse": 0.2}]
    assert bench.time_to(curve, 1.0) == 10.0 and bench.time_to(curve, 0.3) == 10.0
    assert bench.time_to(curve, 0.1) is None  # the final 0.2 is not a time to 0.1
    assert bench.median_time([30.0, None, 10.0]) == 30.0  # the unreached seed is the slowest
    assert bench.median_time([None, 5.0, None]) is None   # the median seed never reached
    assert bench.median_time([4.0, 2.0]) == 3.0 and bench.median_time([4.0, None]) is None


def test_reference_loss_is_the_gaussian_elbo():
    bench = _bench("spiral_vs_reference")
    torch.manual_seed(0)
    model = bench.Reference()
    x, ts = torch.randn(3, 5, 2), torch.linspace(0, 1, 5)
    torch.manual_seed(1)
    loss = model.loss(x, ts)
    torch.manual_seed(1)
    mean, logvar = model.rec(x)
    z0 = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
    import torchdiffeq
    pred = model.dec(torchdiffeq.odeint(model.func, z0, ts).transpose(0, 1))
    log_lik = torch.distributions.Normal(pred, 0.3).log_prob(x).sum((1, 2))
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, (0.5 * logvar).exp()),
        torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(loss, (kl - log_lik).mean())
