"""Turns a resolved Recipe into live objects: the data source and the Pipeline.

Constructors may still refuse values (ranges a signature cannot express); those refusals are
collected across all stages and reported together as one RecipeError.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Tuple

from ..errors import CheckpointError, OdepipeError, RecipeError
from ..pipeline import Pipeline
from ..recipe import Recipe
from ..stages import DataSource


def _construct(
    section: str, recipe: Recipe, supplied: Dict[str, Any], problems: List[str]
) -> Optional[Any]:
    component = recipe.components[section]
    cls: Any = component.cls
    accepted = inspect.signature(cls.__init__).parameters
    extra = {k: v for k, v in supplied.items() if k in accepted}
    try:
        return component.cls(**component.params, **extra)
    except OdepipeError as exc:
        problems.append(f"{section} ({component.type}): {exc}")
    except (TypeError, ValueError, RuntimeError) as exc:
        problems.append(f"{section} ({component.type}) rejected its parameters: {exc}")
    return None


def _build_stages(recipe: Recipe, dims: Dict[str, int], problems: List[str]) -> Dict[str, Any]:
    supplied = {"latent_dim": recipe.model.latent_dim, **dims}
    return {
        s: _construct(s, recipe, supplied, problems)
        for s in ("encoder", "dynamics", "solver", "decoder")
    }


def build_pipeline(recipe: Recipe, dims: Dict[str, int]) -> Pipeline:
    """Builds every stage (collecting all refusals), then the Pipeline."""
    problems: List[str] = []
    stages = _build_stages(recipe, dims, problems)
    if problems:
        raise RecipeError(problems, recipe.source)
    return Pipeline(
        latent_dim=recipe.model.latent_dim, variational=recipe.model.variational, **stages
    )


def build(recipe: Recipe, restore: Optional[str] = None) -> Tuple[DataSource, Pipeline]:
    """Data source and pipeline, checked against each other on a two-item batch.

    With ``restore`` (a run's ``data/`` folder, for inference), the data source reads what it
    saved there (``DataSource.restore``) instead of its data, and the pipeline is built from
    ``dims()`` alone: the two-item check, which needs the data, is skipped.

    When the data source refuses its parameters, the stages are still built with stand-in
    sizes (both ``obs_dim`` and ``vocab_size``, so series and text stages alike construct) and
    their own refusals are reported in the same message."""
    problems: List[str] = []
    data = _construct("data", recipe, {"seed": recipe.seed}, problems)
    if data is None:
        _build_stages(recipe, {"obs_dim": 1, "vocab_size": 8}, problems)
        raise RecipeError(problems, recipe.source)
    if restore is not None:
        try:
            data.restore(restore)
        except OSError as exc:
            raise CheckpointError(
                f"cannot read the run's data state in {restore}: "
                f"{exc.strerror or exc}; train the run again"
            ) from exc
        return data, build_pipeline(recipe, _checked_dims(recipe, data))
    model = build_pipeline(recipe, _checked_dims(recipe, data))
    items = data.dataset("train")
    model.check(data.collate([items[i] for i in range(min(2, len(items)))]))
    return data, model


def _checked_dims(recipe: Recipe, data: DataSource) -> Dict[str, int]:
    """The data source's sizes, once its kind of data (series or tokens, known from them) is
    checked against what every stage supports."""
    from ..supports import data_kind, support_problems

    dims = data.dims()
    problems = support_problems(recipe.components, kind=data_kind(dims))
    if problems:
        raise RecipeError(problems, recipe.source)
    return dims
