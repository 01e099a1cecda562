"""What a new user sees of the command line (issue 18): the same exit code with and without
--traceback, help that describes every option and lists the kinds and shipped recipes, and
commands that print where their files went."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from conftest import TINY_SPIRAL

from odepipe.cli import cli, make_cli
from odepipe.host import PluginHost
from odepipe.registry import KINDS

CLI = make_cli(PluginHost(entry_points=False, reserved_commands=tuple(cli.commands)))
QUICK = TINY_SPIRAL + ["solver=euler", "train.lr_schedule=constant", "train.steps=2"]


@pytest.mark.parametrize("args", [
    ["run", "spiral", "train.lr=.nan"],                      # refused by validation
    ["run", "no_such_recipe"],                               # a missing recipe
    ["run", "spiral", *QUICK, "--out", "{blocker}/run"],     # refused when the folder is made
    ["sample", "--run", "{tmp}"],                            # not a run folder
])
def test_traceback_keeps_the_exit_code(tmp_path, args):
    (tmp_path / "blocker").write_text("x")
    args = [a.format(blocker=tmp_path / "blocker", tmp=tmp_path) for a in args]
    plain = CliRunner().invoke(CLI, args)
    shown = CliRunner().invoke(CLI, ["--traceback", *args])
    assert plain.exit_code == shown.exit_code == 2, (plain.output, shown.output)
    assert "Traceback" not in plain.output and "Traceback" in shown.output


def _commands():
    return sorted(CLI.commands.items())


@pytest.mark.parametrize("name, command", _commands(), ids=[n for n, _ in _commands()])
def test_every_option_of_every_command_is_described(name, command):
    undescribed = [p.name for p in command.params
                   if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert undescribed == [], f"odepipe {name}: options without help: {undescribed}"
    assert (command.help or "").strip(), f"odepipe {name} has no help text"


def test_ls_help_lists_the_kinds():
    text = CliRunner().invoke(CLI, ["ls", "--help"]).output
    for kind, (_, section) in KINDS.items():
        assert kind in text and section in text
    assert "recipes" in text


def test_sample_prints_the_folder_of_every_file_it_writes(tmp_path):
    run = tmp_path / "run"
    assert CliRunner().invoke(CLI, ["run", "spiral", *QUICK, "--out", str(run), "-q"]).exit_code \
        == 0
    out = tmp_path / "samples"
    result = CliRunner().invoke(CLI, ["sample", "--run", str(run), "-n", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = list(out.iterdir())
    assert {p.suffix for p in written} == {".csv", ".png"}
    missing = [p.name for p in written if str(p) not in result.output]
    assert not missing, f"printed without its folder: {missing}: {result.output}"


def test_compare_help_says_where_it_writes():
    text = CliRunner().invoke(CLI, ["compare", "--help"]).output
    assert "runs/compare-<time>" in text  # the folder itself: test_issue16_cases.py
