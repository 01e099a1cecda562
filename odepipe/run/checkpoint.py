"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint holds only tensors and plain Python values (dicts, lists, numbers, strings), so
``torch.load(weights_only=True)`` can read it; a file that smuggles in other objects is refused
before any of its code could run.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict

import torch

from ..errors import CheckpointError

FORMAT = 1


def atomic_write(path: str, write: Any) -> None:
    """Calls ``write(fileobj)`` on a temp file in the same folder, fsyncs, then renames it over
    ``path``: a reader sees the old file or the new one, never a torn one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise CheckpointError(f"could not write {path}: {exc.strerror or exc}; free some disk "
                              f"space or choose another --out") from exc
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: str, state: Dict[str, Any]) -> None:
    state = {"format": FORMAT, **state}
    atomic_write(path, lambda f: torch.save(state, f))


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
            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an odepipe checkpoint (format {FORMAT})")
    return state
