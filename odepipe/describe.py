"""``odepipe ls KIND NAME``: one component's recipe parameters, with types, defaults and docs.

The parameters are the class's ``__init__`` keyword arguments (as recipes bind them); the types
come from their annotations, the docs from the "Args:" section of the class docstring or of
``__init__``'s own, in either of the two forms the shipped components use::

    Args:
        hidden_size: size of the hidden state h.
        rtol, atol: tolerances.              (one entry for several names)

    Args: rtol, atol: tolerances. step_size: the fixed step.   (inline)
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any, Dict, List, Optional

#: constructor arguments odepipe supplies (mirrors odepipe.recipe.SUPPLIED; kept here so that
#: describing a component does not import the recipe package)
SUPPLIED = ("latent_dim", "obs_dim", "vocab_size", "seed")
_NAMES = r"[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*"
_ENTRY = re.compile(rf"^({_NAMES}):\s*(.*)$")
_INLINE = re.compile(rf"(?:^|(?<=[.;)]\s))({_NAMES}):\s")


def _args_section(doc: str) -> Dict[str, str]:
    """name -> its description, from the "Args:" section of one docstring."""
    match = re.search(r"^(\s*)Args:[ \t]*(.*)$", doc, re.M)
    if not match:
        return {}
    docs: Dict[str, str] = {}
    if match.group(2).strip():  # inline: "Args: a, b: text. c: text."
        text = " ".join(
            [match.group(2)]
            + [line.strip() for line in doc[match.end() :].splitlines() if line.strip()]
        )
        marks = list(_INLINE.finditer(text))
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            for name in mark.group(1).split(","):
                docs[name.strip()] = text[mark.end() : end].strip()
        return docs
    current: List[str] = []
    indent: Optional[int] = None
    for line in doc[match.end() :].splitlines()[1:]:
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        if width <= len(match.group(1)):
            break  # the next section ("Returns:") or the end of Args
        entry = _ENTRY.match(line.strip())
        if entry and (indent is None or width == indent):
            indent = width
            current = [n.strip() for n in entry.group(1).split(",")]
            for name in current:
                docs[name] = entry.group(2).strip()
        elif current:
            for name in current:
                docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs


def param_docs(cls: type) -> Dict[str, str]:
    """Each parameter's description from the docstrings of the class and its ancestors, and of
    the ``__init__`` each defines (the nearest wins); torch's and odepipe's bases are skipped."""
    docs: Dict[str, str] = {}
    for klass in inspect.getmro(cls):
        if klass is object or klass.__module__.split(".")[0] in ("torch", "abc", "odepipe"):
            continue
        init = vars(klass).get("__init__")
        for doc in (klass.__doc__, getattr(init, "__doc__", None)):
            if doc:
                section = _args_section(inspect.cleandoc(doc))
                docs.update({k: v for k, v in section.items() if k not in docs})
    return docs


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "any"
    from .recipe.schema import type_name

    return type_name(annotation)


def describe(component: Any) -> str:
    """A multi-line description of a registered component (an ``odepipe.registry.Component``):
    its kind, name, plugin and help, then one line per recipe parameter (name, type, default or
    "required", doc), then the arguments odepipe supplies itself."""
    cls = component.cls
    signature = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__, include_extras=False)
    except Exception:  # annotations that do not resolve: show them as written
        hints = {}
    docs = param_docs(cls)
    origin = component.origin or component.plugin
    lines = [
        f"{component.kind} {component.name}  (plugin {origin}; class "
        f"{cls.__module__}.{cls.__qualname__})"
    ]
    if component.help:
        lines.append(f"  {component.help}")
    rows, supplied = [], []
    for name, p in signature.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name in SUPPLIED:
            supplied.append(name)
            continue
        kind = _type_name(hints.get(name, p.annotation))
        default = "required" if p.default is p.empty else f"default {p.default!r}"
        rows.append(
            (f"{component_section(component)}.{name}", f"{kind}, {default}", docs.get(name, ""))
        )
    if rows:
        lines.append("parameters:")
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        lines += [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    else:
        lines.append("parameters: (none)")
    if supplied:
        lines.append(f"supplied by odepipe: {', '.join(supplied)}")
    return "\n".join(lines)


def component_section(component: Any) -> str:
    """The recipe section of a component's kind (``data_sources`` -> ``data``)."""
    from .registry import KINDS

    return KINDS[component.kind][1]
