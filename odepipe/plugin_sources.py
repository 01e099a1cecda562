"""Where plugins come from: the built-in bundles, the ``odepipe`` entry-point group, and the
modules a recipe names. Finding them imports nothing of theirs."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
import sys
from typing import Any, List, Optional, Tuple

#: the built-in feature bundles, registered through the same hooks as a third party's
BUILTIN_PLUGINS: Tuple[str, ...] = (
    "odepipe_plugins.latent_ode",
    "odepipe_plugins.series",
    "odepipe_plugins.irregular",
    "odepipe_plugins.text",
    "odepipe_plugins.depth",
)

ENTRY_POINT_GROUP = "odepipe"


def normalize(name: str) -> str:
    """PEP 503 name normalisation: 'Odepipe_Example' and 'odepipe-example' are one name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version(dist: str) -> Optional[str]:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def entry_points() -> List[Tuple[md.EntryPoint, Optional[str], Optional[str]]]:
    """(entry point, distribution name, version) for the ``odepipe`` group, one distribution
    once even when it is visible twice on an odd ``sys.path`` (the first copy wins, as imports
    do)."""
    seen: set = set()
    found: List[Tuple[md.EntryPoint, Optional[str], Optional[str]]] = []
    for dist in md.distributions():
        try:
            name = dist.metadata["Name"]
            eps = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        except Exception:  # a broken *.dist-info must not break odepipe either
            continue
        if not eps or not name or normalize(name) in seen:
            continue
        seen.add(normalize(name))
        found.extend((ep, name, dist.version) for ep in eps)
    return found


def import_local(module: str) -> Any:
    """Imports a module a recipe names; the current directory is searched too, because the
    ``odepipe`` console script does not put it on ``sys.path`` as ``python -m`` does."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
        importlib.invalidate_caches()
    return importlib.import_module(module)
