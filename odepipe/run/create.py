"""The rules for making a run folder, and for replacing one (``--overwrite``).

Nothing but an odepipe run folder is ever replaced: a folder is recognised as one by its
entries (recipe.yaml, checkpoint.pt, ... and nothing else), and the current folder and the
folders above it are never replaced. A run folder is replaced by moving it aside; the caller
deletes the old one once the new run has written its first checkpoint (or moves it back when the
new run fails before that), so a failed replacement loses nothing.
"""

from __future__ import annotations

import os
import shutil
from typing import Iterable, List, Optional

from ..errors import CheckpointError
from .files import TEMP_PREFIX
from .lock import check_unlocked


def foreign_entries(path: str, known: Iterable[str]) -> List[str]:
    """Entries of ``path`` that odepipe does not write into a run folder."""
    names = set(known)
    return sorted(
        e + ("/" if os.path.isdir(os.path.join(path, e)) else "")
        for e in os.listdir(path)
        if e not in names and not e.startswith(TEMP_PREFIX)
    )


def _contains_cwd(path: str) -> bool:
    target, cwd = os.path.realpath(path), os.path.realpath(os.getcwd())
    return cwd == target or cwd.startswith(target.rstrip(os.sep) + os.sep)


def _refuse_unless_replaceable(path: str, known: Iterable[str]) -> None:
    if _contains_cwd(path):
        raise CheckpointError(
            f"--out {path} is the current folder or a folder above it, and it "
            f"is not empty; odepipe never replaces it. Choose another --out, "
            f"e.g. --out runs/mine"
        )
    foreign = foreign_entries(path, known)
    if foreign:
        shown = ", ".join(foreign[:8]) + (
            f" and {len(foreign) - 8} more" if len(foreign) > 8 else ""
        )
        raise CheckpointError(
            f"--out {path} holds files that are not part of an odepipe run "
            f"({shown}); --overwrite replaces only a run folder. Choose "
            f"another --out, or move those files away yourself"
        )


def _clear(path: str) -> None:
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)


def prepare(
    path: str, known: Iterable[str], checkpoint: str, lock: str, overwrite: bool
) -> Optional[str]:
    """Makes ``path`` ready for a fresh run and returns where an old run was moved aside
    (None when nothing was). Raises CheckpointError naming the folder and the fix.

    - missing or empty: created;
    - a run folder without a checkpoint (killed before its first one): emptied and reused;
    - a run folder with a checkpoint: an error unless ``overwrite``, then moved aside;
    - anything else (other files, the current folder or one above it): always an error.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise CheckpointError(f"--out {path} exists and is not a folder; choose another --out")
    aside = None
    if os.path.isdir(path) and os.listdir(path):
        _refuse_unless_replaceable(path, known)
        check_unlocked(path, os.path.join(path, lock))
        if os.path.isfile(os.path.join(path, checkpoint)):
            if not overwrite:
                raise CheckpointError(
                    f"run folder {path} already holds a run; pass --overwrite "
                    f"to replace it, --resume {path} to continue it, or choose "
                    f"another --out"
                )
            aside = _move_aside(path)
        else:
            _clear_or_fail(path)
    return aside


def _move_aside(path: str) -> str:
    parent, name = os.path.split(os.path.abspath(path))
    aside = os.path.join(parent, f".{name}.replaced-{os.getpid()}")
    try:
        if os.path.exists(aside):
            shutil.rmtree(aside)
        os.rename(path, aside)
    except OSError as exc:
        raise CheckpointError(
            f"cannot replace {path}: {exc.strerror or exc}; remove it "
            f"yourself or choose another --out"
        ) from exc
    return aside


def _clear_or_fail(path: str) -> None:
    try:
        _clear(path)
    except OSError as exc:
        raise CheckpointError(
            f"cannot reuse the unfinished run folder {path}: "
            f"{exc.strerror or exc}; remove it or choose another --out"
        ) from exc


def make_writable(path: str, subfolders: Iterable[str]) -> None:
    """Creates the folder (and ``subfolders``) and checks that a file can be written there."""
    try:
        os.makedirs(path, exist_ok=True)
        for sub in subfolders:
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        probe = os.path.join(path, TEMP_PREFIX + "write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.unlink(probe)
    except OSError as exc:
        raise CheckpointError(
            f"cannot write the run folder {path}: {exc.strerror or exc}; choose a writable --out"
        ) from exc


def restore_replaced(path: str, aside: str) -> None:
    """Puts the run that ``prepare`` moved aside back in place of a new run that failed
    before its first checkpoint."""
    shutil.rmtree(path, ignore_errors=True)
    os.rename(aside, path)


def missing_folders(path: str) -> List[str]:
    """The folders on the way to ``path`` (itself included) that do not exist yet, deepest
    first: what making it creates, so a run that fails before writing anything can remove them
    (``runs/`` of a first run, say) and leave the user's folder as it was."""
    missing = []
    current = os.path.abspath(path)
    while not os.path.exists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return missing


def remove_if_empty(folders: Iterable[str]) -> None:
    """Removes each folder that is empty now, in order (deepest first), stopping at one that
    is not."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            continue
        except OSError:
            return
