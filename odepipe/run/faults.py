"""The message of a training run that met a NaN or an Inf: the step, what became non-finite,
whether a checkpoint exists and where, and the recipe keys involved (a non-finite setting is
named first: it is the cause, not the learning rate)."""

from __future__ import annotations

import math
from typing import Any, Iterator, Optional, Tuple

import torch

from ..errors import NumericalError
from ..recipe import Recipe
from .folder import Run


def _non_finite_settings(tree: Any, prefix: str = "") -> Iterator[Tuple[str, float]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _non_finite_settings(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, float) and not math.isfinite(tree):
        yield prefix, tree


class NonFinite:
    """Checks tensors for NaN/Inf during training and words the error."""

    def __init__(self, recipe: Recipe, run: Run):
        self.recipe, self.run = recipe, run
        #: step of the checkpoint on disk that this run wrote or resumed from (None: none yet)
        self.checkpoint_step: Optional[int] = None

    def check(self, step: int, what: str, value: torch.Tensor) -> None:
        if not torch.isfinite(value).all():
            raise self.error(step, what)

    def error(self, step: int, what: str) -> NumericalError:
        return NumericalError(
            f"{what} became NaN or Inf at step {step}. {self._checkpoint_state()} {self._keys()}"
        )

    def _checkpoint_state(self) -> str:
        if self.checkpoint_step is None:
            every = self.recipe.train.checkpoint_every
            return (
                f"No checkpoint was written yet (train.checkpoint_every={every}), so there "
                f"is nothing to resume."
            )
        return (
            f"The last good checkpoint (step {self.checkpoint_step}) is kept in "
            f"{self.run.checkpoint_path}."
        )

    def _keys(self) -> str:
        bad = list(_non_finite_settings(self.recipe.to_dict()))
        if bad:
            listed = ", ".join(f"{k}={v}" for k, v in bad)
            return f"The recipe sets {listed}: give finite values and run again."
        cfg = self.recipe.train
        solver = self.recipe.components["solver"].params
        tolerances = [
            f"solver.{k}={solver[k]}" for k in ("rtol", "atol", "step_size") if k in solver
        ]
        hint = f", or tighter solver settings ({', '.join(tolerances)})" if tolerances else ""
        resume = (
            f" (or --resume {self.run.path} with the change, from step {self.checkpoint_step})"
            if self.checkpoint_step is not None
            else ""
        )
        return (
            f"Keys involved: try a smaller train.lr (now {cfg.lr:g}), "
            f"train.grad_clip=1.0 (now {cfg.grad_clip}){hint}; then run again with "
            f"--overwrite{resume}."
        )
