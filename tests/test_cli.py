import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import TINY_SPIRAL

from odepipe.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def run_ok(runner, *args):
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output + str(result.exception)
    return result


@pytest.mark.parametrize("overrides", [
    ["encoder=lstm"],
    ["solver=rk4", "solver.step_size=0.05"],
    ["solver.adjoint=true"],
    ["solver=dopri5", "solver.adjoint=true"],
])
def test_run_with_overrides(runner, tmp_path, overrides):
    out = tmp_path / "run"
    result = run_ok(runner, "run", "spiral", *TINY_SPIRAL, "train.steps=5", *overrides,
                    "--out", str(out), "-q", "--json")
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["steps"] == 5
    resolved = (out / "recipe.yaml").read_text()
    for item in overrides:
        key, value = item.split("=")
        assert (f"type: {value}" if "." not in key else f"{key.split('.')[1]}: {value}") in resolved
    if "solver.adjoint=true" in overrides:
        assert summary["nfe_backward_per_step"] > 0


def test_run_refuses_existing_folder_then_overwrites_or_resumes(runner, tmp_path):
    out = str(tmp_path / "run")
    args = ["run", "spiral", *TINY_SPIRAL, "train.steps=2", "--out", out, "-q"]
    run_ok(runner, *args)
    again = runner.invoke(cli, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert "Traceback" not in again.output
    run_ok(runner, *args, "--overwrite")
    result = run_ok(runner, "run", "--resume", out, "train.steps=4", "-q", "--json")
    assert json.loads(result.stdout[result.stdout.index("{"):])["steps"] == 4


def test_resume_without_checkpoint_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(cli, ["run", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "checkpoint.pt" in result.output


def test_validate_lists_every_problem_and_exits_2(runner, tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("seed: 0\ndata: {type: spiral}\nencoder: {type: gru, hiden_size: 3}\n"
                      "dynamics: {type: mlp}\nsolver: {type: dopri6}\ndecoder: {type: mlp}\n"
                      "train: {steps: many}\n")
    result = runner.invoke(cli, ["validate", str(recipe)])
    assert result.exit_code == 2
    assert "3 problem(s)" in result.output and str(recipe) in result.output
    assert "encoder.hiden_size" in result.output and "did you mean 'hidden_size'" in result.output
    assert "solver.type" in result.output and "train.steps: expected int" in result.output
    assert "Traceback" not in result.output


def test_validate_ok_and_construction_errors(runner):
    assert "ok" in run_ok(runner, "validate", "spiral").output
    result = runner.invoke(cli, ["validate", "spiral", "solver.rtol=-1", "data.noise_std=-1"])
    assert result.exit_code == 2
    assert "solver.rtol" in result.output and "data.noise_std" in result.output


def test_traceback_flag_shows_the_exception_with_the_same_exit_code(runner):
    plain = runner.invoke(cli, ["validate", "nonexistent_recipe"])
    shown = runner.invoke(cli, ["--traceback", "validate", "nonexistent_recipe"])
    assert plain.exit_code == shown.exit_code == 2
    assert "Traceback" not in plain.output
    assert "Traceback" in shown.output and "RecipeError" in shown.output


def test_ls(runner):
    out = run_ok(runner, "ls").output
    for name in ("gru", "lstm", "rnn", "mlp", "dopri5", "tsit5", "rk4", "linear", "spiral"):
        assert f" {name} " in out
    assert "odepipe_plugins.latent_ode" in out
    solvers = run_ok(runner, "ls", "solver").output
    assert "dopri5" in solvers and "\n  gru " not in solvers
    bad = runner.invoke(cli, ["ls", "solverz"])
    assert bad.exit_code == 2 and "did you mean 'solver" in bad.output


def test_plugins_lists_builtins_with_all(runner):
    table = run_ok(runner, "plugins", "--all").output
    assert "odepipe_plugins.latent_ode" in table
    rows = json.loads(run_ok(runner, "plugins", "--all", "--json").output)
    enc = next(r for r in rows if r["name"] == "odepipe_plugins.latent_ode")
    assert enc["builtin"] and "encoders:gru" in enc["components"] and enc["error"] is None


def test_cp(runner, tmp_path):
    run_ok(runner, "cp", "spiral", str(tmp_path))
    assert (tmp_path / "spiral.yaml").read_text().startswith("#")
    assert runner.invoke(cli, ["cp", "spiral", str(tmp_path)]).exit_code == 2
    bad = runner.invoke(cli, ["cp", "spirall", str(tmp_path / "x.yaml")])
    assert bad.exit_code == 2 and "did you mean 'spiral'" in bad.output


def test_python_dash_m_and_help_is_fast_without_torch():
    code = ("import sys, runpy; sys.argv=['odepipe','--help'];\n"
            "try:\n    runpy.run_module('odepipe', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO_TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert "Commands:" in out.stdout and "run" in out.stdout
    assert out.stdout.strip().endswith("NO_TORCH")


@pytest.mark.parametrize("command", ["run", "cp"])
def test_help_lists_the_shipped_recipes(runner, command):
    from odepipe.recipe import shipped_recipes

    text = run_ok(runner, command, "--help").output
    assert "Shipped recipes:" in text and all(name in text for name in shipped_recipes())


def test_cp_into_a_missing_folder_is_a_clear_error(runner, tmp_path):
    result = runner.invoke(cli, ["cp", "spiral", str(tmp_path / "missing" / "x.yaml")])
    assert result.exit_code == 2 and "cannot write" in result.output
    assert "Traceback" not in result.output
