"""Faster text training: length-grouped batch plans (odepipe/run/batches.py), the packed
encoder and the decoder that computes nothing at padding."""
from __future__ import annotations

import json
import os
from typing import List, Sequence

import pytest
import torch
from odepipe_plugins.latent_ode.encoders import GRUEncoder, LSTMEncoder
from odepipe_plugins.text.decoders import GRUTextDecoder, LSTMTextDecoder

import odepipe
from odepipe import Batch
from odepipe.run.batches import BatchPlan, LengthGroupedPlan, padding_per_token, plan_for
from odepipe.run.checkpoint import load_checkpoint
from odepipe.run.folder import Run
from odepipe.run.train import train

TINY = ["data.n_train=300", "data.n_valid=20", "data.n_test=20", "data.vocab=150",
        "encoder.hidden_size=16", "encoder.embedding_dim=8", "decoder.hidden_size=16",
        "decoder.embedding_dim=8", "dynamics.hidden_size=8", "model.latent_dim=4",
        "train.batch_size=32", "train.eval_batch_size=64", "train.eval_samples=2",
        "train.checkpoint_every=0", "train.log_every=1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _lengths(n: int = 1000, seed: int = 0) -> List[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, 40, (n,), generator=g).tolist()


def test_grouped_plan_is_a_pure_function_of_seed_and_step():
    lengths = _lengths()
    walked = LengthGroupedPlan(lengths, 16, seed=3)
    seen = [walked.indices(s) for s in range(200)]  # three epochs and a bit, in order
    for step in (150, 7, 199, 0, 62, 63):  # a fresh plan, jumping around (what resume does)
        assert LengthGroupedPlan(lengths, 16, seed=3).indices(step) == seen[step]
    assert walked.indices(5) == seen[5]  # going back to an earlier epoch
    assert LengthGroupedPlan(lengths, 16, seed=4).indices(0) != seen[0]


def test_every_epoch_uses_the_items_the_plain_plan_uses_once_each():
    lengths = _lengths(1000)
    plain, grouped = BatchPlan(1000, 16, seed=1), LengthGroupedPlan(lengths, 16, seed=1)
    assert plain.per_epoch == grouped.per_epoch == 62
    for epoch in range(2):
        steps = range(epoch * 62, (epoch + 1) * 62)
        a = sorted(i for s in steps for i in plain.indices(s))
        b = sorted(i for s in steps for i in grouped.indices(s))
        assert a == b and len(set(b)) == len(b) == 62 * 16
    # batches change between epochs: not the same groups in another order
    first = {tuple(sorted(grouped.indices(s))) for s in range(62)}
    second = {tuple(sorted(grouped.indices(s))) for s in range(62, 124)}
    assert len(first & second) < 5


def test_grouped_batches_carry_lesspadding_per_token():
    lengths = _lengths(3000)
    plain, grouped = BatchPlan(3000, 32, seed=0), LengthGroupedPlan(lengths, 32, seed=0)
    before, after = padding_per_token(lengths, plain, 93), padding_per_token(lengths, grouped, 93)
    assert before > 0.5 and after < 0.1 * before
    # the batch order is shuffled, not sorted by length across the epoch
    longest = [max(lengths[i] for i in grouped.indices(s)) for s in range(93)]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_plan_for_groups_only_sources_that_declare_item_lengths():
    class Plain:
        pass

    class Sized(odepipe.ItemLengths):
        def item_lengths(self, split):
            return _lengths(100)

    plain = plan_for(Plain(), range(100), 10, seed=0)
    assert type(plain) is BatchPlan
    # plain sources keep exactly today's order
    g = torch.Generator().manual_seed(0 * 1_000_003 + 0)
    assert plain.indices(0) == torch.randperm(100, generator=g)[:10].tolist()
    assert isinstance(plan_for(Sized(), range(100), 10, seed=0), LengthGroupedPlan)
    with pytest.raises(odepipe.DataError, match="item_lengths"):
        plan_for(Sized(), range(99), 10, seed=0)


def test_text_sources_declare_item_lengths():
    from odepipe_plugins.text.sources import GrammarText

    source = GrammarText(n_train=50, n_valid=5, n_test=5, vocab=120)
    assert isinstance(source, odepipe.ItemLengths)
    assert source.item_lengths("train") == [len(ids) for ids in source.dataset("train")]


def _interrupt_at(step):
    def hook(s):
        if s == step:
            raise KeyboardInterrupt
    return hook


def test_resume_of_a_length_grouped_text_run_is_bit_for_bit(tmp_path):
    # about 290 sentences / 32 per batch: 9 steps per epoch, so the run crosses an epoch boundary
    recipe = odepipe.load_recipe("recipes/text_vae.yaml", [*TINY, "train.steps=12"])
    whole = Run.create(str(tmp_path / "whole")).path
    train(recipe, whole, progress=False)
    split = Run.create(str(tmp_path / "split")).path
    with pytest.raises(KeyboardInterrupt):
        train(recipe, split, progress=False, on_event=_interrupt_at(7))
    train(odepipe.load_recipe(os.path.join(split, "recipe.yaml")), split, resume=True,
          progress=False)
    a = load_checkpoint(os.path.join(whole, "checkpoint.pt"))
    b = load_checkpoint(os.path.join(split, "checkpoint.pt"))
    assert a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    losses = [[json.loads(x)["loss"] for x in open(os.path.join(d, "metrics.jsonl"))
               if "loss" in json.loads(x)] for d in (whole, split)]
    assert losses[0] == losses[1]


def _token_batch(rows: Sequence[Sequence[int]]) -> Batch:
    width = max(len(r) for r in rows)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width)
    for i, ids in enumerate(rows):
        tokens[i, :len(ids)], mask[i, :len(ids)] = torch.tensor(ids), 1.0
    return Batch(times=torch.arange(width) * 0.1, tokens=tokens, mask=mask)


