"""The language-model baseline (``encoder: none`` + ``decoder.latent: false``,
recipes/text_lm.yaml) and the ablation with the ODE off (``dynamics: zero``)."""
from __future__ import annotations

import json
import math
from typing import List

import pytest
import torch
from click.testing import CliRunner
from odepipe_plugins.latent_ode.dynamics import MLPDynamics
from odepipe_plugins.latent_ode.encoders import GRUEncoder
from odepipe_plugins.latent_ode.solvers import SOLVERS
from odepipe_plugins.text.decoders import GRUTextDecoder, LSTMTextDecoder
from odepipe_plugins.text.tokenizer import BOS_ID
from tiny_text import Sentences as _Sentences

from odepipe import Pipeline
from odepipe.cli import make_cli, new_host
from odepipe.errors import ModelError
from odepipe.pipeline import NoLatent, ZeroDynamics
from odepipe.run import bounds

CLI = make_cli(new_host())
TINY = ["data.n_train=200", "data.n_valid=20", "data.n_test=20", "data.vocab=150",
        "decoder.hidden_size=16", "decoder.embedding_dim=8", "train.steps=3",
        "train.batch_size=16", "train.eval_batch_size=64", "train.eval_samples=2"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def Sentences() -> _Sentences:
    """Twelve sentences over ten ids, without word counts."""
    return _Sentences(n=12, vocab=10, seed=1, words=False)


def _lm(cls=GRUTextDecoder) -> Pipeline:
    torch.manual_seed(0)
    decoder = cls(3, vocab_size=10, hidden_size=6, embedding_dim=4, latent=False)
    return Pipeline(NoLatent(), ZeroDynamics(), SOLVERS["euler"](step_size=0.1), decoder,
                    latent_dim=3)


def _direct_log_px(decoder: GRUTextDecoder, ids: List[int]) -> float:
    """log p(x) = sum_i log softmax(out(h_i))[x_i], one GRU cell step at a time from h = 0,
    written out from the decoder's weights (not through its forward)."""
    rnn = decoder.rnn
    cell = torch.nn.GRUCell(rnn.input_size, rnn.hidden_size)
    cell.load_state_dict({"weight_ih": rnn.weight_ih_l0, "weight_hh": rnn.weight_hh_l0,
                          "bias_ih": rnn.bias_ih_l0, "bias_hh": rnn.bias_hh_l0})
    h, prev, total = torch.zeros(1, rnn.hidden_size), BOS_ID, 0.0
    for token in ids:
        h = cell(decoder.embedding(torch.tensor([prev])), h)
        total += float(torch.log_softmax(decoder.out(h), -1)[0, token])
        prev = token
    return total


def test_language_model_nll_is_exact_and_equals_a_direct_computation():
    model, data = _lm(), Sentences()
    assert model.latent_free and model.latent_dim == 0
    with torch.no_grad():
        direct = [_direct_log_px(model.decoder, ids) for ids in data.items]
    out = bounds.evaluate_bounds(model, data, torch.device("cpu"), batch_size=5, samples=7)
    assert set(out) == {"test_nll_exact", "test_nll_per_token_exact", "test_ppl_token_exact"}
    assert out["test_nll_exact"] == pytest.approx(-sum(direct) / len(direct), rel=1e-5)
    tokens = sum(len(i) for i in data.items)
    assert out["test_ppl_token_exact"] == pytest.approx(math.exp(-sum(direct) / tokens),
                                                        rel=1e-5)
    # no latent: the ELBO is log p(x) itself, the KL exactly zero, and training needs no noise
    model.eval()  # no word dropout
    loss = model.elbo(data.collate(data.items), free_bits=0.5)
    assert float(loss.kl) == 0.0
    assert loss.log_lik.item() == pytest.approx(sum(direct) / len(direct), rel=1e-5)


def test_language_model_decoder_has_no_latent_weights():
    lm = _lm().decoder
    vae = GRUTextDecoder(3, vocab_size=10, hidden_size=6, embedding_dim=4)
    assert lm.init is None and lm.rnn.input_size == 4 and lm.out.in_features == 6
    assert sum(p.numel() for p in lm.parameters()) < sum(p.numel() for p in vae.parameters())
    _lm(LSTMTextDecoder).check(Sentences().collate(Sentences().items[:2]))


def test_mismatched_latent_switches_name_the_keys():
    batch = Sentences().collate(Sentences().items[:2])
    with pytest.raises(ModelError, match="decoder.latent=false"):
        Pipeline(NoLatent(), ZeroDynamics(), SOLVERS["euler"](step_size=0.1),
                 GRUTextDecoder(3, vocab_size=10, hidden_size=6, embedding_dim=4),
                 latent_dim=3).check(batch)
    with pytest.raises(ModelError, match="encoder.type=none"):
        Pipeline(GRUEncoder(3, vocab_size=10, hidden_size=6, embedding_dim=4), ZeroDynamics(),
                 SOLVERS["euler"](step_size=0.1),
                 GRUTextDecoder(3, vocab_size=10, hidden_size=6, embedding_dim=4, latent=False),
                 latent_dim=3).check(batch)


def test_zero_field_keeps_z_at_z0_without_solving():
    solver = SOLVERS["euler"](step_size=0.1)
    model = Pipeline(GRUEncoder(3, vocab_size=10, hidden_size=6, embedding_dim=4),
                     ZeroDynamics(3), solver,
                     GRUTextDecoder(3, vocab_size=10, hidden_size=6, embedding_dim=4),
                     latent_dim=3)
    z0 = torch.randn(4, 3)
    zt = model.evolve(z0, torch.arange(5) * 0.1)
    assert zt.shape == (4, 5, 3) and torch.equal(zt, z0.unsqueeze(1).expand(4, 5, 3))
    per_item = model.evolve(z0, torch.rand(4, 6).sort(-1).values)
    assert torch.equal(per_item, z0.unsqueeze(1).expand(4, 6, 3))
    assert solver.nfe_forward == 0
    # the same field through the solver gives the same path: skipping the solve changes nothing
    solved = solver(ZeroDynamics(3), z0, torch.arange(5) * 0.1)
    assert torch.allclose(solved, zt)
    # and an MLP field does move z, so the test above could fail
    moving = Pipeline(model.encoder, MLPDynamics(3, hidden_size=4), solver, model.decoder,
                      latent_dim=3).evolve(z0, torch.arange(5) * 0.1)
    assert not torch.allclose(moving[:, -1], z0)


def _invoke(*args):
    return CliRunner().invoke(CLI, [str(a) for a in args])


def test_text_lm_recipe_trains_and_evaluate_reports_the_exact_nll(tmp_path):
    out = tmp_path / "lm"
    result = _invoke("run", "recipes/text_lm.yaml", *TINY, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_nll_exact"] > 0 and summary["nfe_forward_per_step"] == 0
    assert not any("iw" in key or "elbo_sampled" in key for key in summary)
    shown = _invoke("evaluate", out, "--json")
    assert shown.exit_code == 0, shown.output
    metrics = json.loads(shown.output)
    assert metrics["test_nll_exact"] == pytest.approx(summary["test_nll_exact"])
    # the reconstruction "at the mean" of a model without latent is the same exact figure
    assert -metrics["test_log_lik"] == pytest.approx(metrics["test_nll_exact"], rel=1e-5)
    # no code to walk or fit: the path is the LM's greedy sentence, and --refine is refused
    walk = _invoke("interpolate-sentences", "a girl sang", "the man", "--run", out, "--json")
    assert walk.exit_code == 0, walk.output
    refused = _invoke("interpolate-sentences", "a girl sang", "the man", "--run", out,
                      "--refine", 3)
    assert refused.exit_code == 2 and "--refine 0" in refused.output
    assert "Traceback" not in refused.output


def test_text_vae_with_the_ode_off_trains(tmp_path):
    out = tmp_path / "zero"
    result = _invoke("run", "recipes/text_vae.yaml", "dynamics=zero", *TINY,
                     "encoder.hidden_size=16", "encoder.embedding_dim=8", "model.latent_dim=4",
                     "--out", out, "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["nfe_forward_per_step"] == 0 and "test_nll_iw2" in summary
