"""Recipes: finding and reading them (:mod:`.load`), their typed sections and declared ranges
(:mod:`.schema`), validation (:mod:`.validation`) into a resolved :class:`Recipe`
(:mod:`.resolved`)."""

from .load import (
    apply_overrides,
    parse_yaml,
    recipe_name,
    resolve_path,
    shipped_recipes,
)
from .resolved import COMPONENT_SECTIONS, Recipe, ResolvedComponent
from .schema import ModelConfig, TrainConfig
from .validation import SUPPLIED, TOP_LEVEL, load_recipe, validate

__all__ = [
    "COMPONENT_SECTIONS",
    "SUPPLIED",
    "TOP_LEVEL",
    "ModelConfig",
    "Recipe",
    "ResolvedComponent",
    "TrainConfig",
    "apply_overrides",
    "load_recipe",
    "parse_yaml",
    "recipe_name",
    "resolve_path",
    "shipped_recipes",
    "validate",
]
