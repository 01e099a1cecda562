"""Irregular series: the ODE-RNN encoder, the RNN baseline solver, masked spirals and the
linear_spirals source."""
import math

import pytest
import torch

from odepipe import Batch
from odepipe import Run
from odepipe.recipe import load_recipe
from odepipe.run.train import train
from odepipe.testing import check_encoder, make_batch
from odepipe_plugins.irregular.rnn_baseline import GRUBaseline
from odepipe_plugins.series.spiral import SpiralData
from odepipe_plugins.series.linear_spirals import LinearSpiralData
from odepipe_plugins.irregular.odernn import ODERNNEncoder

from conftest import TINY_SPIRAL


def _batch(B=3, T=6, D=2, per_sample=False):
    times = torch.linspace(0, 1, T)
    if per_sample:
        times = times.expand(B, T).clone()
    mask = (torch.rand(B, T, D) > 0.3).float()
    return Batch(times=times, values=torch.randn(B, T, D), mask=mask)


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_odernn_shapes_and_gradients(method):
    enc = ODERNNEncoder(latent_dim=4, obs_dim=2, hidden_size=8, ode_hidden_size=8, method=method,
                        substeps=2)
    post = enc(_batch())
    assert post.mean.shape == post.logvar.shape == (3, 4)
    post.mean.sum().backward()
    assert enc.field[0].weight.grad.abs().sum() > 0  # the hidden ODE takes part


def test_odernn_ignores_masked_values_and_reads_the_gaps():
    enc = ODERNNEncoder(latent_dim=4, obs_dim=2, hidden_size=8).eval()
    batch = _batch()
    changed = Batch(times=batch.times, mask=batch.mask,
                    values=batch.values + 100 * (1 - batch.mask))  # only unobserved entries
    assert torch.allclose(enc(batch).mean, enc(changed).mean)
    stretched = Batch(times=batch.times * 3, values=batch.values, mask=batch.mask)
    assert not torch.allclose(enc(batch).mean, enc(stretched).mean)


def test_odernn_per_sample_grid_matches_shared_grid():
    enc = ODERNNEncoder(latent_dim=4, obs_dim=2, hidden_size=8).eval()
    shared = _batch()
    per = Batch(times=shared.times.expand(3, -1).clone(), values=shared.values, mask=shared.mask)
    assert torch.allclose(enc(shared).mean, enc(per).mean, atol=1e-6)


def test_odernn_refuses_tokens():
    with pytest.raises(Exception, match="encoder=gru"):
        ODERNNEncoder(latent_dim=4, vocab_size=10)


def test_gru_baseline_steps_over_the_grid():
    solver = GRUBaseline(latent_dim=4, hidden_size=8)
    z0 = torch.randn(3, 4)
    times = torch.linspace(0, 2, 7)
    zt = solver(None, z0, times)
    assert zt.shape == (3, 7, 4)
    assert torch.equal(zt[:, 0], z0)
    assert not torch.allclose(zt, solver(None, z0, times ** 2))  # gaps are its input
    assert solver.nfe_forward == 2 * 6  # GRU steps


def test_odernn_contract_on_masked_and_per_sample_batches():
    enc = ODERNNEncoder(latent_dim=3, obs_dim=2)
    check_encoder(enc, make_batch(obs_dim=2), 3)
    check_encoder(enc, _batch(per_sample=True), 3)  # (B, T) times, (B, T, D) mask


def test_spiral_irregular_mask_and_masked_likelihood():
    data = SpiralData(n_spirals=8, n_test=4, n_irregular=30)
    batch = data.collate(data.dataset("train"))
    assert batch.mask.shape == (8, 100) and (batch.mask.sum(1) == 30).all()
    recipe = load_recipe("spiral_irregular", TINY_SPIRAL)
    from odepipe.run.build import build

    _, model = build(recipe)
    model.eval()
    noisy = Batch(times=batch.times, mask=batch.mask,
                  values=batch.values + 50 * (1 - batch.mask).unsqueeze(-1), extras=batch.extras)
    a = model.elbo(batch, sample=False).log_lik
    b = model.elbo(noisy, sample=False).log_lik
    assert torch.allclose(a, b)  # unobserved points count for nothing
    metrics = data.evaluate(model, data.collate(data.dataset("test")))  # test: has continuations
    assert metrics["extrap_mse"] > 0 and metrics["recon_mse_clean"] > 0


@pytest.mark.parametrize("overrides", [[], ["solver=gru_baseline"], ["encoder=gru"]])
def test_irregular_training_lowers_the_loss(tmp_path, overrides):
    recipe = load_recipe("spiral_irregular", TINY_SPIRAL + [
        "train.steps=25", "train.log_every=1", "data.n_irregular=30", "train.lr=0.02",
        "encoder.hidden_size=8", "train.checkpoint_every=0"] + overrides)
    out = Run.create(str(tmp_path / "run")).path
    summary = train(recipe, out, progress=False)
    losses = [r["loss"] for r in Run(out).read_metrics() if "loss" in r]
    assert sum(losses[-5:]) < sum(losses[:5])
    assert math.isfinite(summary["test_extrap_mse"])


def test_linear_spirals_follow_their_own_linear_dynamics():
    data = LinearSpiralData(n_spirals=6, n_test=2, n_total=40, n_observed=20, n_extrapolate=10,
                            noise_std=0.0)
    dt = float(data.times[1] - data.times[0])
    step = torch.linalg.matrix_exp(data.matrices * dt)  # (N, 2, 2)
    predicted = (step.unsqueeze(1) @ data.clean[:, :-1].unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(predicted, data.clean[:, 1:], atol=1e-4)
    assert not torch.allclose(data.matrices[0], data.matrices[1])
    assert torch.equal(data.noisy, data.clean[:, :20])  # noise_std=0
    again = LinearSpiralData(n_spirals=6, n_test=2, n_total=40, n_observed=20, n_extrapolate=10)
    assert torch.equal(again.matrices, data.matrices)  # a function of the seed
    batch = again.collate(again.dataset("test"))
    assert batch.values.shape == (2, 20, 2) and batch.extras["future"].shape == (2, 10, 2)


def test_linear_spirals_refuse_bad_sizes():
    with pytest.raises(Exception, match="n_total"):
        LinearSpiralData(n_total=50, n_observed=40, n_extrapolate=20)
