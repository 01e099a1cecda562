"""Every user-facing error type in one place.

The CLI turns any :class:`OdepipeError` into a message on stderr and exit code 2, without a
traceback: these errors describe a user's mistake (a recipe, a file, a plugin) and each message
names what was wrong, where, and the fix.
"""

from __future__ import annotations

from typing import Iterable


class OdepipeError(Exception):
    """Base class: a problem the user can fix; shown without a traceback."""

    exit_code = 2


class RecipeError(OdepipeError):
    """One or more problems in a recipe, reported together (the message lists the first
    ``SHOWN``; ``problems`` holds them all)."""

    SHOWN = 50

    def __init__(self, problems: Iterable[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"{len(self.problems)} problem(s){where}:"]
        lines += [f"  - {p}" for p in self.problems[: self.SHOWN]]
        if len(self.problems) > self.SHOWN:
            lines.append(f"  ... and {len(self.problems) - self.SHOWN} more; fix these first")
        super().__init__("\n".join(lines))


class RegistryError(OdepipeError):
    """An unknown component name, a duplicate registration or a class of the wrong kind."""


class PluginError(OdepipeError):
    """A plugin failed to load or to register its components."""


class CheckpointError(OdepipeError):
    """A checkpoint or run directory that cannot be read or written."""


class DataError(OdepipeError):
    """A data source cannot provide what was asked (missing or malformed files, bad splits)."""


class SolverError(OdepipeError):
    """The ODE solver failed (step size underflow, too many steps)."""


class NumericalError(OdepipeError):
    """A NaN or Inf appeared in the loss or the gradients."""


class ModelError(OdepipeError):
    """Stages that do not fit together (dimension mismatch between encoder, dynamics, decoder)."""