ROWS = [[5, 6, 7, 8, 9, 3], [4, 3], [9, 8, 7, 3], [6, 6, 6, 6, 6, 6, 6, 6, 3]]


@pytest.mark.parametrize("cls", [GRUEncoder, LSTMEncoder])
def test_packed_encoder_gives_each_sentence_the_posterior_it_has_alone(cls):
    torch.manual_seed(0)
    encoder = cls(3, vocab_size=10, hidden_size=6, embedding_dim=4)
    together = encoder(_token_batch(ROWS))
    for i, ids in enumerate(ROWS):
        alone = encoder(_token_batch([ids]))  # no padding at all
        assert torch.allclose(together.mean[i], alone.mean[0], atol=1e-6)
        assert torch.allclose(together.logvar[i], alone.logvar[0], atol=1e-6)
    # padding must not leak in: more padding behind a sentence changes nothing
    padded = _token_batch(ROWS + [[4] * 15 + [3]])
    assert torch.allclose(encoder(padded).mean[:4], together.mean, atol=1e-6)


@pytest.mark.parametrize(("latent_output", "latent_input"),
                         [("path", "concat"), ("start", "concat"), ("state", "add")])
@pytest.mark.parametrize("pack_above", [0.0, 1.0])  # always packed; never packed
@pytest.mark.parametrize("cls", [GRUTextDecoder, LSTMTextDecoder])
def test_decoder_log_likelihood_ignorespadding_per_token(
        cls, pack_above, latent_output, latent_input, monkeypatch):
    monkeypatch.setattr(cls, "PACK_ABOVE", pack_above)
    torch.manual_seed(0)
    decoder = cls(3, vocab_size=10, hidden_size=6, embedding_dim=4, word_dropout=0.0,
                  latent_output=latent_output, latent_input=latent_input).eval()
    batch = _token_batch(ROWS)
    z = torch.randn(len(ROWS), batch.tokens.shape[1], 3)
    together = decoder(z, batch).log_prob(batch.tokens)  # (B, T)
    for i, ids in enumerate(ROWS):
        alone = _token_batch([ids])
        lp = decoder(z[i:i + 1, :len(ids)], alone).log_prob(alone.tokens)
        assert torch.allclose(together[i, :len(ids)], lp[0], atol=1e-5)
        assert torch.all(together[i, len(ids):] == 0)
