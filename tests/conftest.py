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
