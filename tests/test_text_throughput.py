"""Smoke test of benchmarks/text_throughput.py --quick: it runs, and grouping cuts padding
(tiny sizes; the timings themselves are not checked)."""
from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize("allocator", ["keep", "system"])
def test_text_throughput_quick_runs_and_grouping_cuts_padding(capsys, allocator):
    path = os.path.join(ROOT, "benchmarks", "text_throughput.py")
    spec = importlib.util.spec_from_file_location("text_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--quick", "--allocator", allocator])
    assert all(out[k] > 0 for k in ("vae", "lm", "hand", "hand_random"))
    assert out["pad_grouped"] < 0.5 * out["pad_plain"]
    printed = capsys.readouterr().out
    assert "ratio to the hand loop: vae" in printed and f"allocator {allocator}" in printed
    assert "vae / hand loop within each round: median" in printed
    assert 0 < out["vae_over_hand_median"] and 0 < out["lm_over_hand_median"]
    print(printed)


def test_the_lm_gets_the_vae_recipes_data_and_decoder_sizes():
    import odepipe

    path = os.path.join(ROOT, "benchmarks", "text_throughput.py")
    spec = importlib.util.spec_from_file_location("text_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    vae = odepipe.load_recipe("text_english")
    lm = odepipe.load_recipe("text_lm", module.lm_overrides(vae))
    assert lm.components["data"].type == "english"
    assert lm.components["data"].params == vae.components["data"].params
    lm_decoder, vae_decoder = lm.components["decoder"].params, vae.components["decoder"].params
    assert (lm_decoder["hidden_size"], lm_decoder["embedding_dim"]) == (256, 64)
    assert lm_decoder["hidden_size"] == vae_decoder["hidden_size"] and not lm_decoder["latent"]
