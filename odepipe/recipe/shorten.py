"""Values shown in recipe messages, cut to about 80 characters.

A message repeats what the user wrote so they can find it, but a recipe value can be a 1 MiB
string, a list of half a million items or a structure that YAML aliases share thousands of
times over (an "anchor bomb", whose full ``repr`` takes minutes and all memory). ``reprlib``
stops at a few items and levels, so the cost of :func:`short` never depends on the value's size.
"""

from __future__ import annotations

import reprlib
from typing import Any

LIMIT = 80


class _ShortRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:  # str() of a huge int is slow, past 4300 digits an error
            return f"<int of about {int(x.bit_length() * 0.30103)} digits>"
        return super().repr_int(x, level)


_REPR = _ShortRepr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 4
_REPR.maxstring = 60
_REPR.maxlong = 40
_REPR.maxother = 60


def clip(text: str, limit: int = LIMIT) -> str:
    """``text`` itself when short, else its start and ``...``."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: Any, limit: int = LIMIT) -> str:
    """A ``repr`` of ``value`` of at most ``limit`` characters, at a cost independent of its
    size (an int of more than 60 digits, or an object whose repr fails, is described)."""
    try:
        text = _REPR.repr(value)
    except Exception as exc:  # a plugin's object whose __repr__ fails
        text = f"<{type(value).__name__}: repr failed with {type(exc).__name__}>"
    return clip(text, limit)


def name(key: Any, limit: int = LIMIT) -> str:
    """A key as the user wrote it (not quoted), cut to ``limit`` characters."""
    return clip(key, limit) if isinstance(key, str) else short(key, limit)
