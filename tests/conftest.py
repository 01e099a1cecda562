"""Shared fixtures: tiny, deterministic settings so every test runs in seconds on a CPU."""
from __future__ import annotations

import importlib.metadata as md
import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parent / "example_plugin"

#: a whole spiral recipe small enough to build in milliseconds (recipe tests mutate copies)
TINY_RECIPE = """
seed: 0
data: {type: spiral, n_spirals: 8, n_test: 4, n_observed: 10, n_extrapolate: 5, n_total: 40}
encoder: {type: gru, hidden_size: 4}
dynamics: {type: mlp, hidden_size: 4}
solver: {type: rk4, step_size: 0.5}
decoder: {type: mlp, hidden_size: 4}
model: {latent_dim: 2}
train: {steps: 1, batch_size: 4}
"""


def tiny_recipe() -> dict:
    """A fresh tree of :data:`TINY_RECIPE`."""
    import yaml

    return yaml.safe_load(TINY_RECIPE)

#: overrides that make a spiral run tiny
TINY_SPIRAL = ["data.n_spirals=16", "data.n_test=8", "train.batch_size=8", "train.threads=1",
               "train.eval_items=8", "train.plot=false"]


def _put_example_plugin_on_the_path() -> None:
    """Makes the example third-party distribution visible without ``pip install``: its package
    on ``sys.path`` and a ``*.dist-info`` declaring its entry point, exactly what an install
    would leave, also for subprocesses (PYTHONPATH). So the README's test command runs every
    test after the README's install alone. An installed copy is left as it is."""
    try:
        md.distribution("odepipe-example")
        return
    except md.PackageNotFoundError:
        pass
    site = Path(tempfile.mkdtemp(prefix="odepipe-example-site-"))
    info = site / "odepipe_example-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: odepipe-example\n"
                                   "Version: 0.1.0\n")
    (info / "entry_points.txt").write_text("[odepipe]\nexample = odepipe_example.plugin\n")
    paths = [str(site), str(EXAMPLE)]
    sys.path[:0] = paths
    os.environ["PYTHONPATH"] = os.pathsep.join(
        paths + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


_put_example_plugin_on_the_path()


@pytest.fixture
def example_plugin():
    """The example distribution's hook module (``odepipe_example.plugin``)."""
    import importlib

    return importlib.import_module("odepipe_example.plugin")


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def host():
    """A fresh plugin host with the built-ins only (no entry points)."""
    from odepipe.host import PluginHost

    return PluginHost(entry_points=False)


@pytest.fixture
def plugin_env(monkeypatch):
    """No plugin env vars from the caller's shell, and no plugin host or warning cached from
    another test: each plugin test sees a fresh load."""
    for name in ("ODEPIPE_STRICT_PLUGINS", "ODEPIPE_DISABLE_PLUGINS", "ODEPIPE_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    yield
