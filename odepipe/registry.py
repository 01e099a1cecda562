"""One registry per component kind: names -> classes, with the plugin that gave each.

Lookups of unknown names answer with "did you mean" and every valid name; a duplicate name is
refused naming both plugins; a class that does not subclass its stage base is refused.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Dict, Iterator, List, Optional

from .errors import RegistryError

#: registry kind -> (name of the stage base class in odepipe.stages, recipe section)
KINDS = {
    "encoders": ("Encoder", "encoder"),
    "dynamics": ("Dynamics", "dynamics"),
    "solvers": ("Solver", "solver"),
    "decoders": ("Decoder", "decoder"),
    "data_sources": ("DataSource", "data"),
}


def did_you_mean(word: str, options: List[str]) -> str:
    """A ' (did you mean 'x'?)' suffix when a close match exists, else ''."""
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclasses.dataclass(frozen=True)
class Component:
    """A registered component: its name, class, the plugin that registered it, and help."""

    kind: str
    name: str
    cls: type
    plugin: str
    help: str


class Registry:
    """Components of one kind. Read by recipes and the CLI; written only through plugin hooks."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}")
        self.kind = kind
        self._items: Dict[str, Component] = {}

    @property
    def base(self) -> type:
        """The stage base class; imported on first use because it needs torch."""
        from . import stages

        return getattr(stages, KINDS[self.kind][0])

    def check(self, name: object, cls: object, plugin: str) -> Component:
        """Validates one registration without adding it; returns the Component it would add."""
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise RegistryError(
                f"plugin '{plugin}' registered {self.kind[:-1] if self.kind.endswith('s') else self.kind} "
                f"name {name!r}: names must be non-empty strings of letters, digits, '_' or '-'")
        if not (inspect.isclass(cls) and issubclass(cls, self.base)):
            raise RegistryError(
                f"plugin '{plugin}' registered {name!r} as {self.kind}, but {cls!r} is not a "
                f"subclass of odepipe.{self.base.__name__}; derive it from odepipe."
                f"{self.base.__name__}")
        if name in self._items:
            other = self._items[name].plugin
            raise RegistryError(
                f"{self.kind} name {name!r} is registered twice: by plugin '{other}' and by "
                f"plugin '{plugin}'; rename one of them")
        doc = (inspect.getdoc(cls) or "").strip().splitlines()
        return Component(self.kind, name, cls, plugin, doc[0] if doc else "")

    def add(self, component: Component) -> None:
        self.check(component.name, component.cls, component.plugin)
        self._items[component.name] = component

    def get(self, name: str, key: Optional[str] = None) -> Component:
        """The component called ``name``; an unknown name raises with the valid names."""
        if name in self._items:
            return self._items[name]
        where = f"{key}: " if key else ""
        raise RegistryError(
            f"{where}unknown {self.kind} type {name!r}{did_you_mean(name, self.names())}; "
            f"valid: {', '.join(self.names())}")

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
