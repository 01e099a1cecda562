"""The text decoder's bag-of-words loss (``decoder.bow_weight``, Zhao et al. 2017): what it
computes, that padding is not in it, that it is off (no head, no term) by default, and that
the Pipeline adds it to the training loss only, never to log_lik or the ELBO."""
from __future__ import annotations

import pytest
import torch
from odepipe_plugins.latent_ode.dynamics import MLPDynamics
from odepipe_plugins.latent_ode.solvers import SOLVERS
from odepipe_plugins.text.decoders import GRUTextDecoder
from odepipe_plugins.text.encoders import ConvPoolTextEncoder
from tiny_text import Sentences

from odepipe import Pipeline
from odepipe.errors import OdepipeError


def _decoder(weight: float) -> GRUTextDecoder:
    torch.manual_seed(0)
    return GRUTextDecoder(4, vocab_size=12, hidden_size=6, embedding_dim=5, word_dropout=0.0,
                          bow_weight=weight)


def test_the_loss_is_the_weighted_mean_over_sentences_of_their_pieces_nll():
    source = Sentences(n=6, vocab=12, seed=4)
    batch = source.collate(source.items)
    decoder = _decoder(0.5)
    z = torch.randn(batch.size, batch.tokens.shape[1], 4)
    logp = torch.log_softmax(decoder.bow(z[:, 0]), -1).detach()
    by_hand = [-sum(float(logp[row, t]) for t in ids) for row, ids in enumerate(source.items)]
    expected = 0.5 * sum(by_hand) / len(by_hand)
    assert decoder.auxiliary_loss(z, batch).item() == pytest.approx(expected, rel=1e-5)
    # one sentence alone: its own term, padding of the batch plays no part
    alone = source.collate(source.items[:1])
    loss = decoder.auxiliary_loss(z[:1, : alone.tokens.shape[1]], alone)
    assert loss.item() == pytest.approx(0.5 * by_hand[0], rel=1e-5)


def test_off_by_default_without_a_head_and_a_negative_weight_is_refused():
    decoder = _decoder(0.0)
    assert decoder.bow is None and not any("bow" in k for k in decoder.state_dict())
    batch = Sentences(n=3, vocab=12).collate(Sentences(n=3, vocab=12).items)
    assert decoder.auxiliary_loss(torch.zeros(3, batch.tokens.shape[1], 4), batch) is None
    with pytest.raises(OdepipeError, match="decoder.bow_weight must be >= 0"):
        _decoder(-1.0)


def test_the_pipeline_adds_it_to_the_training_loss_only():
    torch.manual_seed(0)
    encoder = ConvPoolTextEncoder(4, vocab_size=12, hidden_size=6, embedding_dim=5)
    model = Pipeline(encoder, MLPDynamics(4, hidden_size=8), SOLVERS["euler"](step_size=0.1),
                     _decoder(2.0), latent_dim=4)
    source = Sentences(n=8, vocab=12, seed=5)
    batch = source.collate(source.items)
    noise = torch.randn(batch.size, 4)
    model.train()
    with torch.no_grad():
        parts = model.elbo(batch, noise=noise)
        bow = model.decoder.auxiliary_loss(parts.output.zt, batch)
        assert float(parts.loss) == pytest.approx(float(-parts.elbo + bow), rel=1e-5)
        model.eval()
        evaluated = model.elbo(batch, noise=noise, sample=True)
    assert float(evaluated.loss) == pytest.approx(float(-evaluated.elbo), rel=1e-5)
    assert float(evaluated.elbo) == pytest.approx(float(parts.elbo), rel=1e-5)
