"""The plugin host with in-process plugins, recipe ``plugins:``, the ``plugins``/``ls`` commands,
the real example distribution in recipe runs, and the rule that every hook is documented and
tested."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import odepipe
from odepipe import hookspecs
from odepipe.cli import cli, make_cli
from odepipe.errors import PluginError, RecipeError
from odepipe.host import HOOK_ARGS, PluginHost
from odepipe.plugin_sources import BUILTIN_PLUGINS
from odepipe.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "example_plugin"


pytestmark = pytest.mark.usefixtures("plugin_env")


def _plugin(**hooks) -> types.ModuleType:
    """An in-process plugin module whose attributes are marked hook implementations."""
    module = types.ModuleType("inline_plugin")
    for name, func in hooks.items():
        setattr(module, name, odepipe.hookimpl(func))
    return module


def _field_class():
    class Field(odepipe.Dynamics):
        """Test field."""

        def __init__(self, latent_dim: int, rate: float = 1.0):
            super().__init__()
            self.rate = rate

        def forward(self, t, z):
            return -self.rate * z

    return Field


# -- host behaviour ----------------------------------------------------------------------------
def test_builtins_load_with_every_component_attributed():
    host = PluginHost(entry_points=False)
    assert [n for n in BUILTIN_PLUGINS if host.infos[n].error] == []
    for kind in ("encoders", "dynamics", "solvers", "decoders", "data_sources"):
        assert len(host.registries[kind]) > 0
        for component in host.registries[kind]:
            assert component.plugin in BUILTIN_PLUGINS
            assert f"{kind}:{component.name}" in host.infos[component.plugin].components


def test_add_plugin_records_errors_instead_of_warning():
    Field = _field_class()
    host = PluginHost(entry_points=False)

    def odepipe_register_dynamics(register):
        register("field_a", Field, help="one\nline")
        register("field_a", Field)

    info = host.add_plugin(_plugin(odepipe_register_dynamics=odepipe_register_dynamics), "twice")
    assert info.error == "plugin 'twice' registered dynamics name 'field_a' twice; register each name once"
    assert "field_a" not in host.registries["dynamics"]

    def good(register):
        register("field_b", Field, help="A field\n  with a long help.")

    info = host.add_plugin(_plugin(odepipe_register_dynamics=good), "good")
    assert info.error is None and info.components == ["dynamics:field_b"]
    assert host.registries["dynamics"].get("field_b").help == "A field with a long help."


@pytest.mark.parametrize("name", ["", "has space", 3, "dots.not.allowed"])
def test_bad_component_names_are_refused(name):
    Field = _field_class()
    host = PluginHost(entry_points=False)
    info = host.add_plugin(_plugin(odepipe_register_dynamics=lambda register: register(name, Field)),
                           "badname")
    assert "names must be non-empty strings" in info.error


def test_builtin_failure_is_a_bug_and_raises():
    with pytest.raises(PluginError, match="built-in plugin odepipe_plugins.no_such_module failed"):
        PluginHost(builtins=("odepipe_plugins.no_such_module",), entry_points=False)


def test_register_commands_adds_but_never_replaces():
    def odepipe_register_commands(cli):
        @cli.command("fake-hello")
        def hello():
            click.echo("hello from a plugin")

    host = PluginHost(builtins=(), entry_points=False)
    assert host.add_plugin(_plugin(odepipe_register_commands=odepipe_register_commands),
                           "hello").components == ["commands:fake-hello"]
    group = make_cli(host)
    assert CliRunner().invoke(group, ["fake-hello"]).output == "hello from a plugin\n"
    assert "fake-hello" not in cli.commands  # odepipe's own group is never changed

    reserved = PluginHost(builtins=(), entry_points=False, reserved_commands=["fake-hello"])
    info = reserved.add_plugin(_plugin(odepipe_register_commands=odepipe_register_commands),
                               "hello")
    assert "'fake-hello' is already a command of odepipe" in info.error
    assert "fake-hello" not in reserved.commands


def test_help_does_not_import_torch_even_with_plugins_installed():
    code = ("import sys\nfrom odepipe import cli\ngroup = cli.make_cli(cli.new_host())\n"
            "print(sorted(group.commands)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out[-1] == "False", out
    assert "oscillator" in out[0]


# -- recipe plugins: ---------------------------------------------------------------------------
LOCAL = """
import odepipe
from odepipe import Dynamics

