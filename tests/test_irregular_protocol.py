"""The irregular-spiral protocol: which points are observed, which are scored as interpolation
and extrapolation, the RMSE on cases whose answer is known, the ODE-RNN's reading order, and
the benchmark's smoke run and table."""

import importlib.util
import math
import os

import pytest
import torch
from odepipe_plugins.irregular.odernn import ODERNNEncoder
from odepipe_plugins.latent_ode.observed import observed_first
from odepipe_plugins.irregular.protocol import observed_points, squared_error_sums
from odepipe_plugins.irregular.spirals import IrregularSpiralData

from odepipe import Batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _benchmark():
    path = os.path.join(ROOT, "benchmarks", "irregular_spirals.py")
    spec = importlib.util.spec_from_file_location("irregular_spirals", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_observed_points_from_every_mask_form():
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert observed_points(mask, mask.shape).tolist() == [[True, False, True]]
    partial = torch.tensor([[[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]])  # (B, T, D)
    assert observed_points(partial, partial.shape).tolist() == [[True, False, False]]
    assert observed_points(None, torch.Size([2, 3, 2])).all()


def test_squared_errors_on_a_case_worked_by_hand():
    clean = torch.zeros(2, 4, 2)
    seen = torch.tensor([[True, True, False, False], [True, False, True, False]])
    window = torch.zeros(2, 4, 2)
    window[0, 2] = torch.tensor([3.0, 3.0])  # unobserved: squared error 9 on both coordinates
    window[1, 0] = torch.tensor([2.0, 0.0])  # observed: (4 + 0) / 2 = 2 at that point
    future, clean_future = torch.ones(2, 3, 2), torch.zeros(2, 3, 2)
    future[1] = 3.0
    out = squared_error_sums(window, future, clean, clean_future, seen)
    # per spiral, then summed: interp (9 + 0) / 2 + 0 = 4.5; observed 0 + (2 + 0) / 2 = 1
    assert out["interp_mse"] == pytest.approx(4.5)
    assert out["observed_mse"] == pytest.approx(1.0)
    assert out["extrap_mse"] == pytest.approx(1.0 + 9.0)
    everything = squared_error_sums(
        window, future[:, :0], clean, clean_future[:, :0], torch.ones(2, 4, dtype=torch.bool)
    )
    assert set(everything) == {"observed_mse"}  # no unobserved points, no continuation


class _Oracle:
    """Predicts the noiseless curve, plus ``shift`` at the window's unobserved points."""

    def __init__(self, data, shift=0.0):
        self.data, self.shift = data, shift

    def extrapolate(self, batch, times):
        truth = torch.cat([batch.extras["clean"], batch.extras["future"]], dim=1)
        T = batch.times.shape[0]
        out = truth.clone()
        out[:, :T] += self.shift * (1 - batch.mask).unsqueeze(-1)
        return out


@pytest.mark.parametrize("n", [30, 100])
def test_the_source_observes_n_points_and_scores_the_rest(n):
    data = IrregularSpiralData(n_spirals=6, n_test=5, n_valid=0, n_irregular=n)
    batch = data.collate(data.dataset("test"))
    assert batch.mask.shape == (5, 100) and (batch.mask.sum(1) == n).all()
    future_times = batch.extras["future_times"]
    assert future_times.shape == (100,) and bool(future_times.min() > batch.times.max())
    perfect = data.evaluate(_Oracle(data), batch)
    assert perfect["extrap_mse"] == 0 and perfect["observed_mse"] == 0
    off = data.evaluate(_Oracle(data, shift=2.0), batch)  # wrong only where nothing was seen
    assert off["observed_mse"] == 0 and off["extrap_mse"] == 0
    if n == 100:
        assert "interp_mse" not in off  # every point seen: nothing to interpolate
    else:
        assert off["interp_mse"] == pytest.approx(5 * 4.0)  # 5 spirals, error 2 on both axes
        assert math.sqrt(off["interp_mse"] / 5) == pytest.approx(2.0)  # the RMSE, data units
        assert off["recon_mse_clean"] == pytest.approx(5 * 4.0 * (100 - n) / 100)


def test_each_spiral_has_its_own_draw_fixed_by_the_seed():
    a = IrregularSpiralData(n_spirals=6, n_test=4, n_valid=0, n_irregular=50)
    b = IrregularSpiralData(n_spirals=6, n_test=4, n_valid=0, n_irregular=50)
    c = IrregularSpiralData(seed=1, n_spirals=6, n_test=4, n_valid=0, n_irregular=50)
    assert torch.equal(a.mask, b.mask) and not torch.equal(a.mask, c.mask)
    assert not torch.equal(a.mask[0], a.mask[1])


def test_observed_first_moves_each_samples_points_to_the_front():
    times = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]])
    inputs = torch.arange(8.0).reshape(2, 4, 1)
    seen = torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    t, x, o = observed_first(times, inputs, seen)
    assert t.tolist() == [[1.0, 3.0], [0.0, 0.0]]  # padding repeats the last observed time
    assert x[:, :, 0].tolist()[0] == [1.0, 3.0] and x[1, 0, 0] == 4.0
    assert o.tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_odernn_reads_only_the_observed_points():
    enc = ODERNNEncoder(latent_dim=2, obs_dim=2, hidden_size=6).eval()
    times = torch.linspace(0, 1, 6)
    mask = torch.tensor([[1.0, 0, 1, 0, 0, 1]])
    values = torch.randn(1, 6, 2)
    full = enc(Batch(times=times, values=values, mask=mask)).mean
    keep = mask[0] > 0
    sub = Batch(times=times[keep], values=values[:, keep], mask=None)
    assert torch.allclose(full, enc(sub).mean, atol=1e-6)  # skipped points cost nothing
    unseen_first = mask.clone()
    unseen_first[0, 0] = 0.0
    later = torch.tensor([False, False, True, False, False, True])
    carried = enc(Batch(times=times, values=values, mask=unseen_first)).mean  # back to t = 0
    starts_late = enc(Batch(times=times[later], values=values[:, later])).mean  # t0 = 0.4
    assert not torch.allclose(carried, starts_late)  # the way back to the batch's t0 counts


