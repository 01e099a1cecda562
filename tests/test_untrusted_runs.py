"""A run folder someone shared runs no code of its own: the modules its recipe names under
``plugins:`` load only when installed, unless ``odepipe --allow-plugins`` is given."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import TINY_SPIRAL

EVIL = textwrap.dedent("""
    import pathlib
    pathlib.Path("RAN").write_text("the shared folder's code ran")
    import odepipe
    from odepipe import Dynamics

    class Field(Dynamics):
        def __init__(self, latent_dim: int):
            super().__init__()
        def forward(self, t, z):
            return -z

    @odepipe.hookimpl
    def odepipe_register_dynamics(register):
        register("evil_field", Field)
""")


def _odepipe(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODEPIPE_")}
    return subprocess.run([sys.executable, "-m", "odepipe", *map(str, args)], cwd=str(cwd),
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    """A trained run whose recipe names a local module, then handed to someone else: the module
    lies in the run folder, and the marker it writes is removed."""
    work = tmp_path_factory.mktemp("author")
    module = f"evilmod_{os.getpid()}"
    (work / f"{module}.py").write_text(EVIL)
    (work / "r.yaml").write_text(f"plugins: [{module}]\n" + open("recipes/spiral.yaml").read())
    out = work / "run"
    made = _odepipe("run", "r.yaml", "dynamics=evil_field", "train.steps=2", *TINY_SPIRAL,
                    "--out", out, "-q", cwd=work)
    assert made.returncode == 0, made.stderr
    assert (work / "RAN").exists()  # the author ran their own local plugin on purpose
    (work / "RAN").unlink()
    os.replace(work / f"{module}.py", out / f"{module}.py")
    return out, module


@pytest.mark.parametrize("command", [["sample", "--run", "."], ["evaluate", "."],
                                     ["run", "--resume", ".", "train.steps=3"],
                                     ["extrapolate", "--run", ".", "--input", "seed.csv",
                                      "--until", "9"],
                                     ["interpolate-sentences", "a b", "c d", "--run", "."]])
def test_loading_a_shared_run_folder_runs_none_of_its_code(shared_run, command):
    run, module = shared_run
    result = _odepipe(*command, cwd=run)
    assert result.returncode == 2, result.stderr
    assert f"module {module!r} is not installed" in result.stderr
    assert "--allow-plugins" in result.stderr and "Traceback" not in result.stderr
    assert not (run / "RAN").exists()


def test_allow_plugins_lets_the_run_import_its_module(shared_run):
    run, _ = shared_run
    result = _odepipe("--allow-plugins", "sample", "--run", ".", "-n", "1", cwd=run)
    assert result.returncode == 0, result.stderr
    assert (run / "RAN").exists()
    (run / "RAN").unlink()
