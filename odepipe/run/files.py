"""Writing a run folder's files: atomically, with the permissions a plain ``open()`` would give
(so a folder shared with a group reads the same before and after a resume), and as strict JSON.

``tempfile.mkstemp`` creates files mode 0600 whatever the umask; :func:`atomic_write` widens its
temporary file to ``0666 & ~umask`` before the rename, as ``open(path, "w")`` would have.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from typing import Any, Callable, List, Tuple, Type

from ..errors import CheckpointError

#: prefix of the temporary files atomic writes use (a kill can leave one behind)
TEMP_PREFIX = ".tmp-"


def file_mode() -> int:
    """The mode a newly created file gets under the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(
    path: str, write: Callable[[Any], None], errors: Tuple[Type[BaseException], ...] = (OSError,)
) -> None:
    """Calls ``write(fileobj)`` on a temp file in the same folder, fsyncs, then renames it over
    ``path``: a reader sees the old file or the new one, never a torn one.

    An exception of a type in ``errors`` (a full disk, an unwritable folder) becomes a
    CheckpointError naming the file; the old file is left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
        os.fchmod(fd, file_mode())
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
    except errors as exc:
        _discard(tmp)
        reason = (
            getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        )
        raise CheckpointError(
            f"could not write {path}: {reason}; free some disk space or "
            f"choose another --out (the files already there are kept)"
        ) from exc
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str) -> None:
    if tmp and os.path.exists(tmp):
        os.unlink(tmp)


def write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def finite_json(value: Any, where: str = "") -> Tuple[Any, List[str]]:
    """``value`` with every NaN or Infinity replaced by None (JSON ``null``), and the dotted
    keys that were replaced, so that the file stays strict JSON that any reader accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None, [where or "<value>"]
    if isinstance(value, dict):
        out, bad = {}, []
        for k, v in value.items():
            out[k], more = finite_json(v, f"{where}.{k}" if where else str(k))
            bad += more
        return out, bad
    if isinstance(value, (list, tuple)):
        items = [finite_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in items], [b for _, more in items for b in more]
    return value, []


def strict_json(value: Any, what: str) -> Any:
    """:func:`finite_json`, warning once naming the figures written as null."""
    clean, bad = finite_json(value)
    if bad:
        warnings.warn(
            f"{what}: {', '.join(bad)} not finite (NaN or Inf); written as null",
            RuntimeWarning,
            stacklevel=3,
        )
    return clean
