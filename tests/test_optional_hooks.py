"""A plugin's optional hooks (DataSource.plot, DataSource.evaluate) that raise at the end of a
run cost only what they would have added: the run finishes, its checkpoint and summary stay, a
warning names the hook, and --resume of the finished run does not train again."""
from __future__ import annotations

import json
import types

import pytest
from click.testing import CliRunner

import odepipe
from conftest import TINY_SPIRAL
from odepipe.cli import make_cli
from odepipe_plugins.series.spiral import SpiralData


class PlotBreaks(SpiralData):
    def plot(self, model, batch, out_dir):
        raise ValueError("no figure today")


class EvaluateBreaks(SpiralData):
    def evaluate(self, model, batch):
        raise KeyError("no metric today")


def _cli(cls):
    module = types.ModuleType(f"breaks_{cls.__name__}")
    module.odepipe_register_data_sources = odepipe.hookimpl(
        lambda register: register(f"breaks_{cls.__name__.lower()}", cls))
    host = odepipe.PluginHost(entry_points=False)
    assert host.add_plugin(module).error is None
    return make_cli(host), host, f"breaks_{cls.__name__.lower()}"


@pytest.mark.parametrize("cls, hook, lost", [(PlotBreaks, "plot", "figures"),
                                             (EvaluateBreaks, "evaluate", "metrics")])
def test_a_failing_optional_hook_leaves_the_run_standing(tmp_path, cls, hook, lost):
    cli, host, name = _cli(cls)
    out = tmp_path / "run"
    args = ["run", "spiral", f"data={name}", "train.steps=2", *TINY_SPIRAL,
            "train.plot=true", "--out", str(out), "-q", "--json"]
    with pytest.warns(UserWarning, match=rf"{cls.__name__}\.{hook} .* raised .*{lost}"):
        result = CliRunner().invoke(cli, args, obj=host)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and (out / "checkpoint.pt").is_file()
    assert ("test_extrap_mse" in summary) == (hook != "evaluate")
    with pytest.warns(UserWarning, match=hook):
        again = CliRunner().invoke(cli, ["run", "--resume", str(out), "-q", "--json"], obj=host)
    assert again.exit_code == 0, again.output
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in metrics) == 2  # nothing trained again


def test_a_missing_text_extra_is_a_clear_error_with_the_install_command(monkeypatch, tmp_path):
    import sys

    from odepipe.cli import cli

    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # as if not installed
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path))
    result = CliRunner().invoke(cli, ["validate", "text_vae", "data.n_train=200",
                                      "data.n_valid=20", "data.n_test=20"])
    assert result.exit_code == 2, result.output
    assert "pip install 'odepipe[text]'" in result.output and "Traceback" not in result.output
