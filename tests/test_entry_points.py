"""Hermetic entry-point tests: a fake ``*.dist-info`` and module on a tmp dir put on sys.path, a
fresh PluginHost per test, one test per way a third-party plugin can break."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest

from odepipe.errors import PluginError
from odepipe.host import PluginHost
from odepipe.plugin_report import PluginWarning

_counter = itertools.count()

HEADER = "import odepipe\nfrom odepipe import Dynamics\n"
GOOD_FIELD = """
class Field(Dynamics):
    '''A fake field.'''
    def __init__(self, latent_dim: int):
        super().__init__()
    def forward(self, t, z):
        return -z
"""


pytestmark = pytest.mark.usefixtures("plugin_env")


@pytest.fixture
def site(tmp_path, monkeypatch, request):
    """make(code, dist=..., version=..., ep=...) writes a module and a dist-info declaring it as
    an ``odepipe`` entry point into a tmp dir on sys.path; returns (module, dist, ep name)."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(code: str, dist: str = None, version: str = "1.2.3", ep: str = None):
        n = next(_counter)
        module = f"fake_odepipe_plugin_{os.getpid()}_{n}"
        dist = dist or f"fake-dist-{n}"
        ep = ep or f"fake{n}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(code))
        info = tmp_path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[odepipe]\n{ep} = {module}\n")
        request.addfinalizer(lambda: sys.modules.pop(module, None))
        return module, dist, ep

    make.path = tmp_path
    return make


def load_with_warning(ep: str, make_host=PluginHost):
    """A fresh host; returns (host, the one warning line about plugin ``ep``)."""
    with pytest.warns(PluginWarning) as record:
        host = make_host()
    lines = [str(w.message) for w in record if f"'{ep}'" in str(w.message)]
    assert len(lines) == 1, [str(w.message) for w in record]
    assert "\n" not in lines[0]
    return host, lines[0]


def assert_skipped(host, ep, dist, version="1.2.3"):
    info = host.infos[ep]
    assert info.error and info.distribution == dist and info.version == version
    assert info.components == [] and host.pm.get_plugin(ep) is None


# -- the good case -----------------------------------------------------------------------------
def test_good_plugin_is_discovered_with_distribution_version_and_components(site):
    module, dist, ep = site(HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("fake_field", Field)
""")
    host = PluginHost()
    info = host.infos[ep]
    assert (info.distribution, info.version, info.error) == (dist, "1.2.3", None)
    assert info.hooks == ["odepipe_register_dynamics"]
    assert info.components == ["dynamics:fake_field"]
    component = host.registries["dynamics"].get("fake_field")
    assert component.plugin == ep and component.help == "A fake field."
    assert host.plugin_of(component) == f"{ep} ({dist} 1.2.3)"


# -- every failure mode: one warning line naming distribution, version and cause ---------------
def test_import_error_is_skipped_with_one_line(site):
    module, dist, ep = site("raise ImportError('needs libfoo >= 2,\\nplease install it')\n")
    host, line = load_with_warning(ep)
    assert_skipped(host, ep, dist)
    assert f"({dist} 1.2.3)" in line and "ImportError: needs libfoo >= 2, please install it" in line
    assert "spiral" in host.registries["data_sources"]  # everything else still loaded


def test_syntax_error_in_plugin_is_skipped(site):
    module, dist, ep = site("def broken(:\n")
    host, line = load_with_warning(ep)
    assert_skipped(host, ep, dist)
    assert "SyntaxError" in line


def test_hook_arguments_not_matching_the_spec(site):
    module, dist, ep = site(HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamics(reg):
    reg("fake_field", Field)
""")
    host, line = load_with_warning(ep)
    assert_skipped(host, ep, dist)
    assert "odepipe_register_dynamics(reg) does not match its spec" in line
    assert "odepipe_register_dynamics(register)" in line and "unknown argument(s) reg" in line
    assert "fake_field" not in host.registries["dynamics"]


def test_misspelled_hook_name(site):
    module, dist, ep = site(HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamic(register):
    register("fake_field", Field)
""")
    host, line = load_with_warning(ep)
    assert_skipped(host, ep, dist)
    assert "unknown hook 'odepipe_register_dynamic'" in line
    assert "did you mean 'odepipe_register_dynamics'" in line


def test_hook_function_without_the_marker(site):
    module, dist, ep = site(HEADER + GOOD_FIELD + """
def odepipe_register_dynamics(register):
    register("fake_field", Field)
""")
    host, line = load_with_warning(ep)
    assert_skipped(host, ep, dist)
    assert "'odepipe_register_dynamics' is not marked @odepipe.hookimpl" in line


def test_name_taken_by_a_builtin_names_both_plugins(site):
    module, dist, ep = site(HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("mlp", Field)
""")
    host, line = load_with_warning(ep)
    assert_skipped(host, ep, dist)
    assert "'mlp' is registered twice" in line
    assert "plugin 'odepipe_plugins.latent_ode'" in line and f"plugin '{ep}'" in line
    assert host.registries["dynamics"].get("mlp").plugin == "odepipe_plugins.latent_ode"


