"""Where plugins come from: the built-in bundles, the ``odepipe`` entry-point group, and the
modules a recipe names. Finding them imports nothing of theirs."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
import sys
from typing import Any, List, Optional, Sequence, Tuple

from .errors import PluginError

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


def import_installed(module: str, untrusted: Sequence[str]) -> Any:
    """Imports a module a shared run folder's recipe names, only when it is installed: found on
    ``sys.path`` outside the folders in ``untrusted`` (the current folder, the run folder),
    which are never searched for it. Loading someone's run folder must not run code it
    carries."""
    import importlib.machinery

    if module in sys.modules:
        return sys.modules[module]
    outside = [os.path.realpath(p) for p in untrusted]
    search = [p for p in sys.path if p and os.path.realpath(p) not in outside]
    spec = importlib.machinery.PathFinder.find_spec(module.split(".")[0], search)
    origin = getattr(spec, "origin", None) or ""
    if spec is None or any(os.path.realpath(origin).startswith(o + os.sep) for o in outside):
        raise PluginError(
            f"module {module!r} is not installed; it would be imported from a folder you are "
            f"loading or standing in, which runs its code. Install the plugin, or pass "
            f"`odepipe --allow-plugins ...` if you trust that folder"
        )
    return importlib.import_module(module)


def import_local(module: str) -> Any:
    """Imports a module a recipe names; the current directory is searched too, because the
    ``odepipe`` console script does not put it on ``sys.path`` as ``python -m`` does."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
        importlib.invalidate_caches()
    return importlib.import_module(module)
