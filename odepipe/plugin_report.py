"""What odepipe tells about each plugin: its origin and status for ``odepipe plugins``, and the
one warning line (or, in strict mode, the error) when a plugin is skipped."""

from __future__ import annotations

import dataclasses
import os
import traceback
import warnings
from typing import Dict, List, Optional

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
    #: what the plugin tried to provide, by kind (``dynamics``, ``commands``, ``recipes`` ...),
    #: kept when it is skipped so that an unknown-type error can say who would have given it
    offered: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
    #: the plugin's own traceback when it was skipped (shown by ``odepipe --traceback``)
    traceback: Optional[str] = None

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


class SkippedPluginError(PluginError):
    """Strict mode's error for a skipped plugin; ``info`` holds its report and traceback."""

    def __init__(self, message: str, info: PluginInfo):
        super().__init__(message)
        self.info = info


def cause_of(exc: BaseException) -> str:
    """The one-line reason a plugin is skipped. odepipe's own errors are sentences already;
    anything else is named by its type. A plugin that calls ``sys.exit`` while loading is told
    that it failed to load, because exiting would have ended odepipe itself."""
    if isinstance(exc, (PluginError, RegistryError)):
        return one_line(exc)
    if isinstance(exc, SystemExit):
        return one_line(
            f"failed to load: it raised SystemExit({exc.code!r}); a plugin must "
            f"raise an exception, never exit the process"
        )
    return one_line(f"{type(exc).__name__}: {exc}")


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def skip_message(info: PluginInfo) -> str:
    """The one warning line of a skipped third-party plugin."""
    return f"odepipe: skipped plugin '{info.name}' ({info.origin()}): {info.error}"


def traceback_report(infos: List[PluginInfo]) -> str:
    """The tracebacks of the given skipped plugins, each under a header naming the plugin:
    what ``odepipe --traceback`` prints after the warning lines."""
    parts = [
        f"odepipe: traceback of skipped plugin '{i.name}' ({i.origin()}):\n{i.traceback}"
        for i in infos
        if i.traceback
    ]
    return "".join(parts)


def record_failure(info: PluginInfo, exc: BaseException, strict: bool) -> None:
    """Records why a plugin was skipped (the one-line cause, its traceback; what it offered is
    kept) and says so: a built-in's failure is a bug (raised); a recipe's or an object's is
    reported by its caller; a third party's is one warning line, or an error in strict mode."""
    info.error = cause_of(exc)
    info.traceback = format_traceback(exc)
    info.hooks, info.components = [], []
    if info.builtin:
        raise PluginError(f"built-in plugin {info.name} failed: {info.error}") from exc
    if info.source in ("recipe", "object"):
        return
    message = skip_message(info)
    if strict:
        raise SkippedPluginError(
            f"{message} (unset {STRICT_ENV} to skip broken plugins with a warning)", info
        ) from exc
    warnings.warn(message, PluginWarning, stacklevel=4)
