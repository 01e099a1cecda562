"""The convolutional sentence encoder (``encoder: {type: text_conv}``): a sentence's posterior
does not depend on its batch, word order is read only with a window wider than one piece, an
even window is refused, and a text VAE recipe trains with it."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from odepipe_plugins.text.encoders import ConvPoolTextEncoder
from tiny_text import Sentences

from odepipe.cli import make_cli, new_host
from odepipe.errors import OdepipeError

CLI = make_cli(new_host())
TINY = ["data.n_train=200", "data.n_valid=20", "data.n_test=20", "data.vocab=150",
        "decoder.hidden_size=16", "decoder.embedding_dim=8", "train.steps=3",
        "train.batch_size=16", "train.eval_batch_size=64", "train.eval_samples=2",
        "model.latent_dim=4"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_a_sentence_gets_the_same_posterior_alone_and_in_a_padded_batch(kernel):
    torch.manual_seed(0)
    encoder = ConvPoolTextEncoder(4, vocab_size=12, hidden_size=6, embedding_dim=5,
                                  kernel_size=kernel)
    source = Sentences(n=10, vocab=12, seed=2)
    items = source.dataset("train")
    together = encoder(source.collate(items))
    assert together.mean.shape == (10, 4) and together.logvar.shape == (10, 4)
    for row, ids in enumerate(items):
        alone = encoder(source.collate([ids]))
        assert torch.allclose(alone.mean[0], together.mean[row], atol=1e-6)
        assert torch.allclose(alone.logvar[0], together.logvar[row], atol=1e-6)


def test_the_encoder_reads_word_order_only_with_a_window_wider_than_one():
    source = Sentences(n=1, vocab=12, seed=3)
    ids = source.dataset("train")[0]
    body, eos = ids[:-1], ids[-1:]
    swapped = list(reversed(body)) + eos
    assert swapped != ids
    for kernel, same in ((1, True), (3, False)):
        torch.manual_seed(0)
        encoder = ConvPoolTextEncoder(4, vocab_size=12, hidden_size=6, embedding_dim=5,
                                      kernel_size=kernel)
        a, b = encoder(source.collate([ids])).mean, encoder(source.collate([swapped])).mean
        assert torch.allclose(a, b, atol=1e-6) == same


def test_an_even_kernel_is_refused_with_the_key_and_a_fix():
    with pytest.raises(OdepipeError, match=r"encoder.kernel_size must be odd.*got 4; use 5"):
        ConvPoolTextEncoder(4, vocab_size=12, kernel_size=4)


def test_a_text_vae_with_the_conv_encoder_trains_and_is_evaluated(tmp_path):
    out = tmp_path / "conv"
    result = CliRunner().invoke(CLI, [
        "run", "recipes/text_vae.yaml", *TINY, "encoder=text_conv", "encoder.hidden_size=8",
        "encoder.embedding_dim=8", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and "test_nll_iw2" in summary


def test_a_window_of_one_computes_what_the_convolution_computes():
    """kernel_size 1 takes a matrix product instead of Conv1d: the same posterior and the same
    gradients as the convolution it replaces, from the same weights."""
    torch.manual_seed(0)
    encoder = ConvPoolTextEncoder(4, vocab_size=12, hidden_size=6, embedding_dim=5,
                                  kernel_size=1)
    batch = Sentences(n=6, vocab=12, seed=4).collate(Sentences(n=6, vocab=12, seed=4).items)
    fast = encoder(batch)
    (fast.mean.sum() + fast.logvar.sum()).backward()
    grad_fast = encoder.conv.weight.grad.clone()
    encoder.zero_grad()
    x = encoder.embedding(batch.tokens).transpose(1, 2)
    h = torch.tanh(encoder.conv(x)).transpose(1, 2)  # the convolution itself
    real = (batch.mask > 0).unsqueeze(-1)
    mean = (h * real).sum(1) / real.sum(1)
    peak = h.masked_fill(~real, -2.0).amax(1)
    mu, logvar = encoder.to_posterior(torch.cat([mean, peak], -1)).chunk(2, -1)
    (mu.sum() + logvar.sum()).backward()
    assert torch.allclose(fast.mean, mu, atol=1e-6) and torch.allclose(fast.logvar, logvar,
                                                                       atol=1e-6)
    assert torch.allclose(grad_fast, encoder.conv.weight.grad, atol=1e-5)
