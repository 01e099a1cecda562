"""Shared fixtures: tiny, deterministic settings so every test runs in seconds on a CPU."""
from __future__ import annotations

import pytest
import torch

#: overrides that make a spiral run tiny
TINY_SPIRAL = ["data.n_spirals=16", "data.n_test=8", "train.batch_size=8", "train.threads=1",
               "train.eval_items=8", "train.plot=false"]


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def host():
    """A fresh plugin host with the built-ins only (no entry points)."""
    from odepipe.plugins import PluginHost

    return PluginHost(entry_points=False)


@pytest.fixture
def plugin_env(monkeypatch):
    """No plugin env vars from the caller's shell, and no plugin host or warning cached from
    another test: each plugin test sees a fresh load."""
    from odepipe import plugins as plugins_module
    from odepipe.plugins import load_plugins

    for name in ("ODEPIPE_STRICT_PLUGINS", "ODEPIPE_DISABLE_PLUGINS", "ODEPIPE_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    load_plugins.cache_clear()
    plugins_module._WARNED.clear()
    yield
    load_plugins.cache_clear()
