"""The series figures a user would show: titled, labelled, one legend, the observed window
shaded, each panel's own error, the posterior-predictive band; irregular data drawn only where
it was observed. Checked through the matplotlib objects, not pixels."""

import math
import os

import numpy as np
import pytest
import torch
from odepipe_plugins.irregular.odernn import ODERNNEncoder
from odepipe_plugins.latent_ode.decoders import MLPDecoder
from odepipe_plugins.latent_ode.dynamics import MLPDynamics
from odepipe_plugins.latent_ode.solvers import SOLVERS
from odepipe_plugins.series.csv_source import CSVData, resolve_data_path
from odepipe_plugins.series.predictive import posterior_predictive
from odepipe_plugins.series.series_plot import draw_series
from odepipe_plugins.series.spiral import SpiralData
from odepipe_plugins.series.spiral_plot import draw_spirals

import odepipe
from odepipe import Pipeline

SMALL = dict(n_spirals=4, n_test=4, n_total=60, n_observed=20, n_extrapolate=10)


def _model(obs_dim=2):
    torch.manual_seed(0)
    return Pipeline(ODERNNEncoder(latent_dim=3, obs_dim=obs_dim, hidden_size=8, ode_hidden_size=8),
                    MLPDynamics(latent_dim=3, hidden_size=8), SOLVERS["rk4"](step_size=0.25),
                    MLPDecoder(latent_dim=3, obs_dim=obs_dim, std=0.2), latent_dim=3).eval()


@pytest.fixture
def close_figures():
    yield
    odepipe.pyplot().close("all")


def _span(ax):
    """The x extent of the (one) shaded span of an axes."""
    (patch,) = ax.patches
    x0 = patch.get_x()
    return x0, x0 + patch.get_width()


def _scatter(ax, label):
    (points,) = [c for c in ax.collections if c.get_label() == label]
    return points.get_offsets()


def test_spiral_plot_is_written(tmp_path):
    data = SpiralData(seed=0, **SMALL)
    data.plot(_model(), data.collate(data.dataset("test")), str(tmp_path))
    assert os.path.getsize(tmp_path / "spirals.png") > 10_000


def test_spiral_figure_explains_itself(close_figures):
    data = SpiralData(seed=0, **SMALL)
    model, batch = _model(), data.collate(data.dataset("test"))
    fig = draw_spirals(model, batch)
    assert "posterior draws" in fig._suptitle.get_text()
    assert len(fig.legends) == 1  # one shared legend, naming every kind of line
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    for entry in ("truth", "observed points", "observed window", "x: ± 1 predictive std",
                  "end of the observed window"):
        assert entry in legend
    plane, over_time = fig.axes[:4], fig.axes[4:8]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    T = batch.times.shape[0]
    pred = model.extrapolate(batch, torch.cat([batch.times, batch.extras["future_times"]]))
    for i, ax in enumerate(plane):  # each panel's own extrapolation MSE, as test_extrap_mse
        error = float(((pred[i, T:] - batch.extras["future"][i]) ** 2).mean())
        assert ax.get_title().endswith(f"extrapolation MSE {error:.3g}")
    for ax in over_time:
        assert _span(ax) == pytest.approx((0.0, float(batch.times[-1])))


def test_irregular_spirals_mark_only_the_observed_points(close_figures):
    data = SpiralData(seed=1, n_irregular=7, **SMALL)
    batch = data.collate(data.dataset("test"))
    fig = draw_spirals(_model(), batch)
    for i in range(4):
        seen = batch.mask[i] > 0
        assert int(seen.sum()) == 7
        plane = _scatter(fig.axes[i], "observed points")
        assert np.allclose(plane, batch.values[i][seen].numpy())
        over_time = _scatter(fig.axes[4 + i], "x: observed points")
        assert np.allclose(over_time[:, 0], batch.times[seen].numpy())


def test_predictive_band_covers_draws_and_decoder_noise():
    data = SpiralData(seed=0, **SMALL)
    model, batch = _model(), data.collate(data.dataset("test"))
    mean, std = posterior_predictive(model, batch, batch.times, samples=8)
    assert mean.shape == std.shape == batch.values.shape
    assert (std >= 0.2 - 1e-6).all()  # at least the decoder's own std
    again, _ = posterior_predictive(model, batch, batch.times, samples=8)
    assert torch.equal(mean, again)  # the same draws for the same seed
    assert not torch.allclose(mean, model.extrapolate(batch, batch.times))  # a mean of draws


def test_csv_figure_shows_seen_part_held_out_truth_and_errors(tmp_path, close_figures):
    data = CSVData(resolve_data_path("data/example_series.csv"))
    model = _model()
    test = data.dataset("test")[:3]
    batch = data.collate(test)
    panels = data.holdout_panels(model, batch)
    fig = draw_series(data.codec, panels, "csv", error_name="held-out MSE")
    assert fig._suptitle.get_text() == "csv" and len(fig.legends) == 1
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"observed window", "observed points", "held-out truth", "prediction (mean)",
            "± 1 predictive std"} <= legend
    axes = np.array(fig.axes).reshape(2, 3)  # features x series
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["x", "v"]
    assert all(ax.get_xlabel() == "time" for ax in fig.axes)
    for j, i in enumerate(test):
        series = data.series[i]
        cut = len(series.times) - max(1, math.floor(0.25 * len(series.times)))
        for ax in axes[:, j]:
            assert _span(ax) == pytest.approx((series.times[0], series.times[cut - 1]))
            assert "held-out MSE" in ax.get_title()
    # the errors of a series' panels average, weighted by their points, to its extrap_mse
    seed, future = data.holdout_seed(batch)
    counts = future.sum(1).numpy()  # (B, D)
    per_series = (np.stack([p.errors for p in panels]) * counts).sum(1) / counts.sum(1)
    assert per_series.sum() == pytest.approx(data.evaluate(model, batch)["extrap_mse"], rel=1e-5)
    data.plot(model, batch, str(tmp_path))
    assert os.path.getsize(tmp_path / "series.png") > 10_000
