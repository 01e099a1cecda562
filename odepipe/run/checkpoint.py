"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint holds only tensors and plain Python values (dicts, lists, numbers, strings), so
``torch.load(weights_only=True)`` can read it; a file that smuggles in other objects is refused
before any of its code could run.
"""

from __future__ import annotations

import os
from typing import Any, Dict

import torch

from ..errors import CheckpointError
from .files import atomic_write

FORMAT = 1


def save_checkpoint(path: str, state: Dict[str, Any]) -> None:
    """Writes ``state`` atomically. ``torch.save``'s zip writer reports a full disk as a
    RuntimeError ("PytorchStreamWriter failed writing file"), not an OSError: both become a
    CheckpointError, and the previous checkpoint stays in place."""
    state = {"format": FORMAT, **state}
    atomic_write(path, lambda f: torch.save(state, f), errors=(OSError, RuntimeError))


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Loads on the CPU with ``weights_only=True``; any failure is a CheckpointError."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"refusing to load {path}: it is not a valid odepipe checkpoint or it contains "
            f"objects other than tensors and plain values ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an odepipe checkpoint (format {FORMAT})")
    return state