def test_the_table_says_median_range_and_what_the_grid_lacks():
    bench = _benchmark()
    rows = [
        {
            "model": "odernn",
            "observed": 50,
            "seed": s,
            "steps": 10,
            "train_seconds": 1.0,
            "extrap_rmse": v,
            "interp_rmse": 0.1,
            "observed_rmse": 0.1,
        }
        for s, v in enumerate([0.3, 0.1, 0.2])
    ]
    rows.append(
        {
            "model": "rnn",
            "observed": 50,
            "seed": 0,
            "steps": 10,
            "train_seconds": 1.0,
            "extrap_rmse": 0.8,
            "interp_rmse": 0.4,
            "observed_rmse": 0.3,
        }
    )
    text = bench.table(rows)
    assert "0.200 [0.100-0.300] x3" in text and "0.800 x1" in text
    assert "4.00x" in text  # RNN median / ODE-RNN median
    ratio_rows = [line for line in text.splitlines() if line.startswith("RNN / ")]
    assert len(ratio_rows) == 3  # per latent ODE encoder, then the paper's
    assert "4.00x" in ratio_rows[1] and "4.00x" not in ratio_rows[0]
    assert "NOT a full grid" in text and "RNN baseline (solver=gru_baseline) n=50: 1 seed" in text
    assert "latent ODE, GRU encoder n=30: not run" in text  # the paper's grid, gaps named
    assert "0.1502" in text and "0.5936" in text  # the paper's n = 50 column beside ours


def test_the_benchmark_quick_run_trains_every_model(tmp_path):
    bench = _benchmark()
    text = bench.main(["--quick", "--out", str(tmp_path)])
    for label, _ in bench.MODELS.values():
        assert label in text
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all('"steps": 2' in line for line in lines)
    assert "NOT a full grid" in text  # one seed, one column: said so
