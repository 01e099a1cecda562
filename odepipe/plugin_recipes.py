"""Recipes that plugins ship (``odepipe_register_recipes``): checked when the plugin loads, so a
clash or a missing file skips the plugin whole, like any other registration."""

from __future__ import annotations

import os
from typing import Any, Dict, List

from .errors import RegistryError
from .registry import valid_name


def read_recipe(plugin: str, name: str, path_or_text: Any) -> str:
    """The YAML text of a registered recipe: ``path_or_text`` is a path (``os.PathLike``, a
    Traversable from ``importlib.resources``, or a ``str`` without a newline) or the text."""
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        return path_or_text
    if not isinstance(path_or_text, (str, os.PathLike)) and hasattr(path_or_text, "read_text"):
        return path_or_text.read_text(encoding="utf-8")  # importlib.resources Traversable
    if not isinstance(path_or_text, (str, os.PathLike)):
        raise RegistryError(
            f"plugin '{plugin}' registered recipe {name!r} as "
            f"{type(path_or_text).__name__}; give a path to a YAML file or the "
            f"YAML text"
        )
    try:
        with open(path_or_text, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(
            f"plugin '{plugin}' registered recipe {name!r} from {path_or_text}, "
            f"which cannot be read ({exc}); ship the file as package data and "
            f"register Path(__file__).parent / 'name.yaml'"
        ) from exc


class RecipeCollector:
    """What ``odepipe_register_recipes(register)`` calls: checks each recipe (name, no clash
    with a shipped recipe, another plugin's or its own) and collects its text.

    Args:
        plugin: the registering plugin's name.
        offered: the plugin's ``PluginInfo.offered``; names are recorded there first.
        taken: recipe name -> plugin, for recipes other plugins already gave.
    """

    def __init__(self, plugin: str, offered: Dict[str, List[str]], taken: Dict[str, str]):
        self.plugin, self.offered, self.taken = plugin, offered, taken
        self.recipes: Dict[str, str] = {}

    def register(self, name: str, path_or_text: Any) -> None:
        from .recipe.load import shipped_recipes

        if isinstance(name, str):
            self.offered.setdefault("recipes", []).append(name)
        if not valid_name(name):
            raise RegistryError(
                f"plugin '{self.plugin}' registered recipe name {name!r}: names "
                f"must be non-empty strings of letters, digits, '_' or '-'"
            )
        if name in shipped_recipes():
            raise RegistryError(
                f"recipe {name!r} is already a recipe shipped with odepipe; a "
                f"plugin may not replace it; rename the recipe"
            )
        if name in self.taken:
            raise RegistryError(
                f"recipe {name!r} is registered twice: by plugin "
                f"'{self.taken[name]}' and by plugin '{self.plugin}'; rename one "
                f"of them"
            )
        if name in self.recipes:
            raise RegistryError(
                f"plugin '{self.plugin}' registered recipe {name!r} twice; register each name once"
            )
        self.recipes[name] = read_recipe(self.plugin, name, path_or_text)
