"""Opening a finished (or interrupted) run folder for use: recipe, data source and model."""
from __future__ import annotations

import os
from typing import Optional, Tuple

import torch

from . import rundir
from .build import build
from .checkpoint import load_checkpoint
from .errors import CheckpointError
from .pipeline import Pipeline
from .plugins import load_plugins
from .recipe import Recipe, load_recipe
from .stages import DataSource


def load_run(run_dir: str, device: Optional[str] = None) -> Tuple[Recipe, DataSource, Pipeline]:
    """The run's resolved recipe, its data source and its model with the saved weights, in
    eval mode. Raises CheckpointError naming the folder when it is not a run."""
    recipe_path = os.path.join(run_dir, rundir.RECIPE)
    ckpt_path = os.path.join(run_dir, rundir.CHECKPOINT)
    if not os.path.isfile(recipe_path) or not os.path.isfile(ckpt_path):
        raise CheckpointError(f"{run_dir} is not an odepipe run folder (it needs {rundir.RECIPE} "
                              f"and {rundir.CHECKPOINT}); train one with `odepipe run RECIPE`")
    recipe = load_recipe(recipe_path)
    data, model = build(recipe, load_plugins(tuple(recipe.plugins)))
    state = load_checkpoint(ckpt_path)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint in {run_dir} does not fit its recipe: {exc}") from None
    target = torch.device(device) if device else torch.device("cpu")
    return recipe, data, model.to(target).eval()
