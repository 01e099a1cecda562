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


def test_trace_prints_hook_calls(site, monkeypatch, capsys):
    site(HEADER + GOOD_FIELD + """
@odepipe.hookimpl
def odepipe_register_dynamics(register):
    register("traced_field", Field)
""")
    monkeypatch.setenv("ODEPIPE_TRACE_PLUGINS", "1")
    PluginHost()
    err = capsys.readouterr().err
    assert "odepipe trace:   odepipe_register_dynamics [hook]" in err
    assert all(line.startswith("odepipe trace: ") for line in err.splitlines())
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
    assert json.loads(run.stdout)["steps"] == 2


def test_cli_strict_mode_exits_2_without_traceback(site):
    _, dist, ep = site(BROKEN)
    result = _odepipe(["--help"], site.path, ODEPIPE_STRICT_PLUGINS="1")
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: odepipe: skipped plugin '{ep}' ({dist} 1.2.3)")
    assert "Traceback" not in result.stderr
