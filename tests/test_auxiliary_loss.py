"""A decoder's optional ``auxiliary_loss``: added to the training loss only, never to the
logged log-likelihood, KL or ELBO, and not at all outside training mode."""
import torch
from odepipe_plugins.latent_ode.decoders import MLPDecoder
from odepipe_plugins.latent_ode.dynamics import MLPDynamics
from odepipe_plugins.latent_ode.encoders import GRUEncoder
from odepipe_plugins.latent_ode.solvers import SOLVERS
from odepipe_plugins.series.spiral import SpiralData

from odepipe import Pipeline

L = 3


class MeanZDecoder(MLPDecoder):
    """An auxiliary term that depends on z, so its gradient reaches the encoder."""

    def auxiliary_loss(self, z, batch):
        return 7.0 + (z**2).mean()


def _pipeline(decoder_cls):
    torch.manual_seed(0)
    return Pipeline(GRUEncoder(latent_dim=L, obs_dim=2, hidden_size=6),
                    MLPDynamics(latent_dim=L, hidden_size=6), SOLVERS["rk4"](step_size=0.1),
                    decoder_cls(latent_dim=L, obs_dim=2), latent_dim=L)


def test_the_term_is_added_to_the_training_loss_only():
    batch = SpiralData(seed=0, n_spirals=6, n_test=2, n_observed=10, n_extrapolate=5,
                       n_total=40).collate(range(6))
    plain, extra = _pipeline(MLPDecoder), _pipeline(MeanZDecoder)
    extra.load_state_dict(plain.state_dict())
    a = plain.elbo(batch, sample=False)
    b = extra.elbo(batch, sample=False)
    for key in ("log_lik", "kl", "elbo"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key))
    added = 7.0 + (b.output.zt**2).mean()
    torch.testing.assert_close(b.loss, a.loss + added)
    extra.eval()
    torch.testing.assert_close(extra.elbo(batch, sample=False).loss, a.loss)  # not in eval
    extra.train()
    extra.zero_grad()
    extra.elbo(batch, sample=False).loss.backward()
    plain.zero_grad()
    plain.elbo(batch, sample=False).loss.backward()
    g_extra = extra.encoder.to_posterior.weight.grad
    assert not torch.allclose(g_extra, plain.encoder.to_posterior.weight.grad)