def test_name_taken_by_another_plugin_names_both(site):
    code = HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("twin", Field)
"""
    _, dist_a, ep_a = site(code)
    _, dist_b, ep_b = site(code)
    with pytest.warns(PluginWarning) as record:
        host = PluginHost()
    lines = [str(w.message) for w in record if "'twin'" in str(w.message)]
    assert len(lines) == 1
    winner = host.registries["dynamics"].get("twin").plugin
    loser = ep_b if winner == ep_a else ep_a
    assert host.infos[loser].error and not host.infos[winner].error
    assert f"plugin '{ep_a}'" in lines[0] and f"plugin '{ep_b}'" in lines[0]
    assert f"skipped plugin '{loser}'" in lines[0]


def test_class_not_subclassing_its_stage_base(site):
    module, dist, ep = site(HEADER + """
class NotAField:
    pass

@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("not_a_field", NotAField)
""")
    host, line = load_with_warning(ep)
    assert_skipped(host, ep, dist)
    assert "is not a subclass of odepipe.Dynamics" in line


def test_plugin_is_taken_whole_or_not_at_all(site):
    """A hook that raises after registering a good component leaves nothing behind."""
    module, dist, ep = site(HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("first_ok", Field)

@odepipe.hookimpl
def odepipe_register_decoders(register):
    raise RuntimeError("decoder setup failed")
""")
    host, line = load_with_warning(ep)
    assert_skipped(host, ep, dist)
    assert "RuntimeError: decoder setup failed" in line
    assert "first_ok" not in host.registries["dynamics"]


def test_command_replacing_a_builtin_command_is_refused(site):
    module, dist, ep = site("""
import click, odepipe

@odepipe.hookimpl
def odepipe_register_commands(cli):
    @cli.command("run")
    def hijack():
        pass
""")
    from odepipe.cli import new_host

    host, line = load_with_warning(ep, new_host)
    assert_skipped(host, ep, dist)
    assert "command 'run' is already a command of odepipe itself" in line
    assert "run" not in host.commands


def test_same_command_from_two_plugins_names_both(site):
    code = """
import click, odepipe

@odepipe.hookimpl
def odepipe_register_commands(cli):
    @cli.command("fake-twin-command")
    def twin():
        pass
"""
    _, _, ep_a = site(code)
    _, _, ep_b = site(code)
    with pytest.warns(PluginWarning) as record:
        host = PluginHost(builtins=())
    lines = [str(w.message) for w in record if "fake-twin-command" in str(w.message)]
    assert len(lines) == 1
    assert f"plugin '{ep_a}'" in lines[0] and f"plugin '{ep_b}'" in lines[0]
    assert host.commands["fake-twin-command"][0] in (ep_a, ep_b)


def test_two_distributions_with_one_entry_point_name(site):
    _, dist_a, _ = site(HEADER, ep="fake_same_name")
    _, dist_b, _ = site(HEADER, ep="fake_same_name")
    with pytest.warns(PluginWarning) as record:
        host = PluginHost()
    lines = [str(w.message) for w in record if "fake_same_name" in str(w.message)]
    assert len(lines) == 1 and "entry point name 'fake_same_name' is already used" in lines[0]
    assert dist_a in lines[0] and dist_b in lines[0]
    assert host.infos["fake_same_name"].error is None


# -- environment variables ---------------------------------------------------------------------
def test_strict_mode_makes_a_broken_plugin_an_error(site, monkeypatch):
    module, dist, ep = site("raise ImportError('needs libfoo')\n")
    monkeypatch.setenv("ODEPIPE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=rf"skipped plugin '{ep}' \({dist} 1.2.3\): "
                                          r"ImportError: needs libfoo.*ODEPIPE_STRICT_PLUGINS"):
        PluginHost()


