"""What odepipe tells about each plugin: its origin and status for ``odepipe plugins``, and the
one warning line (or, in strict mode, the error) when a plugin is skipped."""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import List, Optional

from .errors import PluginError, RegistryError

STRICT_ENV = "ODEPIPE_STRICT_PLUGINS"
DISABLE_ENV = "ODEPIPE_DISABLE_PLUGINS"
TRACE_ENV = "ODEPIPE_TRACE_PLUGINS"


class PluginWarning(UserWarning):
    """A third-party plugin was skipped; odepipe goes on without it."""


@dataclasses.dataclass
class PluginInfo:
    """What ``odepipe plugins`` reports about one plugin."""

    name: str
    distribution: Optional[str] = None
    version: Optional[str] = None
    builtin: bool = False
    source: str = "entry point"  # built-in | entry point | recipe | object
    module: Optional[str] = None
    hooks: List[str] = dataclasses.field(default_factory=list)
    components: List[str] = dataclasses.field(default_factory=list)
    error: Optional[str] = None
    disabled: bool = False

    @property
    def status(self) -> str:
        if self.disabled:
            return f"disabled by {DISABLE_ENV}"
        return f"error: {self.error}" if self.error else "ok"

    def origin(self) -> str:
        """'odepipe-example 0.1.0', 'built-in' or 'recipe module': where this plugin came from."""
        if self.builtin:
            return "built-in"
        if self.distribution:
            return f"{self.distribution} {self.version or '(no version)'}".strip()
        return "recipe module" if self.source == "recipe" else "no distribution"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def record_failure(info: PluginInfo, exc: BaseException, strict: bool) -> None:
    """Records why a plugin was skipped and says so: a built-in's failure is a bug (raised);
    a recipe's or an object's is reported by its caller; a third party's is one warning line,
    or an error in strict mode."""
    cause = str(exc) if isinstance(exc, (PluginError, RegistryError)) else \
        f"{type(exc).__name__}: {exc}"
    info.error = one_line(cause)
    info.hooks, info.components = [], []
    if info.builtin:
        raise PluginError(f"built-in plugin {info.name} failed: {info.error}") from exc
    if info.source in ("recipe", "object"):
        return
    message = f"odepipe: skipped plugin '{info.name}' ({info.origin()}): {info.error}"
    if strict:
        raise PluginError(f"{message} (unset {STRICT_ENV} to skip broken plugins with a "
                          f"warning)") from exc
    warnings.warn(message, PluginWarning, stacklevel=4)
