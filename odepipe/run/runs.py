"""Opening a finished (or interrupted) run folder for use: recipe, data source and model."""
from __future__ import annotations

import json
import os
from typing import Optional, Tuple

import torch

from ..errors import CheckpointError, DataError
from ..host import PluginHost
from ..pipeline import Pipeline
from ..recipe import Recipe, load_recipe
from ..stages import DataSource
from . import rundir
from .build import build
from .checkpoint import load_checkpoint


def load_run(run_dir: str, device: Optional[str] = None, host: Optional[PluginHost] = None
             ) -> Tuple[Recipe, DataSource, Pipeline]:
    """The run's resolved recipe, its data source and its model with the saved weights, in
    eval mode. Raises CheckpointError naming the folder when it is not a run. ``host``: the
    process's plugin host (a fresh one when None)."""
    recipe_path = os.path.join(run_dir, rundir.RECIPE)
    ckpt_path = os.path.join(run_dir, rundir.CHECKPOINT)
    if not os.path.isfile(recipe_path) or not os.path.isfile(ckpt_path):
        raise CheckpointError(f"{run_dir} is not an odepipe run folder (it needs {rundir.RECIPE} "
                              f"and {rundir.CHECKPOINT}); train one with `odepipe run RECIPE`")
    recipe = load_recipe(recipe_path, host=host)
    data, model = build(recipe)
    state = load_checkpoint(ckpt_path)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint in {run_dir} does not fit its recipe: {exc}") from None
    _check_data_state(run_dir, data)
    target = torch.device(device) if device else torch.device("cpu")
    return recipe, data, model.to(target).eval()


def _check_data_state(run_dir: str, data: DataSource) -> None:
    """Refuses a run whose data changed since training (its normalization or tokenizer would
    differ from the one the model learned)."""
    path = os.path.join(run_dir, rundir.SUMMARY)
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        recorded = json.load(f).get("data")
    now = data.state()
    if recorded is not None and {k: recorded.get(k) for k in now} != now:
        raise DataError(
            f"the run in {run_dir} was trained with data preprocessing {recorded}, but its data "
            f"now gives {now}: the data file or training text changed after training. Restore "
            f"it, or train again")
