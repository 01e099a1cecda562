"""README.md says what the shipped files hold (issue 18): its recipe block and component table
are generated from them by scripts/sync_readme.py, and its hand-written lists (shipped recipes,
train keys, commands, components) name exactly what exists."""
from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from odepipe.cli import cli, make_cli
from odepipe.host import PluginHost
from odepipe.recipe import shipped_recipes
from odepipe.recipe.schema import ModelConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FIX = "README.md and the shipped files disagree: run python scripts/sync_readme.py"


def _sync():
    path = ROOT / "scripts" / "sync_readme.py"
    spec = importlib.util.spec_from_file_location("sync_readme", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYNC = _sync()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def bullet(text: str, head: str) -> str:
    """The bullet of ``text`` that starts with ``- HEAD``, its continuation lines included."""
    match = re.search(rf"^- {re.escape(head)}.*?(?=^- |^\S|\Z)", text, re.S | re.M)
    assert match, f"README has no bullet '- {head}'"
    return match.group(0)


def test_readme_keeps_its_generated_blocks():
    assert SYNC.blocks(README) == ["recipe recipes/spiral.yaml", "components"]


@pytest.mark.parametrize("what", SYNC.blocks(README))
def test_readme_generated_blocks_match_the_shipped_files(what):
    written = next(m.group("body") for m in SYNC.BLOCK.finditer(README)
                   if m.group("what").strip() == what)
    assert written == SYNC.generated(what), f"{FIX} (block {what!r})"


def test_the_sync_restores_a_drifted_recipe_block():
    drifted = README.replace("hidden_size: 25}", "hidden_size: 20}", 1)
    assert drifted != README and SYNC.synced(drifted) == SYNC.synced(README)


def test_the_recipe_block_is_the_shipped_recipe_verbatim():
    block = README.split("<!-- synced: recipe recipes/spiral.yaml -->\n```yaml\n", 1)[1]
    block = block.split("```", 1)[0]
    assert block.strip() in (ROOT / "recipes" / "spiral.yaml").read_text()
    assert "train:" in block and "lr_min" in block and "grad_clip" in block


def test_the_component_table_lists_every_builtin_component():
    table = README.split("<!-- synced: components -->", 1)[1].split("<!-- /synced -->", 1)[0]
    prose = section("Components shipped").replace(table, "")
    for kind, plugins in SYNC.builtin_components().items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {kind} |"))
        for names in plugins.values():
            for name in names:
                assert f"`{name}`" in row, (kind, name, FIX)
                assert re.search(rf"\b{re.escape(name)}\b", prose), \
                    f"README's Components shipped does not describe {kind} {name!r}"


def test_shipped_recipes_are_the_ones_the_readme_lists():
    text = bullet(section("Recipes"), "Shipped recipes")
    listed = set(re.findall(r"`([a-z0-9_]+)`", text))
    assert listed == set(shipped_recipes()), (sorted(listed ^ set(shipped_recipes())), FIX)


@pytest.mark.parametrize("head, config", [("`train`", TrainConfig), ("`model`", ModelConfig)])
def test_the_readme_names_every_key_of_train_and_model(head, config):
    text = bullet(section("Recipes"), head)
    named = set(re.findall(r"`([a-z_]+)[`:]", text))
    fields = {f.name for f in dataclasses.fields(config)}
    assert fields <= named, sorted(fields - named)


def test_the_command_table_lists_every_command():
    builtin = PluginHost(entry_points=False, reserved_commands=tuple(cli.commands))
    help_text = CliRunner().invoke(make_cli(builtin), ["--help"]).output
    commands = set(re.findall(r"^  ([a-z][a-z-]+)  ", help_text.split("Commands:", 1)[1], re.M))
    table = section("Command line")
    rows = set(re.findall(r"^\| `odepipe ([a-z-]+)", table, re.M))
    assert commands and commands == rows
