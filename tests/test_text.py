"""Sequence-to-text: data sources, tokenizer, text decoder, training a tiny sentence VAE on a
user's file, interpolate-sentences and sampling. Tiny sizes: a few hundred sentences, 3 steps."""
from __future__ import annotations

import copy
import json
import os

import pytest
import torch
from click.testing import CliRunner
from odepipe_plugins.series import commands as series_commands
from odepipe_plugins.text import commands as text_commands
from odepipe_plugins.text.generation import walk
from odepipe_plugins.text.grammar import default_grammar
from odepipe_plugins.text.sources import GrammarText, TextFiles
from odepipe_plugins.text.tokenizer import EOS_ID, PAD_ID, train_tokenizer

import odepipe
from odepipe.cli import cli as odepipe_cli

# a copy of the command line with this plugin's command, leaving odepipe's own group untouched
# (other tests check which commands plugins may add to it)
cli = copy.copy(odepipe_cli)
cli.commands = {**odepipe_cli.commands,
                "interpolate-sentences": text_commands.interpolate_sentences,
                "extrapolate": series_commands.extrapolate}

#: overrides that make a text run tiny
TINY = ["encoder.hidden_size=16", "encoder.embedding_dim=8", "decoder.hidden_size=16",
        "decoder.embedding_dim=8", "dynamics.hidden_size=8", "model.latent_dim=4",
        "train.steps=3", "train.batch_size=16", "train.log_every=1", "train.eval_batch_size=64"]
