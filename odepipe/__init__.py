"""odepipe: Neural ODE models (latent ODE VAEs) a recipe and a command away.

The public API for users and plugin authors. Names that need torch are imported on first use
(PEP 562), so ``import odepipe`` and ``odepipe --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

import pluggy

from .errors import (
    CheckpointError,
    DataError,
    ModelError,
    NumericalError,
    OdepipeError,
    PluginError,
    RecipeError,
    RegistryError,
    SolverError,
)

__version__ = "0.1.0"

from .hookspecs import Register

#: decorator marking a plugin's hook implementations
hookimpl = pluggy.HookimplMarker("odepipe")

_LAZY = {
    "Batch": "stages",
    "Posterior": "stages",
    "Encoder": "stages",
    "Dynamics": "stages",
    "Solver": "stages",
    "Decoder": "stages",
    "DataSource": "stages",
    "Pipeline": "pipeline",
    "Output": "pipeline",
    "Loss": "pipeline",
    "PluginHost": "host",
    "pyplot": "plotting",
    "PLUGIN_API": "hookspecs",
    "Recipe": "recipe",
    "load_recipe": "recipe",
    "validate": "recipe",
    "Range": "recipe.ranges",
    "checked": "recipe.ranges",
    "Width": "recipe.ranges",
    "Depth": "recipe.ranges",
    "build": "run.build",
    "train": "run.train",
    "pick_device": "run.train",
    "load_run": "run.folder",
    "Run": "run.folder",
    "Capability": "capabilities",
    "SentenceSource": "capabilities",
    "GrammaticalityJudge": "capabilities",
    "TokenDecoder": "capabilities",
    "BeamSearchDecoder": "capabilities",
    "SeriesCodecSource": "capabilities",
    "require_capability": "capabilities",
    "ItemLengths": "run.batches",
}

__all__ = [
    "__version__",
    "hookimpl",
    "Register",
    *_LAZY,
    "OdepipeError",
    "RecipeError",
    "RegistryError",
    "PluginError",
    "CheckpointError",
    "DataError",
    "ModelError",
    "NumericalError",
    "SolverError",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'odepipe' has no attribute {name!r}")
