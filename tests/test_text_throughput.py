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


def test_text_throughput_quick_runs_and_grouping_cuts_padding(capsys):
    path = os.path.join(ROOT, "benchmarks", "text_throughput.py")
    spec = importlib.util.spec_from_file_location("text_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--quick"])
    assert all(out[k] > 0 for k in ("vae", "lm", "hand", "hand_random"))
    assert out["pad_grouped"] < 0.5 * out["pad_plain"]
    printed = capsys.readouterr().out
    assert "ratio to the hand loop: vae" in printed
    print(printed)