TINY_GRAMMAR = ["data.n_train=300", "data.n_valid=20", "data.n_test=20", "data.vocab=200"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "mine.txt"
    path.write_text("\n".join(default_grammar().corpus(300, seed=5)) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, text_file):
    """`odepipe run recipes/text_vae.yaml data=text data.path=FILE.txt` on a user's file."""
    os.environ["ODEPIPE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    out = tmp_path_factory.mktemp("runs") / "text"
    result = _invoke("run", "recipes/text_vae.yaml", "data=text", f"data.path={text_file}",
                     "data.vocab=200", *TINY, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    return out


def test_run_on_a_users_text_file_reports_text_metrics(text_run):
    summary = json.loads((text_run / "summary.json").read_text())
    for split in ("valid", "test"):
        for key in ("perplexity", "nll_per_token", "nll_per_sentence", "kl", "elbo_at_mean",
                    "elbo_sampled", "nll_iw10", "ppl_token_iw10", "mi", "active_units"):
            assert f"{split}_{key}" in summary
        # bounds computed as bounds: the importance-weighted one is at least the sampled ELBO
        assert -summary[f"{split}_nll_iw10"] >= summary[f"{split}_elbo_sampled"] - 1e-6
        assert summary[f"{split}_nll_per_sentence"] == pytest.approx(-summary[f"{split}_log_lik"],
                                                                     rel=1e-4)
    assert summary["steps"] == 3
    assert "data:\n  type: text" in (text_run / "recipe.yaml").read_text()


def test_interpolate_sentences_uses_the_run(text_run):
    result = _invoke("interpolate-sentences", "the old man walked to the river",
                     "a young girl sang in the garden", "--run", text_run, "--steps", 3, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [p["alpha"] for p in out["path"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(isinstance(p["sentence"], str) for p in out["path"])
    plain = _invoke("interpolate-sentences", "the old man walked", "a girl sang", "--run",
                    text_run, "--steps", 2, "--method", "slerp")
    assert plain.exit_code == 0, plain.output
    assert "A: the old man walked" in plain.output and "3 (B)" in plain.output


def test_unknown_words_go_through_pieces(text_run):
    _, data, _ = odepipe.load_run(str(text_run))
    pieces = data.tokenizer.pieces("the zebra xylophoned")
    assert len(pieces) > 3 and data.tokenizer.encode(["zebra"])[0]
    result = _invoke("interpolate-sentences", "the zebra xylophoned quietly", "Zürich 42 !",
                     "--run", text_run, "--steps", 1)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("a", ["привет мир 你好", "🙂 مرحبا", "the man\x07 walked\x1b[31m home\r"])
def test_non_latin_scripts_and_control_characters_give_a_path(text_run, a):
    result = _invoke("interpolate-sentences", a, "a girl sang", "--run", text_run, "--steps", 2,
                     "--json")
    assert result.exit_code == 0, result.output
    path = json.loads(result.output)["path"]
    assert len(path) == 4 and all(isinstance(p["sentence"], str) for p in path)
    assert not any(ch in p["sentence"] for p in path for ch in "\x07\x1b\r")


@pytest.mark.parametrize("a, message", [("", "empty"), ("   \t ", "empty"),
                                        ("word " * 1000, "characters long")])
def test_empty_or_huge_input_is_a_clear_error_before_any_training(a, message, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path))
    result = _invoke("interpolate-sentences", a, "a young girl sang")
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not os.path.exists(tmp_path / "models")


def test_overlong_sentence_is_cut_to_the_models_limit_with_a_warning(text_run):
    """Issue 13: a long input is truncated (with a warning naming the limit), not refused."""
    long = "the man walked " * 30
    result = _invoke("interpolate-sentences", long, "a girl sang", "--run", text_run,
                     "--steps", 1, "--json")
    assert result.exit_code == 0, result.output
    _, data, model = odepipe.load_run(str(text_run))
    limit = data.codec.max_tokens  # data=text's own default, not the grammar's
    assert "pieces long" in result.stderr and f"data.max_tokens={limit}" in result.stderr
    assert f"only its first {limit - 1} pieces are used" in result.stderr
    batch = data.encode_sentences([long, "a girl sang"])
    assert batch.mask[0].sum() == limit and batch.tokens[0, limit - 1] == EOS_ID  # + eos
    cut = data.tokenizer.decode(data.tokenizer.encode([long])[0][:limit - 1])
    assert json.loads(result.stdout)["path"] == data.interpolate(model, cut, "a girl sang",
                                                                 steps=1)


def test_interpolate_refuses_a_series_run(tmp_path):
    from conftest import TINY_SPIRAL

    out = tmp_path / "spiral"
    result = _invoke("run", "spiral", *TINY_SPIRAL, "train.steps=1", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    result = _invoke("interpolate-sentences", "a", "b", "--run", out)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"the run in {out} uses data source SpiralData, which is not a SentenceSource" \
        in " ".join(result.output.split())
    assert "grammar, text or hf" in result.output


def test_extrapolate_refuses_a_text_run(text_run, tmp_path):
    seed = tmp_path / "seed.csv"
    seed.write_text("series,time,x,y\na,0,1,2\na,1,2,3\n")
    result = _invoke("extrapolate", "--run", text_run, "--input", seed, "--until", 3)
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert "uses data source TextFiles, which is not a SeriesCodecSource" in message
    assert "csv, spiral or linear_spirals" in message


def test_grammar_source_splits_are_disjoint_and_deterministic():
    a = GrammarText(seed=1, n_train=200, n_valid=20, n_test=20, vocab=150)
    b = GrammarText(seed=1, n_train=200, n_valid=20, n_test=20, vocab=150)
    assert a.sentences == b.sentences and a.tokenizer.path == b.tokenizer.path
    assert not set(a.sentences["test"]) & set(a.sentences["train"])
    batch = a.collate(a.dataset("train")[:5])
    assert batch.tokens.shape == batch.mask.shape and batch.times.shape == batch.tokens.shape[1:]
    lengths = batch.mask.sum(1).long()
    assert all(batch.tokens[i, n - 1] == EOS_ID for i, n in enumerate(lengths))
    assert (batch.tokens[batch.mask == 0] == PAD_ID).all()


def test_text_files_with_separate_splits(tmp_path):
    lines = default_grammar().corpus(120, seed=2)
    for name, part in (("train", lines[:100]), ("valid", lines[100:110]), ("test", lines[110:])):
        (tmp_path / f"{name}.txt").write_text("\n".join(part), encoding="utf-8")
    data = TextFiles(train_path=str(tmp_path / "train.txt"), valid_path=str(tmp_path / "valid.txt"),
                     test_path=str(tmp_path / "test.txt"), vocab=120, max_tokens=200)
    assert [len(data.dataset(s)) for s in ("train", "valid", "test")] == [100, 10, 10]
    missing = TextFiles(path=str(tmp_path / "missing.txt"))  # files are read on first use
    with pytest.raises(odepipe.DataError, match="no such file"):
        missing.dims()
    with pytest.raises(odepipe.DataError, match="data.path"):
        TextFiles()


def test_hub_dataset_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    result = _invoke("validate", "recipes/text_vae.yaml", "data=hf",
                     "data.name=odepipe-test/no-such-dataset")
    assert result.exit_code == 2
    assert "could not load hub dataset" in result.output and "Traceback" not in result.output


def test_tokenizer_caps_a_too_large_vocabulary_and_caches(tmp_path, capsys):
    corpus = default_grammar().corpus(100, seed=0)
    tok = train_tokenizer(corpus, 5000, cache_dir=str(tmp_path))
    assert tok.vocab_size < 5000
    assert "capped at" in capsys.readouterr().err
    again = train_tokenizer(corpus, 5000, cache_dir=str(tmp_path))
    assert again.path == tok.path and capsys.readouterr().err == ""
    with pytest.raises(odepipe.DataError, match="data.vocab"):
        train_tokenizer(corpus, 10, cache_dir=str(tmp_path))


def test_text_decoder_likelihood_greedy_and_word_dropout():
    from odepipe_plugins.text.decoders import GRUTextDecoder, LSTMTextDecoder

    data = GrammarText(n_train=200, n_valid=10, n_test=10, vocab=150)
    batch = data.collate(data.dataset("train")[:4])
    for cls in (GRUTextDecoder, LSTMTextDecoder):
        dec = cls(latent_dim=3, vocab_size=data.dims()["vocab_size"], hidden_size=8,
                  embedding_dim=4, word_dropout=0.5)
        z = torch.randn(4, batch.tokens.shape[1], 3)
        dec.eval()
        dist = dec(z, batch)
        lp = dist.log_prob(batch.tokens)
        assert lp.shape == batch.tokens.shape and (lp[batch.mask == 0] == 0).all()
        assert torch.equal(dec(z, batch).logits, dist.logits)  # no word dropout in eval
        dec.train()
        assert not torch.equal(dec(z, batch).logits, dist.logits)
        ids = dec.greedy(z)
        assert ids.shape == (4, batch.tokens.shape[1]) and ids.dtype == torch.long


def test_sample_decodes_prior_draws(text_run, tmp_path):
    from odepipe import load_run

    _, data, model = load_run(str(text_run))
    lines = data.sample(model, 3, str(tmp_path))
    assert len(lines) == 3 and lines == data.sample(model, 3)
    assert (tmp_path / "samples.txt").read_text().splitlines() == lines


def test_slerp_and_linear_walks_hit_the_endpoints():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    for method in ("linear", "slerp"):
        assert torch.allclose(walk(a, b, 0.0, method), a)
        assert torch.allclose(walk(a, b, 1.0, method), b, atol=1e-6)
    assert walk(a, b, 0.5, "slerp").norm() == pytest.approx(1.5)


def test_a_run_whose_text_changed_is_refused(tmp_path, text_run, text_file):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(text_run, copy)
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["data"]["tokenizer"].endswith(".model")
    summary["data"]["tokenizer"] = "0123.model"  # as if trained on another text
    (copy / "summary.json").write_text(json.dumps(summary))
    result = _invoke("interpolate-sentences", "a b", "c d", "--run", copy)
    assert result.exit_code == 2 and "training text changed after training" in result.output


# -- lazy sources and restoring a run's codec without its corpus --------------------------------
@pytest.mark.parametrize("make", [
    lambda tmp: GrammarText(n_train=5, n_valid=1, n_test=1),
    lambda tmp: TextFiles(path=str(tmp / "gone.txt")),
    lambda tmp: __import__("odepipe_plugins.text.sources", fromlist=["HubText"]).HubText(
        name="odepipe-test/never-read"),
])
def test_constructing_a_text_source_reads_no_corpus(make, tmp_path, monkeypatch):
    from odepipe_plugins.text import corpus

    def refuse(self):
        raise AssertionError("the corpus was read in __init__")

    monkeypatch.setattr(corpus.Corpus, "splits", refuse)
    make(tmp_path)  # nothing raised: no file, hub or grammar was touched


def test_restore_brings_the_codec_back_without_the_corpus(tmp_path, monkeypatch):
    from odepipe_plugins.text import corpus

    params = dict(seed=3, n_train=150, n_valid=10, n_test=10, vocab=120, max_tokens=20)
    trained = GrammarText(**params)
    sentences = ["the old man walked to the river", "a zebra xylophoned " * 6]
    expected = trained.encode_sentences(sentences)
    trained.save(str(tmp_path / "data"))
    assert sorted(os.listdir(tmp_path / "data")) == ["text.json", "tokenizer.model"]

    def refuse(self):
        raise AssertionError("restore read the corpus")

    monkeypatch.setattr(corpus.GrammarCorpus, "read", refuse)
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path / "empty-cache"))  # no cached tokenizer
    restored = GrammarText(**params)
    restored.restore(str(tmp_path / "data"))
    assert restored.dims() == trained.dims() and restored.state() == trained.state()
    got = restored.encode_sentences(sentences)
    assert torch.equal(got.tokens, expected.tokens) and torch.equal(got.mask, expected.mask)
    assert got.tokens.shape[1] == 20  # the long one cut to max_tokens (eos included)
    ids = expected.tokens
    assert restored.codec.decode(ids) == trained.codec.decode(ids)
    assert restored.codec.decode(ids)[0] == sentences[0]
    assert not os.path.exists(tmp_path / "empty-cache")  # nothing trained or cached
    with pytest.raises(AssertionError, match="restore read the corpus"):
        restored.dataset("train")  # the splits do need the corpus


def test_restore_of_a_folder_without_a_saved_codec_falls_back_to_the_corpus(tmp_path):
    data = GrammarText(n_train=100, n_valid=5, n_test=5, vocab=100)
    data.restore(str(tmp_path / "nothing-here"))
    assert data.dims()["vocab_size"] > 4 and 0 < len(data.dataset("test")) <= 5


def test_a_damaged_saved_codec_is_a_checkpoint_error(tmp_path):
    data = GrammarText(n_train=100, n_valid=5, n_test=5, vocab=100)
    data.save(str(tmp_path))
    (tmp_path / "text.json").write_text("{not json")
    with pytest.raises(odepipe.CheckpointError, match="train the run again"):
        GrammarText(n_train=100, n_valid=5, n_test=5, vocab=100).restore(str(tmp_path))


def test_a_saved_run_decodes_the_same_after_restore(text_run, tmp_path):
    """The whole path of a real run: save its codec, open it again from the copy only."""
    _, data, model = odepipe.load_run(str(text_run))
    data.save(str(tmp_path / "data"))
    fresh = TextFiles(path=str(tmp_path / "deleted.txt"), vocab=200)  # its file is gone
    fresh.restore(str(tmp_path / "data"))
    a, b = "the old man walked to the river", "a young girl sang in the garden"
    assert fresh.interpolate(model, a, b, steps=3) == data.interpolate(model, a, b, steps=3)


# -- declared capabilities and beam search -------------------------------------------------------
def test_text_components_declare_their_capabilities():
    from odepipe_plugins.text.decoders import GRUTextDecoder, LSTMTextDecoder
    from odepipe_plugins.text.sources import HubText

    for cls in (GrammarText, TextFiles, HubText):
        assert issubclass(cls, odepipe.SentenceSource) and issubclass(cls, odepipe.DataSource)
    assert issubclass(GrammarText, odepipe.GrammaticalityJudge)
    assert not issubclass(TextFiles, odepipe.GrammaticalityJudge)
    for cls in (GRUTextDecoder, LSTMTextDecoder):
        assert issubclass(cls, odepipe.BeamSearchDecoder) and issubclass(cls, odepipe.Decoder)


def test_a_source_without_a_grammar_marks_nothing(text_run):
    result = _invoke("interpolate-sentences", "the old man walked", "a girl sang", "--run",
                     text_run, "--steps", 1, "--json")
    assert all("grammatical" not in p for p in json.loads(result.stdout)["path"])


def _tiny_decoder(cls, vocab=7, latent_output="path", latent_input="concat"):
    torch.manual_seed(0)
    dec = cls(latent_dim=2, vocab_size=vocab, hidden_size=6, embedding_dim=3,
              word_dropout=0.0, latent_output=latent_output, latent_input=latent_input).eval()
    for extra in (dec.out_z, dec.state_z, dec.in_z):  # small default inits: make z matter here
        if extra is not None:
            torch.nn.init.normal_(extra.weight, std=2.0)
    return dec


def _sequence_log_prob(dec, z, ids):
    """Teacher-forced log-probability of ``ids (B, T)`` (up to and including eos), scored as
    decoding scores it: pad and bos excluded from the softmax."""
    from odepipe import Batch

    T = ids.shape[1]
    mask = torch.ones_like(ids, dtype=torch.float)
    for row, seq in enumerate(ids.tolist()):
        if EOS_ID in seq:
            mask[row, seq.index(EOS_ID) + 1:] = 0
    dist = dec(z, Batch(times=torch.arange(T).float(), tokens=ids, mask=mask))
    logits = dist.selected_logits.clone()
    logits[:, [PAD_ID, 2]] = -float("inf")
    logp = torch.log_softmax(logits, -1).gather(1, ids[mask > 0].unsqueeze(1)).squeeze(1)
    out = torch.zeros(ids.shape)
    out[mask > 0] = logp
    return out.sum(1)


@pytest.mark.parametrize(("latent_output", "latent_input"),
                         [("path", "concat"), ("start", "concat"), ("state", "add")])
@pytest.mark.parametrize("cls_name", ["GRUTextDecoder", "LSTMTextDecoder"])
def test_beam_search_of_width_one_is_greedy_and_an_exhaustive_beam_finds_the_best(
        cls_name, latent_output, latent_input):
    """Also checks that decoding step by step scores as the teacher-forced forward does."""
    import itertools

    from odepipe_plugins.text import decoders

    dec = _tiny_decoder(getattr(decoders, cls_name), latent_output=latent_output,
                        latent_input=latent_input)
    z = torch.randn(3, 3, 2) * 2  # (B, T, L)
    assert torch.equal(dec.beam(z, 1), dec.greedy(z))
    # every sequence of 3 steps over the 5 writable ids (unk, eos, 4, 5, 6), pad after eos
    seqs = set()
    for combo in itertools.product([1, EOS_ID, 4, 5, 6], repeat=3):
        seq = list(combo)
        if EOS_ID in seq:
            k = seq.index(EOS_ID)
            seq = seq[:k + 1] + [PAD_ID] * (2 - k)
        seqs.add(tuple(seq))
    candidates = torch.tensor(sorted(seqs))  # (S, 3)
    for i in range(z.shape[0]):
        zi = z[i:i + 1].expand(len(candidates), -1, -1)
        scores = _sequence_log_prob(dec, zi, candidates)
        best = candidates[scores.argmax()]
        found = dec.beam(z[i:i + 1], 125)[0]  # wider than the number of sequences
        assert torch.equal(found, best), (found, best)


def test_interpolate_sentences_with_a_beam(text_run):
    result = _invoke("interpolate-sentences", "the old man walked", "a girl sang", "--run",
                     text_run, "--steps", 2, "--beam", 3, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["beam"] == 3 and len(out["path"]) == 4
    _, data, model = odepipe.load_run(str(text_run))
    assert out["path"] == data.interpolate(model, "the old man walked", "a girl sang", steps=2,
                                           beam=3)
    assert _invoke("interpolate-sentences", "a", "b", "--run", text_run, "--beam", 0
                   ).exit_code == 2


def test_refined_codes_reconstruct_better_and_leave_the_weights_alone(text_run):
    _, data, model = odepipe.load_run(str(text_run))
    batch = data.encode_sentences(["the old man walked to the river", "a girl sang"])
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    def log_lik(z0):
        with torch.no_grad():
            return model.log_likelihood(model.decode(model.evolve(z0, batch.times), batch), batch)

    mean = model.refine(batch, 0)
    torch.testing.assert_close(mean, model.encode(batch).mean)
    refined = model.refine(batch, 30)
    assert not refined.requires_grad
    assert (log_lik(refined) > log_lik(mean) + 0.1).all()  # each sentence, not only the sum
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    alone = model.refine(data.encode_sentences(["a girl sang"]), 30)
    torch.testing.assert_close(alone[0], refined[1], rtol=1e-4, atol=1e-4)  # batch-independent


def test_interpolate_sentences_refine(text_run):
    a, b = "the old man walked", "a girl sang"
    result = _invoke("interpolate-sentences", a, b, "--run", text_run, "--steps", 2,
                     "--refine", 5, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    _, data, model = odepipe.load_run(str(text_run))
    assert out["refine"] == 5
    assert out["path"] == data.interpolate(model, a, b, steps=2, refine=5)
    plain = json.loads(_invoke("interpolate-sentences", a, b, "--run", text_run, "--steps", 2,
                               "--json").stdout)
    assert plain["refine"] == 0 and plain["path"] == data.interpolate(model, a, b, steps=2)
    bad = _invoke("interpolate-sentences", a, b, "--run", text_run, "--refine", -1)
    assert bad.exit_code == 2 and "--refine" in bad.output


def test_refine_names_a_source_that_does_not_take_it(text_run, monkeypatch):
    from odepipe_plugins.text.sources import TextSource

    def old_style(self, model, a, b, steps=8, method="linear", beam=1):
        return [{"alpha": 0.0, "sentence": a}]

    monkeypatch.setattr(TextSource, "interpolate", old_style)
    assert _invoke("interpolate-sentences", "a", "b", "--run", text_run, "--json"
                   ).exit_code == 0  # without --refine an older source still works
    result = _invoke("interpolate-sentences", "a", "b", "--run", text_run, "--refine", 3)
    assert result.exit_code == 2 and "takes no refine" in result.output
    assert "Traceback" not in result.output


def _two_sentences():
    from odepipe import Batch

    ids = torch.tensor([[4, 5, EOS_ID], [6, EOS_ID, PAD_ID]])
    return Batch(times=torch.arange(3).float(), tokens=ids, mask=(ids != PAD_ID).float())


def test_latent_output_start_reads_z0_as_a_per_sentence_bias():
    """decoder.latent_output=start: the output layer has the LM's width, z0 adds one bias over
    the vocabulary per sentence (the same at every position), and a bad choice is named."""
    from odepipe_plugins.text.decoders import GRUTextDecoder

    path = _tiny_decoder(GRUTextDecoder)
    start = _tiny_decoder(GRUTextDecoder, latent_output="start")
    assert path.out.in_features == 6 + 2 and start.out.in_features == 6
    assert path.out_z is None and start.out_z.weight.shape == (7, 2)
    batch = _two_sentences()
    z = torch.randn(2, 3, 2)
    logits = start(z, batch).selected_logits  # (N, V) at the 5 real positions
    weight = start.out_z.weight.detach().clone()  # (V, L)
    with torch.no_grad():
        start.out_z.weight.zero_()
    without = start(z, batch).selected_logits
    rows = torch.tensor([0, 0, 0, 1, 1])  # the sentence of each real position
    bias = z[:, 0] @ weight.T  # (B, V)
    assert torch.allclose(logits - without, bias[rows], atol=1e-6)
    with pytest.raises(odepipe.ModelError, match="decoder.latent_output"):
        GRUTextDecoder(2, vocab_size=7, latent_output="side")


def test_latent_output_state_adds_a_map_of_z0_to_the_state_before_the_output_layer():
    """decoder.latent_output=state: the output layer reads the state alone (the LM's width)
    and z0's map shifts every position's logits of a sentence by out.weight @ state_z(z0)."""
    from odepipe_plugins.text.decoders import GRUTextDecoder

    dec = _tiny_decoder(GRUTextDecoder, latent_output="state")
    assert dec.out.in_features == 6 and dec.out_z is None and dec.state_z.weight.shape == (6, 2)
    batch, z = _two_sentences(), torch.randn(2, 3, 2)
    logits = dec(z, batch).selected_logits
    weight = dec.state_z.weight.detach().clone()  # (H, L)
    with torch.no_grad():
        dec.state_z.weight.zero_()
    without = dec(z, batch).selected_logits
    shift = (z[:, 0] @ weight.T) @ dec.out.weight.detach().T  # (B, V)
    assert torch.allclose(logits - without, shift[torch.tensor([0, 0, 0, 1, 1])], atol=1e-5)


def test_latent_input_add_maps_z_onto_the_embedding():
    """decoder.latent_input=add: the recurrent net's input has the embedding's width and z(t_i)
    at later positions reaches the logits only through that map."""
    from odepipe_plugins.text.decoders import GRUTextDecoder

    dec = _tiny_decoder(GRUTextDecoder, latent_output="state", latent_input="add")
    assert dec.rnn.input_size == 3 and dec.in_z.weight.shape == (3, 2)
    batch, z = _two_sentences(), torch.randn(2, 3, 2)
    later = z.clone()
    later[:, 1:] += 1.0  # the same z0, another path after it
    assert not torch.allclose(dec(z, batch).selected_logits, dec(later, batch).selected_logits)
    with torch.no_grad():
        dec.in_z.weight.zero_()
    assert torch.allclose(dec(z, batch).selected_logits, dec(later, batch).selected_logits)
    with pytest.raises(odepipe.ModelError, match="decoder.latent_input"):
        GRUTextDecoder(2, vocab_size=7, latent_input="beside")


@pytest.mark.parametrize("layers", [0, 65])
def test_decoder_depth_is_the_public_depth_range(layers):
    """num_layers is declared with odepipe.Depth, the annotation plugins can reuse: a value
    outside 1..64 is refused with the key named, before any layer is built."""
    from odepipe_plugins.text.decoders import GRUTextDecoder

    with pytest.raises(odepipe.ModelError, match="decoder.num_layers"):
        GRUTextDecoder(2, vocab_size=7, num_layers=layers)
    assert GRUTextDecoder(2, vocab_size=7, num_layers=2).rnn.num_layers == 2
