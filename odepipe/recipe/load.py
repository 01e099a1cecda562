"""Reading recipes: a path or a shipped name -> YAML (safe, with limits) -> ``key.sub=value``
overrides.

Files and override values go through :mod:`.safe_yaml` (no duplicate keys, bounded size, depth
and alias expansion); messages show values through :mod:`.shorten`. A type switch by override
(``encoder=lstm``) is returned beside the tree, never written into it: validation needs to know
which parameters came along from the old type."""

from __future__ import annotations

import copy
import importlib.resources
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple

import yaml

from ..errors import RecipeError
from ..registry import did_you_mean
from . import safe_yaml
from .resolved import COMPONENT_SECTIONS
from .shorten import clip, short

if TYPE_CHECKING:
    from ..host import PluginHost

#: section -> parameter names carried over from the section's old type by a type override
Retyped = Dict[str, Set[str]]


# -- finding and reading -----------------------------------------------------------------------
def shipped_recipes() -> List[str]:
    """Names of the recipes shipped inside the package."""
    files = importlib.resources.files("odepipe.recipes")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def resolve_path(recipe: str, host: Optional["PluginHost"] = None) -> Tuple[str, str]:
    """(text, source) of a recipe given as a path, a shipped recipe's name, or the name of a
    recipe a plugin of ``host`` ships."""
    path = Path(recipe)
    if path.is_dir() and (path / "recipe.yaml").is_file():
        path = path / "recipe.yaml"
    if path.is_file():
        try:
            size = path.stat().st_size
            if size > safe_yaml.MAX_BYTES:  # refused before reading it
                raise RecipeError(
                    [
                        f"{path} is {size} bytes, more than the "
                        f"{safe_yaml.MAX_BYTES} bytes (1 MiB) a recipe may hold; a "
                        f"recipe names settings, data belongs in the files it names"
                    ],
                    str(path),
                )
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise RecipeError([f"cannot read {path}: {exc}"]) from exc
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if name in shipped_recipes() and (
        len(path.parts) == 1 or not path.parent.exists() or path.parent.name == "recipes"
    ):
        text = importlib.resources.files("odepipe.recipes").joinpath(name + ".yaml").read_text()
        return text, f"{name} (shipped)"
    if host is not None and len(path.parts) == 1:
        found = host.recipe_text(name)
        if found is not None:
            return found
    names = shipped_recipes() + sorted(host.recipes() if host is not None else ())
    raise RecipeError(
        [
            f"no recipe file {short(recipe)}{did_you_mean(clip(name), names)}; give "
            f"a path to a YAML file or a shipped or plugin recipe: "
            f"{', '.join(names)}"
        ]
    )


def parse_yaml(text: str, source: str) -> Dict[str, Any]:
    """Safe YAML within :mod:`.safe_yaml`'s limits; a syntax error names its line and column."""
    try:
        data = safe_yaml.load(text)
    except safe_yaml.RecipeYAMLError as exc:
        raise RecipeError([f"YAML: {exc}"], source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise RecipeError([f"YAML syntax error at {where}: {exc.problem or exc}"], source) from None
    except yaml.YAMLError as exc:
        raise RecipeError([f"YAML error: {clip(str(exc), 300)}"], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(
            [f"a recipe must be a mapping of sections, got {type(data).__name__}"], source
        )
    return data


# -- overrides ---------------------------------------------------------------------------------
def apply_overrides(
    raw: Dict[str, Any], overrides: Sequence[str], problems: List[str]
) -> Tuple[Dict[str, Any], Retyped]:
    """Applies ``key.sub=value`` overrides (values read as YAML by :mod:`.safe_yaml`).

    ``encoder=lstm`` is shorthand for a new component type. Returns the tree and, per retyped
    section, the parameters that came from the old type: validation drops those the new type
    does not accept, and still refuses any other unknown parameter."""
    data = copy.deepcopy(raw)
    retyped: Retyped = {}
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            problems.append(
                f"override {short(item)} is not KEY=VALUE (for example train.steps=100)"
            )
            continue
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if not key or any(not p for p in parts):
            problems.append(
                f"override {short(item)} has an empty key part; write e.g. solver.rtol=1e-3"
            )
            continue
        try:
            value = safe_yaml.load(text) if text.strip() else None
        except safe_yaml.RecipeYAMLError as exc:
            problems.append(f"override {short(key + '=')}...: {exc}")
            continue
        except yaml.YAMLError:
            value = text  # a plain string that YAML cannot read, e.g. "a: b: c"
        if len(parts) == 1 and parts[0] in COMPONENT_SECTIONS and isinstance(value, str):
            current = data.get(parts[0])
            old: Dict[str, Any] = current if isinstance(current, dict) else {}
            if old.get("type") != value:
                carried = set(old) - {"type"}
                retyped[parts[0]] = retyped.get(parts[0], set()) | carried
            data[parts[0]] = {**old, "type": value}
            continue
        node = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                if part in node and node[part] is not None:
                    problems.append(
                        f"override {short(item)}: {clip('.'.join(parts[: i + 1]))} is not a mapping"
                    )
                    break
                node[part] = {}
            node = node[part]
        else:
            node[parts[-1]] = value
            if len(parts) == 2 and parts[0] in retyped:
                retyped[parts[0]].discard(parts[1])  # given for the new type: checked as such
    return data, retyped


def recipe_name(recipe: str) -> str:
    """The name a run of ``recipe`` is filed under: the file's stem, or the run folder's."""
    path = Path(recipe)
    if path.is_dir() or path.name == "recipe.yaml":
        parent = path if path.is_dir() else path.parent
        return parent.name.rsplit("-", 2)[0] if parent.name else "recipe"
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    return stem.replace(os.sep, "_") or "recipe"
