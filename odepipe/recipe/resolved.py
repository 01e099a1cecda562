"""A validated recipe: for every component section, the class, the plugin that gave it and
the bound parameters; the typed ``model`` and ``train`` sections. ``build()`` uses these
directly, so a recipe is resolved once."""

from __future__ import annotations

import builtins
import dataclasses
from typing import Any, Dict, List

import yaml

from ..registry import KINDS
from .schema import ModelConfig, TrainConfig

#: recipe sections that name a registered component with ``type:``
COMPONENT_SECTIONS = tuple(section for _, section in KINDS.values())


@dataclasses.dataclass(frozen=True)
class ResolvedComponent:
    """One component section: ``type`` as written, the class and plugin it resolved to, and
    every constructor parameter (defaults filled in)."""

    section: str
    type: str
    cls: builtins.type  # `type` is the field above inside this class body
    plugin: str
    params: Dict[str, Any]


@dataclasses.dataclass
class Recipe:
    """A validated recipe."""

    name: str
    seed: int
    plugins: List[str]
    components: Dict[str, ResolvedComponent]
    model: ModelConfig
    train: TrainConfig
    source: str = "<recipe>"

    def to_dict(self) -> Dict[str, Any]:
        """The resolved recipe, every default written out, so it repeats the run exactly."""
        out: Dict[str, Any] = {"seed": self.seed}
        if self.plugins:
            out["plugins"] = list(self.plugins)
        for section in COMPONENT_SECTIONS:
            component = self.components[section]
            out[section] = {"type": component.type, **component.params}
        out["model"] = dataclasses.asdict(self.model)
        out["train"] = dataclasses.asdict(self.train)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
