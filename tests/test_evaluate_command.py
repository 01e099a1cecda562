"""``odepipe evaluate``, ``ls KIND NAME``, ``ls recipes`` and ``cp`` of a plugin's recipe."""
from __future__ import annotations

import json

from click.testing import CliRunner

from conftest import TINY_SPIRAL
from odepipe.cli import make_cli, new_host

CLI = make_cli(new_host())


def _invoke(*args):
    return CliRunner().invoke(CLI, [str(a) for a in args])


def test_evaluate_prints_sampled_bounds_of_a_series_run(tmp_path):
    out = tmp_path / "run"
    assert _invoke("run", "spiral", "train.steps=3", *TINY_SPIRAL, "--out", out, "-q").exit_code == 0
    result = _invoke("evaluate", out, "--samples", 5, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    for key in ("test_extrap_mse", "test_elbo_sampled", "test_nll_iw5", "test_mi", "test_kl",
                "test_recon_nll_at_mean", "test_elbo_at_mean"):
        assert key in metrics, key
    # the importance-weighted bound is at least as tight as the sampled ELBO
    assert -metrics["test_nll_iw5"] >= metrics["test_elbo_sampled"] - 1e-6
    table = _invoke("evaluate", out, "--samples", 2)
    assert table.exit_code == 0 and "test_nll_iw2" in table.output
    assert _invoke("evaluate", out, "--split", "nope").exit_code == 2


def test_evaluate_refuses_a_folder_that_is_not_a_run(tmp_path):
    result = _invoke("evaluate", tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_ls_kind_name_describes_parameters_and_ls_recipes_lists_plugin_recipes():
    described = _invoke("ls", "solver", "rk4")
    assert described.exit_code == 0 and "step_size" in described.output
    assert _invoke("ls", "solver", "rk5").exit_code == 2
    recipes = _invoke("ls", "recipes")
    assert recipes.exit_code == 0 and "spiral" in recipes.output
    assert "oscillator" in recipes.output  # shipped by the example plugin


def test_cp_copies_a_plugin_recipe(tmp_path):
    result = _invoke("cp", "oscillator", tmp_path / "o.yaml")
    assert result.exit_code == 0, result.output
    assert "damped_oscillator" in (tmp_path / "o.yaml").read_text()


def test_a_plugin_recipe_validates_and_runs_by_name(tmp_path):
    assert _invoke("validate", "oscillator").exit_code == 0  # shipped by the example plugin
    from odepipe.host import PluginHost
    from odepipe.recipe import load_recipe

    result = _invoke("run", "oscillator", "train.steps=2", "data.n_series=16", "data.n_test=8",
                     "train.batch_size=8", "train.plot=false", "--out", tmp_path / "o", "-q")
    assert result.exit_code == 0, result.output
    host = PluginHost()
    assert load_recipe("oscillator", host=host).components["data"].type == "damped_oscillator"