class LocalField(Dynamics):
    '''A field from a local, uninstalled module.'''
    def __init__(self, latent_dim: int, rate: float = 0.5):
        super().__init__()
        self.rate = rate
    def forward(self, t, z):
        return -self.rate * z

@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("local_field", LocalField)
"""


def _recipe(tmp_path, plugins):
    text = textwrap.dedent("""\
        data:     {type: spiral, n_spirals: 8, n_test: 4}
        encoder:  {type: gru, hidden_size: 8}
        dynamics: {type: local_field, rate: 0.25}
        solver:   {type: rk4, step_size: 0.5}
        decoder:  {type: mlp, hidden_size: 8}
        train:    {steps: 2, batch_size: 4}
        """)
    path = tmp_path / "local.yaml"
    path.write_text(text + (f"plugins: {plugins}\n" if plugins is not None else ""))
    return str(path)


def test_recipe_plugins_load_a_local_module_from_the_current_directory(tmp_path, monkeypatch):
    module = f"odepipe_local_plugin_{os.getpid()}"
    (tmp_path / f"{module}.py").write_text(LOCAL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        recipe = load_recipe(_recipe(tmp_path, [module]))
        dynamics = recipe.components["dynamics"]
        assert (dynamics.type, dynamics.params, dynamics.plugin) == ("local_field",
                                                                     {"rate": 0.25}, module)
        assert recipe.plugins == [module]
        host = PluginHost(entry_points=False)
        host.load_modules([module])
        assert host.infos[module].source == "recipe"
        assert host.registries["dynamics"].get("local_field").plugin == module
        result = CliRunner().invoke(cli, ["validate", _recipe(tmp_path, [module])])
        assert result.exit_code == 0, result.output
    finally:
        sys.modules.pop(module, None)


def test_without_plugins_key_no_code_is_imported(tmp_path):
    with pytest.raises(RecipeError, match="unknown dynamics type 'local_field'"):
        load_recipe(_recipe(tmp_path, None))


def test_recipe_plugin_that_fails_is_a_recipe_problem(tmp_path):
    with pytest.raises(RecipeError) as err:
        load_recipe(_recipe(tmp_path, ["odepipe_no_such_module_xyz"]))
    assert ("plugins: module 'odepipe_no_such_module_xyz' failed to load: ModuleNotFoundError"
            in str(err.value))


# -- the plugins and ls commands ---------------------------------------------------------------
def test_plugins_all_lists_builtins_in_a_table_and_json():
    result = CliRunner().invoke(cli, ["plugins", "--all"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "HOOKS", "COMPONENTS", "STATUS"]
    row = [line for line in lines if line.startswith("odepipe_plugins.latent_ode ")][0]
    assert row.split()[1:3] == ["built-in", odepipe.__version__]
    assert "decoders, dynamics, encoders, solvers" in row and row.rstrip().endswith("ok")
    data = json.loads(CliRunner().invoke(cli, ["plugins", "--all", "--json"]).output)
    entry = [p for p in data if p["name"] == "odepipe_plugins.latent_ode"][0]
    assert entry["builtin"] and "dynamics:mlp" in entry["components"] and entry["status"] == "ok"
    plain = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    assert all(not p["builtin"] for p in plain)


def test_ls_shows_the_plugin_of_each_component():
    result = CliRunner().invoke(cli, ["ls", "dynamics"])
    assert result.exit_code == 0
    assert re.search(r"^  mlp\s+odepipe_plugins\.latent_ode \(built-in\)\s+MLP", result.output, re.M)
    data = json.loads(CliRunner().invoke(cli, ["ls", "solver", "--json"]).output)
    assert {"name": "rk4", "plugin": "odepipe_plugins.latent_ode"}.items() <= data["solvers"][
        [c["name"] for c in data["solvers"]].index("rk4")].items()
    bad = CliRunner().invoke(cli, ["ls", "dynamic"])
    assert bad.exit_code == 2 and "did you mean 'dynamics'" in bad.output


# -- the real example distribution -------------------------------------------------------------
def test_example_plugin_is_listed_with_version_and_components():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    row = [line for line in result.output.splitlines() if line.startswith("example ")][0]
    assert row.split()[1:3] == ["odepipe-example", "0.1.0"]
    data = [p for p in json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
            if p["name"] == "example"][0]
    assert data["error"] is None and data["version"] == "0.1.0"
    assert sorted(data["components"]) == ["commands:oscillator", "data_sources:damped_oscillator",
                                          "decoders:student_t", "dynamics:damped_linear",
                                          "recipes:oscillator"]
    ls = CliRunner().invoke(cli, ["ls"]).output
    assert re.search(r"damped_linear\s+example \(odepipe-example 0\.1\.0\)", ls)


TINY = ["train.batch_size=8", "train.plot=false", "train.eval_batch_size=8", "-q", "--json"]


def test_example_data_source_in_a_spiral_run(tmp_path):
    result = CliRunner().invoke(cli, ["run", "recipes/spiral.yaml", "data=damped_oscillator",
                                      "data.n_series=16", "data.n_test=8", "train.steps=3",
                                      "train.keep=last",  # the example source has no valid split
                                      "--out", str(tmp_path / "run"), *TINY],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 3 and "test_extrap_mse" in summary
    assert "type: damped_oscillator" in (tmp_path / "run" / "recipe.yaml").read_text()


def test_example_recipe_using_its_dynamics_and_decoder(tmp_path):
    recipe = str(EXAMPLE / "odepipe_example" / "oscillator.yaml")
    result = CliRunner().invoke(cli, ["run", recipe, "train.steps=3",
                                      "data.n_series=16", "data.n_test=8",
                                      "--out", str(tmp_path / "run"), *TINY],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    resolved = (tmp_path / "run" / "recipe.yaml").read_text()
    assert "type: damped_linear" in resolved and "type: student_t" in resolved
    assert json.loads(result.stdout)["steps"] == 3


def test_example_command_runs_through_the_odepipe_entry_point():
    out = subprocess.run([sys.executable, "-m", "odepipe", "oscillator", "--points", "3",
                          "--damping", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == ["t,x,v", "0,1.000000,-0.000000"]


# -- every hook documented and tested ----------------------------------------------------------
def _hook_signatures():
    return [f"{name}({', '.join(args)})" for name, args in HOOK_ARGS.items()]


def test_hook_table_matches_the_specs():
    specs = sorted(n for n in vars(hookspecs) if n.startswith("odepipe_"))
    assert sorted(HOOK_ARGS) == specs and len(specs) >= 6
    for name in specs:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"


def _markdown_section(text: str, title: str):
    """The body of the heading called ``title`` up to the next heading of its level or above
    (lines inside ``` fences are not headings); None when there is no such heading."""
    level, body, fenced = None, [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"(#+) (.*?)\s*$", line)
        if level is None:
            if heading and heading.group(2) == title:
                level = len(heading.group(1))
            continue
        if heading and len(heading.group(1)) <= level:
            break
        body.append(line)
    return None if level is None else "\n".join(body)


#: hooks the README's tutorial does not list yet (docs/plugins.md, the reference, must list all)
README_PENDING: set = set()


@pytest.mark.parametrize("doc, title", [("README.md", "Writing a plugin"),
                                        ("docs/plugins.md", "The hooks")])
def test_every_hook_is_documented_with_its_arguments(doc, title):
    text = (ROOT / doc).read_text(encoding="utf-8")
    section = _markdown_section(text, title)
    assert section is not None, f"{doc} has no '{title}' section"
    pending = README_PENDING if doc == "README.md" else set()
    missing = [sig for name, sig in zip(HOOK_ARGS, _hook_signatures())
               if sig not in section and name not in pending]
    assert not missing, f"{doc} '{title}' does not document: {', '.join(missing)}"


def test_the_plugin_api_version_is_declared_and_documented():
    assert re.fullmatch(r"\d+\.\d+", odepipe.PLUGIN_API)
    assert "PLUGIN_API" in odepipe.__all__
    assert f'`"{odepipe.PLUGIN_API}"`' in (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def test_every_hook_is_implemented_by_some_test_plugin():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py"))
    missing = [name for name in HOOK_ARGS if not re.search(rf"def {name}\(", sources)]
    assert not missing, f"no test implements hook(s): {', '.join(missing)}"
