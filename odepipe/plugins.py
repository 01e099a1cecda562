"""The plugin manager: built-ins, entry points, recipe-named modules; isolation of broken ones.

Built-ins (``DEFAULT_PLUGINS``) go through exactly the hooks a third party uses. Third-party
plugins come from the entry-point group ``odepipe``; each is loaded and registered on its own,
and a failure skips that plugin with one warning line (``ODEPIPE_STRICT_PLUGINS=1`` makes it an
error). ``ODEPIPE_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point or distribution name;
``ODEPIPE_TRACE_PLUGINS=1`` traces hook calls to stderr.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata as md
import os
import sys
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pluggy

from . import hookspecs
from .errors import PluginError, RegistryError
from .registry import Component, Registries, did_you_mean

DEFAULT_PLUGINS: Tuple[str, ...] = (
    "odepipe_plugins.encoders",
    "odepipe_plugins.dynamics",
    "odepipe_plugins.solvers",
    "odepipe_plugins.decoders",
    "odepipe_plugins.data",
)

ENTRY_POINT_GROUP = "odepipe"


class PluginWarning(UserWarning):
    """A third-party plugin was skipped; odepipe goes on without it."""


@dataclasses.dataclass
class PluginInfo:
    """What ``odepipe plugins`` reports about one plugin."""

    name: str
    distribution: Optional[str] = None
    version: Optional[str] = None
    builtin: bool = False
    source: str = "entry point"
    hooks: List[str] = dataclasses.field(default_factory=list)
    components: List[str] = dataclasses.field(default_factory=list)
    error: Optional[str] = None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


class PluginHost:
    """A loaded plugin manager with its registries and per-plugin report."""

    def __init__(self, extra_modules: Sequence[str] = (), entry_points: bool = True,
                 builtins: Sequence[str] = DEFAULT_PLUGINS):
        self.pm = pluggy.PluginManager("odepipe")
        self.pm.add_hookspecs(hookspecs)
        self.registries = Registries()
        self.infos: Dict[str, PluginInfo] = {}
        self.strict = _env_flag("ODEPIPE_STRICT_PLUGINS")
        self.disabled = {s.strip() for s in os.environ.get("ODEPIPE_DISABLE_PLUGINS", "").split(",")
                         if s.strip()}
        if _env_flag("ODEPIPE_TRACE_PLUGINS"):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()
        for name in builtins:
            self._add(PluginInfo(name=name, builtin=True, source="built-in",
                                 distribution="odepipe", version=_version("odepipe")),
                      lambda name=name: importlib.import_module(name))
        if entry_points:
            for ep in _entry_points():
                dist = getattr(ep, "dist", None)
                info = PluginInfo(name=ep.name, distribution=dist.name if dist else None,
                                  version=dist.version if dist else None)
                if ep.name in self.disabled or (info.distribution in self.disabled):
                    continue
                self._add(info, ep.load)
        for module in extra_modules:
            self._add(PluginInfo(name=module, source="recipe"),
                      lambda module=module: importlib.import_module(module))

    # -- loading -------------------------------------------------------------------------------
    def _add(self, info: PluginInfo, load: Any) -> None:
        """Imports, registers and collects the components of one plugin, or skips it."""
        if info.name in self.infos:
            return
        self.infos[info.name] = info
        try:
            plugin = load()
            self.pm.register(plugin, name=info.name)
            unknown = [c.name for c in self.pm.get_hookcallers(plugin) or [] if not c.has_spec()]
            if unknown:
                valid = sorted(n for n in dir(self.pm.hook) if n.startswith("odepipe_"))
                raise PluginError("; ".join(f"unknown hook '{u}'{did_you_mean(u, valid)}"
                                            for u in unknown))
            info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            staged = self._collect(info.name)
        except Exception as exc:  # a plugin's failure must not take odepipe down
            self._fail(info, exc)
            return
        for component in staged:
            self.registries[component.kind].add(component)
            info.components.append(f"{component.kind}:{component.name}")

    def _collect(self, plugin_name: str) -> List[Component]:
        """Calls this plugin's register hooks and validates every registration before any is
        committed, so a plugin is taken whole or not at all."""
        others = [p for n, p in self.pm.list_name_plugin() if n != plugin_name]
        staged: List[Component] = []
        for hook, kind in hookspecs.COMPONENT_HOOKS.items():
            registry = self.registries[kind]
            taken = {c.name for c in staged if c.kind == kind}

            def register(name: str, cls: type, help: Optional[str] = None, *, _reg=registry,
                         _taken=taken) -> None:
                component = _reg.check(name, cls, plugin_name)
                if name in _taken:
                    raise RegistryError(f"plugin '{plugin_name}' registered {kind} name {name!r} twice")
                _taken.add(name)
                if help:
                    component = dataclasses.replace(component, help=help)
                staged.append(component)

            self.pm.subset_hook_caller(hook, remove_plugins=others)(register=register)
        return staged

    def _fail(self, info: PluginInfo, exc: Exception) -> None:
        info.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, PluginError) else str(exc)
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin)
        if info.builtin:
            raise PluginError(f"built-in plugin {info.name} failed: {info.error}") from exc
        dist = f"{info.distribution} {info.version}" if info.distribution else "no distribution"
        message = f"odepipe: skipped plugin '{info.name}' ({dist}): {info.error}"
        if self.strict:
            raise PluginError(message + " [ODEPIPE_STRICT_PLUGINS=1]") from exc
        warnings.warn(message, PluginWarning, stacklevel=2)

    # -- hooks ---------------------------------------------------------------------------------
    def register_commands(self, cli: Any) -> None:
        """Lets every plugin add CLI commands; a failing one is skipped like a failed import."""
        for name, plugin in list(self.pm.list_name_plugin()):
            others = [p for n, p in self.pm.list_name_plugin() if n != name]
            try:
                self.pm.subset_hook_caller("odepipe_register_commands", others)(cli=cli)
            except Exception as exc:
                self._fail(self.infos[name], exc)


def _version(dist: str) -> Optional[str]:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _entry_points() -> List[md.EntryPoint]:
    eps = md.entry_points()
    selected = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, [])
    seen, unique = set(), []
    for ep in selected:  # the same distribution can be visible twice on odd sys.paths
        if ep.name not in seen:
            seen.add(ep.name)
            unique.append(ep)
    return unique


@functools.lru_cache(maxsize=8)
def load_plugins(extra_modules: Tuple[str, ...] = ()) -> PluginHost:
    """The process-wide plugin host (cached per set of recipe-named plugin modules)."""
    return PluginHost(extra_modules=extra_modules)