@pytest.mark.parametrize("by", ["entry point", "distribution", "module"])
def test_disable_blocks_a_plugin_before_it_is_imported(site, monkeypatch, by):
    module, dist, ep = site("raise ImportError('must never be imported')\n")
    name = {"entry point": ep, "distribution": dist.upper().replace("-", "_"), "module": module}[by]
    monkeypatch.setenv("ODEPIPE_DISABLE_PLUGINS", f"something_else, {name}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        host = PluginHost()
    info = host.infos[ep]
    assert info.disabled and info.error is None and module not in sys.modules
    assert info.status == "disabled by ODEPIPE_DISABLE_PLUGINS"


def test_trace_lines_name_the_implementing_plugin(site, monkeypatch, capsys):
    module, dist, ep = site(HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("traced_field", Field)

@odepipe.hookimpl
def odepipe_register_decoders(register):
    raise RuntimeError("no decoder today")
""")
    monkeypatch.setenv("ODEPIPE_TRACE_PLUGINS", "1")
    with pytest.warns(PluginWarning):
        PluginHost()
    lines = capsys.readouterr().err.splitlines()
    who = f"plugin '{ep}' ({dist} 1.2.3)"
    assert f"odepipe trace: loading {who} from {module}" in lines
    assert f"odepipe trace: odepipe_register_dynamics: calling {who}" in lines
    assert f"odepipe trace: plugin '{ep}' registers dynamics 'traced_field' -> Field" in lines
    assert (f"odepipe trace: odepipe_register_decoders: {who} raised RuntimeError: "
            f"no decoder today") in lines
    assert "odepipe trace: odepipe_register_dynamics: calling plugin 'odepipe_plugins." \
           "latent_ode' (built-in)" in lines
    assert all(line.startswith("odepipe trace: ") for line in lines)
    monkeypatch.delenv("ODEPIPE_TRACE_PLUGINS")
    PluginHost()
    assert capsys.readouterr().err == ""


# -- the command line keeps working beside a broken plugin -------------------------------------
BROKEN = "raise RuntimeError('this plugin is broken on purpose')\n"


def _odepipe(args, site_dir, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ODEPIPE_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(site_dir), environ.get("PYTHONPATH", "")])
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "odepipe", *args], capture_output=True,
                          text=True, env=environ, timeout=120, cwd=str(site_dir))


def test_cli_help_ls_plugins_and_run_survive_a_plugin_that_raises_on_import(site):
    _, dist, ep = site(BROKEN)
    warning = (f"odepipe: skipped plugin '{ep}' ({dist} 1.2.3): "
               f"RuntimeError: this plugin is broken on purpose")
    help_ = _odepipe(["--help"], site.path)
    assert help_.returncode == 0 and "Commands:" in help_.stdout
    assert help_.stderr.splitlines() == [warning]
    ls = _odepipe(["ls", "dynamics"], site.path)
    assert ls.returncode == 0 and "mlp" in ls.stdout
    assert ls.stderr.splitlines() == [warning]  # once: one host per process
    listed = _odepipe(["plugins", "--json"], site.path)
    entry = [p for p in json.loads(listed.stdout) if p["name"] == ep][0]
    assert entry["error"] == "RuntimeError: this plugin is broken on purpose"
    assert (entry["distribution"], entry["version"]) == (dist, "1.2.3")
    run = _odepipe(["run", "spiral", "data.n_spirals=8", "data.n_test=4", "train.batch_size=4",
                    "train.steps=2", "train.plot=false", "--out", "out", "-q"], site.path)
    assert run.returncode == 0, run.stderr
    assert warning in run.stderr.splitlines()
    assert json.loads((site.path / "out" / "summary.json").read_text())["steps"] == 2


def test_cli_strict_mode_exits_2_without_traceback(site):
    _, dist, ep = site(BROKEN)
    result = _odepipe(["--help"], site.path, ODEPIPE_STRICT_PLUGINS="1")
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: odepipe: skipped plugin '{ep}' ({dist} 1.2.3)")
    assert "Traceback" not in result.stderr


# -- "skipped whole", per breakage: every command warns once and runs without the plugin -----
COMMAND = """
@odepipe.hookimpl
def odepipe_register_commands(cli):
    import click

    @cli.command("fake-plugin-command")
    def command():
        click.echo("the plugin's command ran")
"""

BREAKAGES = {
    "name already taken": ("""
@odepipe.hookimpl
def odepipe_register_encoders(register):
    register("gru", "json:JSONDecoder")
""", "encoders name 'gru' is registered twice: by plugin 'odepipe_plugins.latent_ode'"),
    "not a subclass of its base": ("""
class NotAField:
    pass

@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("not_a_field", NotAField)
""", "is not a subclass of odepipe.Dynamics"),
    "exception inside a hook": ("""
@odepipe.hookimpl
def odepipe_register_decoders(register):
    raise RuntimeError("the hook broke")
""", "RuntimeError: the hook broke"),
    "reference to a module that cannot be found": ("""
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("lazy", "odepipe_no_such_module_xyz:Field")
""", "from module 'odepipe_no_such_module_xyz', which cannot be found"),
    "invalid name": ("""
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("has space", "json:JSONDecoder")
""", "names must be non-empty strings"),
    "not a class": ("""
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("not_a_class", len)
""", "is not a subclass of odepipe.Dynamics"),
    "name registered twice": ("""
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("twice", "json:JSONDecoder")
    register("twice", "json:JSONDecoder")
""", "registered dynamics name 'twice' twice"),
    "SystemExit while loading": ("raise SystemExit(3)\n",
                                 "failed to load: it raised SystemExit(3)"),
}


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_a_broken_plugin_is_skipped_whole_by_every_command(site, case):
    code, cause = BREAKAGES[case]
    _, dist, ep = site("import odepipe\n" + code + COMMAND)
    prefix = f"odepipe: skipped plugin '{ep}' ({dist} 1.2.3): "

    def one_warning(result):
        lines = [line for line in result.stderr.splitlines() if line.startswith("odepipe: ")]
        assert len(lines) == 1 and lines[0].startswith(prefix) and cause in lines[0], \
            result.stderr
        assert "Traceback" not in result.stderr

    help_ = _odepipe(["--help"], site.path)
    assert help_.returncode == 0 and "Commands:" in help_.stdout
    assert "fake-plugin-command" not in help_.stdout
    one_warning(help_)
    cp = _odepipe(["cp", "spiral", "copy.yaml"], site.path)
    assert cp.returncode == 0 and (site.path / "copy.yaml").is_file(), cp.stderr
    one_warning(cp)
    own = _odepipe(["fake-plugin-command"], site.path)
    assert own.returncode == 2 and "No such command 'fake-plugin-command'" in own.stderr
    assert "the plugin's command ran" not in own.stdout
    one_warning(own)
    strict = _odepipe(["--help"], site.path, ODEPIPE_STRICT_PLUGINS="1")
    assert strict.returncode == 2 and strict.stderr.startswith(f"Error: {prefix}")
    assert cause in strict.stderr and "Traceback" not in strict.stderr


def test_a_reference_whose_module_raises_is_one_line_when_first_used(site):
    """Loading does not import a reference (so --help stays free of torch), so such a plugin
    loads; a recipe that uses the component gets one line naming it and its plugin."""
    heavy = f"fake_heavy_module_{os.getpid()}"
    (site.path / f"{heavy}.py").write_text("raise RuntimeError('heavy import failed')\n")
    _, dist, ep = site(f"""
import odepipe

@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("heavy_field", "{heavy}:Field")
""" + COMMAND)
    help_ = _odepipe(["--help"], site.path)
    assert help_.returncode == 0 and "fake-plugin-command" in help_.stdout
    assert help_.stderr == ""
    (site.path / "r.yaml").write_text(
        "data: {type: spiral, n_spirals: 8, n_test: 4}\nencoder: {type: gru}\n"
        "dynamics: {type: heavy_field}\nsolver: {type: rk4}\ndecoder: {type: mlp}\n")
    result = _odepipe(["validate", "r.yaml"], site.path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"dynamics.type: dynamics 'heavy_field' of plugin '{ep} ({dist} 1.2.3)' could not "
            f"be imported from {heavy}:Field: RuntimeError: heavy import failed") in result.stderr
    ls = _odepipe(["ls", "dynamics"], site.path)
    assert ls.returncode == 0 and "heavy_field" in ls.stdout and "(unusable: " in ls.stdout


# -- what a skipped plugin leaves behind: what it offered, why, and its traceback ---------------
def test_a_skipped_plugin_records_what_it_offered_and_its_traceback(site):
    module, dist, ep = site(HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("pendulum", Field)

@odepipe.hookimpl
def odepipe_register_decoders(register):
    def helper():
        raise RuntimeError("decoder setup failed")
    helper()
""" + COMMAND)
    host, _ = load_with_warning(ep)
    info = host.infos[ep]
    assert info.offered["dynamics"] == ["pendulum"]
    assert "fake-plugin-command" not in host.commands
    assert "in helper" in info.traceback and "RuntimeError: decoder setup failed" in info.traceback
    assert f"{module}.py" in info.traceback
    assert host.skipped() == [info]
    assert host.why_missing("dynamics", "pendulum") == (
        f"plugin '{ep}' ({dist} 1.2.3) that registers it was skipped: "
        f"RuntimeError: decoder setup failed")
    assert host.why_missing("encoder", "pendulum") is None  # a section name works too
    from odepipe.plugin_report import traceback_report

    report = traceback_report(host.skipped())
    assert report.startswith(f"odepipe: traceback of skipped plugin '{ep}' ({dist} 1.2.3):\n")
    assert "Traceback (most recent call last)" in report


def test_a_plugin_that_failed_to_import_may_be_the_provider(site):
    _, dist, ep = site("raise ImportError('needs libpendulum')\n")
    host, _ = load_with_warning(ep)
    why = host.why_missing("data", "pendulum")
    assert why == (f"it may come from a plugin that failed to load: '{ep}' ({dist} 1.2.3): "
                   f"ImportError: needs libpendulum")
    assert "raise ImportError('needs libpendulum')" in host.infos[ep].traceback


def test_strict_mode_error_carries_the_plugins_traceback(site, monkeypatch):
    _, _, ep = site("raise SystemExit('bye')\n")
    monkeypatch.setenv("ODEPIPE_STRICT_PLUGINS", "1")
    from odepipe.plugin_report import SkippedPluginError

    with pytest.raises(SkippedPluginError, match="failed to load: it raised SystemExit") as err:
        PluginHost()
    assert err.value.info.name == ep and "SystemExit: bye" in err.value.info.traceback


# -- plugin-shipped recipes -----------------------------------------------------------------------
def test_the_example_plugin_ships_its_recipe():
    host = PluginHost()
    assert host.recipes()["oscillator"] == "example (odepipe-example 0.1.0)"
    text, source = host.recipe_text("oscillator.yaml")
    assert "type: damped_oscillator" in text
    assert source == "oscillator (plugin 'example', odepipe-example 0.1.0)"
    assert host.recipe_text("no_such_recipe") is None
    assert "recipes:oscillator" in host.infos["example"].components


RECIPE_TEXT = "data: {type: spiral}\nencoder: {type: gru}\n"


@pytest.mark.parametrize("register, cause", [
    ('register("spiral", TEXT)', "recipe 'spiral' is already a recipe shipped with odepipe"),
    ('register("fake_recipe", "/no/such/file.yaml")', "registered recipe 'fake_recipe' from "
                                                      "/no/such/file.yaml, which cannot be read"),
    ('register("bad name", TEXT)', "registered recipe name 'bad name'"),
    ('register("fake_recipe", TEXT); register("fake_recipe", TEXT)',
     "registered recipe 'fake_recipe' twice"),
])
def test_a_bad_recipe_skips_the_plugin(site, register, cause):
    _, _, ep = site(f"""
import odepipe
TEXT = {RECIPE_TEXT!r}

@odepipe.hookimpl
def odepipe_register_recipes(register):
    {register}
""" + COMMAND)
    host, line = load_with_warning(ep)
    assert cause in line
    assert "fake_recipe" not in host.recipes() and "fake-plugin-command" not in host.commands


def test_one_recipe_name_from_two_plugins_names_both(site, tmp_path):
    path = tmp_path / "shared.yaml"
    path.write_text(RECIPE_TEXT)
    code = f"""
import odepipe
from pathlib import Path

@odepipe.hookimpl
def odepipe_register_recipes(register):
    register("fake_shared", Path({str(path)!r}))
"""
    _, _, ep_a = site(code)
    _, _, ep_b = site(code)
    with pytest.warns(PluginWarning) as record:
        host = PluginHost()
    lines = [str(w.message) for w in record if "fake_shared" in str(w.message)]
    assert len(lines) == 1 and "recipe 'fake_shared' is registered twice" in lines[0]
    assert f"plugin '{ep_a}'" in lines[0] and f"plugin '{ep_b}'" in lines[0]
    assert host.recipe_text("fake_shared")[0] == RECIPE_TEXT


def test_traceback_flag_shows_where_a_skipped_plugin_failed(site):
    module, dist, ep = site("def helper():\n    raise RuntimeError('broken inside helper')\nhelper()\n")
    result = _odepipe(["--traceback", "ls", "dynamics"], site.path)
    assert result.returncode == 0, result.stderr
    assert f"traceback of skipped plugin '{ep}'" in result.stderr
    assert f"{module}.py" in result.stderr and "in helper" in result.stderr
    strict = _odepipe(["--traceback", "--help"], site.path, ODEPIPE_STRICT_PLUGINS="1")
    assert strict.returncode == 2 and "in helper" in strict.stderr
    plain = _odepipe(["ls", "dynamics"], site.path)
    assert "in helper" not in plain.stderr  # only with --traceback
