"""Which kind of data each component works on: series (``Batch.values``) or tokens
(``Batch.tokens``).

Every stage base declares ``supports = ("series", "tokens")``; a component that works on one
kind only narrows it (``supports = ("series",)``). A component that keeps the default but whose
constructor *requires* ``obs_dim`` (no default) is taken to be series-only, one that requires
``vocab_size`` tokens-only: such a class could not even be built for the other kind. A data
source's ``supports`` is the kind of batches it gives; when it keeps both, the kind is known
only from its ``dims()`` once it is built.

:func:`support_problems` turns a mismatch into recipe problems ("encoder.type: ... supports
series data only, but data type 'text' gives tokens; ...") before anything is built.
"""

from __future__ import annotations

import inspect
from typing import Any, List, Mapping, Optional, Tuple

SERIES, TOKENS = "series", "tokens"
DATA_KINDS: Tuple[str, ...] = (SERIES, TOKENS)
#: the constructor argument that only a component of that kind of data can require
_SIZE_ARG = {SERIES: "obs_dim", TOKENS: "vocab_size"}
STAGE_SECTIONS = ("encoder", "dynamics", "solver", "decoder")


def _declared(cls: type) -> Optional[Tuple[str, ...]]:
    """``supports`` when a class (or a non-odepipe ancestor) sets it, else None."""
    for klass in inspect.getmro(cls):
        if "supports" in vars(klass):
            if klass.__module__ == "odepipe.stages":
                return None
            value = vars(klass)["supports"]
            kinds = (value,) if isinstance(value, str) else tuple(value)
            unknown = [k for k in kinds if k not in DATA_KINDS]
            if unknown or not kinds:
                raise TypeError(
                    f"{cls.__qualname__}.supports = {value!r}: use a tuple of "
                    f"{', '.join(map(repr, DATA_KINDS))}"
                )
            return kinds
    return None


def supported(cls: type) -> Tuple[str, ...]:
    """The kinds of data ``cls`` works on: its declared ``supports``, else inferred from a
    required ``obs_dim`` or ``vocab_size`` constructor argument, else both."""
    declared = _declared(cls)
    if declared is not None:
        return declared
    try:
        params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    except (TypeError, ValueError):
        return DATA_KINDS
    required = [
        kind
        for kind, arg in _SIZE_ARG.items()
        if arg in params and params[arg].default is inspect.Parameter.empty
    ]
    return tuple(required) if len(required) == 1 else DATA_KINDS


def data_kind(dims: Mapping[str, int]) -> Optional[str]:
    """The kind a built data source gives, from its ``dims()``."""
    if "vocab_size" in dims:
        return TOKENS
    return SERIES if "obs_dim" in dims else None


def _alternatives(section: str, kind: str, registries: Any) -> List[str]:
    """Registered types of ``section`` that support ``kind`` (types whose module cannot be
    imported are left out)."""
    from .errors import RegistryError

    names = []
    for component in registries.for_section(section):
        try:
            if kind in supported(component.cls):
                names.append(component.name)
        except (RegistryError, TypeError):
            continue
    return names


def support_problems(
    components: Mapping[str, Any], registries: Any = None, kind: Optional[str] = None
) -> List[str]:
    """Recipe problems for stages that do not support the data's kind.

    Args:
        components: recipe section -> an object with ``.type`` and ``.cls`` (a
            ``ResolvedComponent``); the ``data`` entry gives the kind unless ``kind`` is given.
        registries: the host's registries, to suggest types that fit (optional).
        kind: the data's kind when already known (from :func:`data_kind` of ``dims()``).

    Returns one problem per mismatching section; none when the kind is not known yet.
    """
    data = components.get("data")
    if kind is None:
        kinds = supported(data.cls) if data is not None else DATA_KINDS
        if len(kinds) != 1:
            return []
        kind = kinds[0]
    gives = f"data type {data.type!r} gives {kind}" if data is not None else f"the data is {kind}"
    problems = []
    for section in STAGE_SECTIONS:
        component = components.get(section)
        if component is None:
            continue
        kinds = supported(component.cls)
        if kind in kinds:
            continue
        fix = ""
        if registries is not None:
            fits = _alternatives(section, kind, registries)
            fix = f"; use a {section} type that supports {kind}: {', '.join(fits) or '(none)'}"
        problems.append(
            f"{section}.type: {section} type {component.type!r} supports "
            f"{' and '.join(kinds)} data only, but {gives}{fix}"
        )
    return problems


__all__ = ["SERIES", "TOKENS", "DATA_KINDS", "supported", "data_kind", "support_problems"]
