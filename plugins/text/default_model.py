"""Where the default sentence model is, and in what state: what ``interpolate-sentences`` uses
without ``--run`` and what ``odepipe models`` shows.

Why shipped: a user's first ``interpolate-sentences`` call must answer in seconds with a model
of real English, not train a toy one for minutes. The package carries a run folder of
``recipes/sentences_default.yaml`` (weights stored as float16, the tokenizer in ``data/``) under
``odepipe_plugins/text/pretrained/``; loading restores the tokenizer from ``data/`` and reads
no corpus. A model the user trained into ``<cache>/models/sentences_default`` (``odepipe run
sentences_default --out ...``) takes precedence, so the default can be retrained in place.

Torch-free: imported by the commands, which every command line imports.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
from typing import Any, Dict, Optional

import odepipe

from .cache import cache_root

NAME = "sentences_default"
RECIPE = "sentences_default"


@dataclasses.dataclass
class DefaultModel:
    """The default text model: its folder and state (``shipped``, ``user-trained`` or
    ``missing``)."""

    path: str
    state: str

    @property
    def usable(self) -> bool:
        return self.state != "missing"

    def summary(self) -> Dict[str, Any]:
        """The run's summary.json (empty when missing or unreadable)."""
        try:
            with open(os.path.join(self.path, "summary.json"), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def shipped_path() -> str:
    """The run folder inside the installed package."""
    return str(
        importlib.resources.files("odepipe_plugins.text").joinpath("pretrained").joinpath(NAME)
    )


def user_path() -> str:
    """Where a user-trained default lives: ``<cache>/models/sentences_default``."""
    return os.path.join(cache_root(), "models", NAME)


def _complete(path: str) -> bool:
    return os.path.isdir(path) and odepipe.Run(path).is_complete()


def locate() -> DefaultModel:
    """The user-trained model if there is a finished one, else the shipped one, else
    ``missing`` (at the shipped location)."""
    if _complete(user_path()):
        return DefaultModel(user_path(), "user-trained")
    shipped = shipped_path()
    return DefaultModel(shipped, "shipped" if _complete(shipped) else "missing")


def require() -> str:
    """The default model's folder, or a DataError saying how to get one."""
    model = locate()
    if model.usable:
        return model.path
    raise odepipe.DataError(
        f"the default sentence model is missing from this install (looked in {user_path()} "
        f"and {model.path}). Reinstall odepipe, pass --run DIR with a text run of your own, or "
        f"train the default yourself: pip install 'odepipe[english]' && odepipe run "
        f"{RECIPE} --out {user_path()}"
    )


def describe(model: Optional[DefaultModel] = None) -> Dict[str, Any]:
    """What ``odepipe models`` prints: name, state, folder, recipe and the test figures."""
    model = model or locate()
    summary = model.summary()
    keys = (
        "test_nll_iw10",
        "test_kl",
        "test_active_units",
        "test_ppl_word_iw10",
        "steps",
        "seconds",
    )
    return {
        "name": NAME,
        "kind": "text (interpolate-sentences, sample)",
        "state": model.state,
        "path": model.path,
        "recipe": RECIPE,
        "user_path": user_path(),
        "figures": {k: summary[k] for k in keys if k in summary},
    }
