import pytest
import torch

import odepipe
from odepipe import Batch, Pipeline
from odepipe_plugins.series.spiral import SpiralData
from odepipe_plugins.latent_ode.decoders import MLPDecoder
from odepipe_plugins.latent_ode.dynamics import MLPDynamics
from odepipe_plugins.latent_ode.encoders import GRUEncoder
from odepipe_plugins.latent_ode.solvers import SOLVERS

L = 4


def make(latent_dim=L, variational=True, solver="rk4"):
    return Pipeline(GRUEncoder(latent_dim=L, obs_dim=2, hidden_size=8),
                    MLPDynamics(latent_dim=L, hidden_size=8),
                    SOLVERS[solver](step_size=0.1), MLPDecoder(latent_dim=L, obs_dim=2),
                    latent_dim=latent_dim, variational=variational)


@pytest.fixture
def batch():
    data = SpiralData(seed=0, n_spirals=8, n_test=2, n_observed=20, n_extrapolate=10, n_total=60)
    return data.collate(range(8))


def test_elbo_parts_and_gradients(batch):
    model = make()
    parts = model.elbo(batch, beta=1.0)
    assert parts.output.zt.shape == (8, 20, L)
    torch.testing.assert_close(parts.elbo, parts.log_lik - parts.kl)
    torch.testing.assert_close(parts.loss, -(parts.log_lik - parts.kl))
    parts.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_beta_and_free_bits_change_only_the_kl_term(batch):
    model = make()
    torch.manual_seed(1)
    a = model.elbo(batch, beta=0.0, sample=False)
    torch.manual_seed(1)
    b = model.elbo(batch, beta=1.0, sample=False, free_bits=100.0)
    torch.testing.assert_close(a.loss, -a.log_lik)
    torch.testing.assert_close(b.loss, -(b.log_lik - 100.0 * L))


def test_autoencoder_ignores_kl_and_never_samples(batch):
    model = make(variational=False).train()
    x, y = model.elbo(batch), model.elbo(batch)
    torch.testing.assert_close(x.loss, y.loss)
    torch.testing.assert_close(x.loss, -x.log_lik)


def test_training_reduces_the_loss(batch):
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.elbo(batch, sample=False).loss.item()
    for _ in range(30):
        opt.zero_grad()
        model.elbo(batch).loss.backward()
        opt.step()
    assert model.elbo(batch, sample=False).loss.item() < first


def test_mask_counts_only_observed_entries(batch):
    model = make()
    dist = model(batch, sample=False).dist
    full = model.log_likelihood(dist, batch)
    masked = Batch(times=batch.times, values=batch.values, mask=torch.zeros(8, 20))
    assert torch.all(model.log_likelihood(dist, masked) == 0) and torch.all(full != 0)


def test_extrapolate_runs_past_the_window(batch):
    model = make()
    times = torch.cat([batch.times, batch.extras["future_times"]])
    out = model.extrapolate(batch, times)
    assert out.shape == (8, 30, 2)
    torch.testing.assert_close(out[:, :20], model.reconstruct(batch))


def test_per_sample_times_match_separate_solves(batch):
    model = make(solver="dopri5")
    z0 = torch.randn(2, L)
    times = torch.tensor([[0.0, 0.3, 0.9], [0.0, 0.5, 0.9]])
    together = model.evolve(z0, times)
    for i in range(2):
        alone = model.evolve(z0[i:i + 1], times[i])
        torch.testing.assert_close(together[i], alone[0], rtol=1e-4, atol=1e-5)


def test_check_names_the_mismatch(batch):
    with pytest.raises(odepipe.ModelError, match="model.latent_dim"):
        make(latent_dim=5).check(batch)
