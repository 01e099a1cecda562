"""What may change when a run is resumed: training settings (``train.*``: more steps, another
learning rate or time limit) but not what the weights were built for (architecture, data,
seed). A difference is reported key by key, instead of a state_dict traceback."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Tuple

import yaml

from ..errors import RecipeError

#: top-level recipe sections that may differ between a run and its resumption
CHANGEABLE = ("train",)


def _flatten(tree: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, tree


def differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[Tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every key both trees have with different values,
    and every section or ``type`` present in one tree only (keys a newer odepipe added with a
    default are not differences)."""
    a, b = dict(_flatten(old)), dict(_flatten(new))
    out = [(k, a[k], b[k]) for k in a if k in b and a[k] != b[k]]
    for key in sorted(set(a) ^ set(b)):
        if "." not in key or key.endswith(".type"):
            out.append((key, a.get(key), b.get(key)))
    return out


def check_resumable(
    run_recipe: str, recipe_yaml: str, run_dir: str, source: str
) -> List[Tuple[str, Any, Any]]:
    """Compares the recipe a checkpoint was trained with (YAML text) with the one given to
    resume it. Returns the allowed (training) changes; raises RecipeError listing the others."""
    old = yaml.safe_load(run_recipe) or {}
    new = yaml.safe_load(recipe_yaml) or {}
    changes = differences(old, new)
    refused = [c for c in changes if c[0].split(".")[0] not in CHANGEABLE]
    if refused:
        problems = [f"{key} is {a!r} in the run but {b!r} here" for key, a, b in refused]
        problems.append(
            f"--resume {run_dir} continues the weights it holds, so only train.* "
            f"settings may change; drop these overrides, or start a new run with "
            f"--out NEW_FOLDER"
        )
        raise RecipeError(problems, source)
    return changes
