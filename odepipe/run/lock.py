"""The lock a training process holds on its run folder, so that a second ``--resume`` or
``run --out`` into the same folder is refused instead of interleaving checkpoints and metrics.

An advisory ``fcntl.flock`` on a ``.lock`` file inside the folder: the kernel drops it when the
process dies (even ``kill -9``), so a crash never leaves a folder locked.
"""

from __future__ import annotations

import fcntl
import os
from typing import IO, Any, Optional

from ..errors import CheckpointError


class RunLock:
    """``with RunLock(folder, path):`` holds the lock or raises CheckpointError at once."""

    def __init__(self, folder: str, path: str):
        self.folder, self.path = folder, path
        self._file: Optional[IO[str]] = None

    def acquire(self) -> "RunLock":
        try:
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(
                f"cannot write the run folder {self.folder}: "
                f"{exc.strerror or exc}; choose a writable --out"
            ) from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise CheckpointError(
                f"run folder {self.folder} is in use: another odepipe process{pid} is training "
                f"into it; wait for it to finish, or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def check_unlocked(folder: str, path: str) -> None:
    """Raises CheckpointError when a process holds the folder's lock (nothing is held after)."""
    if os.path.isfile(path):
        RunLock(folder, path).acquire().release()
