"""One registry per component kind: names -> classes, with the plugin that gave each.

Lookups of unknown names answer with "did you mean" and every valid name; a duplicate name is
refused naming both plugins; a class that does not subclass its stage base is refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.util
import inspect
import sys
from typing import Any, Dict, Iterator, List, Optional

from .errors import RegistryError

#: registry kind -> (name of the stage base class in odepipe.stages, recipe section)
KINDS = {
    "encoders": ("Encoder", "encoder"),
    "dynamics": ("Dynamics", "dynamics"),
    "solvers": ("Solver", "solver"),
    "decoders": ("Decoder", "decoder"),
    "data_sources": ("DataSource", "data"),
}


def valid_name(name: object) -> bool:
    """Component and recipe names: non-empty strings of letters, digits, '_' or '-'."""
    return isinstance(name, str) and bool(name) and name.replace("_", "").replace("-", "").isalnum()


def did_you_mean(word: str, options: List[str]) -> str:
    """A ' (did you mean 'x'?)' suffix when a close match exists, else ''."""
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclasses.dataclass(frozen=True)
class Component:
    """A registered component: its name, the class (or a ``"module:Class"`` reference to it,
    imported on first use), the plugin that registered it, and a one-line help.

    References keep start-up and unrelated runs free of a component's imports: a spiral run
    never imports the text bundle's modules, ``odepipe --help`` never imports torch."""

    kind: str
    name: str
    target: Any
    plugin: str
    given_help: str = ""
    #: "plugin (distribution version)", set by the host, for error messages
    origin: str = ""

    @functools.cached_property
    def cls(self) -> type:
        """The class; a reference is imported and checked against the stage base here.

        A reference whose module raises on import (even ``SystemExit``), lacks the attribute,
        or names a class of the wrong kind is one RegistryError naming the component and its
        plugin (exit code 2, no traceback; ``odepipe --traceback`` shows the plugin's)."""
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (Exception, SystemExit) as exc:  # a broken plugin module: say who needed it
            raise RegistryError(
                f"{self.kind} {self.name!r} of plugin '{self.origin or self.plugin}' could not "
                f"be imported from {self.target}: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())}"
            ) from exc
        _check_class(self.kind, self.name, cls, self.origin or self.plugin)
        return cls

    @property
    def help(self) -> str:
        """The given help, else the first line of the class docstring; a reference that cannot
        be imported says so here instead of failing a whole listing."""
        if self.given_help:
            return self.given_help
        try:
            cls = self.cls
        except RegistryError as exc:
            return f"(unusable: {exc})"
        doc = (inspect.getdoc(cls) or "").strip().splitlines()
        return doc[0] if doc else ""


def _check_class(kind: str, name: str, cls: object, plugin: str) -> None:
    base = KINDS[kind][0]
    # A class can derive from a stage base only once odepipe.stages is imported: until then
    # every class is refused without importing torch just to say so.
    stages = sys.modules.get("odepipe.stages")
    if not (inspect.isclass(cls) and stages is not None and issubclass(cls, getattr(stages, base))):
        raise RegistryError(
            f"plugin '{plugin}' registered {name!r} as {kind}, but {cls!r} is not a "
            f"subclass of odepipe.{base}; derive it from odepipe.{base}"
        )


def _check_reference(kind: str, name: str, target: str, plugin: str) -> None:
    """A ``"module:Class"`` reference names a module that exists (found without importing
    it, so loading plugins stays cheap) and an attribute."""
    module, sep, attr = target.partition(":")
    if not (sep and module and attr.isidentifier()):
        raise RegistryError(
            f"plugin '{plugin}' registered {kind} {name!r} as {target!r}; a "
            f"reference must read 'package.module:ClassName'"
        )
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        found, why = None, f": {exc}"
    else:
        why = ""
    if found is None:
        raise RegistryError(
            f"plugin '{plugin}' registered {kind} {name!r} from module "
            f"{module!r}, which cannot be found{why}"
        )


class Registry:
    """Components of one kind. Read by recipes and the CLI; written only through plugin hooks."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}")
        self.kind = kind
        self._items: Dict[str, Component] = {}

    def check(self, name: object, cls: object, plugin: str, help: str = "") -> Component:
        """Validates one registration without adding it; returns the Component it would add."""
        if not valid_name(name):
            singular = self.kind[:-1] if self.kind.endswith("s") else self.kind
            raise RegistryError(
                f"plugin '{plugin}' registered {singular} "
                f"name {name!r}: names must be non-empty strings of letters, digits, '_' or '-'"
            )
        assert isinstance(name, str)  # valid_name refused anything else
        if isinstance(cls, str):
            _check_reference(self.kind, name, cls, plugin)
        else:
            _check_class(self.kind, name, cls, plugin)
        if name in self._items:
            other = self._items[name].plugin
            raise RegistryError(
                f"{self.kind} name {name!r} is registered twice: by plugin '{other}' and by "
                f"plugin '{plugin}'; rename one of them"
            )
        return Component(self.kind, name, cls, plugin, help)

    def add(self, component: Component) -> None:
        if component.name in self._items:
            self.check(component.name, component.target, component.plugin)  # raises
        self._items[component.name] = component

    def get(self, name: str, key: Optional[str] = None) -> Component:
        """The component called ``name``; an unknown name raises with the valid names."""
        if name in self._items:
            return self._items[name]
        where = f"{key}: " if key else ""
        raise RegistryError(
            f"{where}unknown {self.kind} type {name!r}{did_you_mean(name, self.names())}; "
            f"valid: {', '.join(self.names())}"
        )

    def names(self) -> List[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Component]:
        return iter(self._items[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._items)


class Registries:
    """All registries of one plugin-manager load, by kind."""

    def __init__(self) -> None:
        self.by_kind: Dict[str, Registry] = {k: Registry(k) for k in KINDS}

    def __getitem__(self, kind: str) -> Registry:
        return self.by_kind[kind]

    def for_section(self, section: str) -> Registry:
        """The registry behind a recipe section (``encoder`` -> encoders)."""
        for kind, (_, sec) in KINDS.items():
            if sec == section:
                return self.by_kind[kind]
        raise KeyError(section)
