"""The default sentence model shipped in the package: it is found, it loads as a run without any
corpus or cache, and ``interpolate-sentences`` without ``--run`` answers with it."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from odepipe_plugins.text import default_model

import odepipe
import odepipe.cli

CLI = odepipe.cli.make_cli(odepipe.cli.new_host())
SHIPPED = default_model.shipped_path()
pytestmark = pytest.mark.skipif(not os.path.isdir(SHIPPED), reason="no shipped model here")


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path / "cache"))  # no user-trained default


def test_the_shipped_model_is_the_default_and_small():
    assert default_model.locate() == default_model.DefaultModel(SHIPPED, "shipped")
    size = sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(SHIPPED) for f in files)
    assert size <= 25 * 2**20  # weights + tokenizer, the limit
    recipe, data, model = odepipe.load_run(SHIPPED)
    assert recipe.components["data"].type == "english" and model.variational
    assert data.codec.vocab_size == model.decoder.out.out_features


def test_interpolate_sentences_without_run_uses_it(tmp_path):
    result = CliRunner().invoke(CLI, ["interpolate-sentences", "The king went to the city.",
                                      "She sat by the river.", "--steps", "3", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["run"] == os.path.abspath(SHIPPED) and len(out["path"]) == 5
    assert all(p["sentence"] and "grammatical" not in p for p in out["path"])
    assert not os.path.exists(tmp_path / "cache" / "models")  # nothing trained or cached
    shown = json.loads(CliRunner().invoke(CLI, ["models", "--json"]).output)
    assert shown["state"] == "shipped" and shown["figures"]["steps"] > 0
