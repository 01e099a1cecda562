"""The plugin manager: built-ins, entry points, recipe-named modules; isolation of broken ones.

Built-ins (``DEFAULT_PLUGINS``) go through exactly the hooks a third party uses. Third-party
plugins come from the entry-point group ``odepipe``; each is loaded, checked and registered on its
own, and taken whole or not at all: a plugin that fails to import, implements a hook that does
not exist or with arguments the spec does not have, registers a name already taken or a class of
the wrong kind, or whose hook raises, is skipped with one warning line naming its distribution,
version and the cause. ``ODEPIPE_STRICT_PLUGINS=1`` makes that an error;
``ODEPIPE_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point, distribution or module name;
``ODEPIPE_TRACE_PLUGINS=1`` traces hook calls to stderr.

Nothing here imports torch: registering components checks their classes against the stage
bases (which needs torch) only when a host collects components, so ``odepipe --help`` can load
plugin commands without it.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata as md
import inspect
import os
import re
import sys
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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
    "odepipe_plugins.text_data", "odepipe_plugins.text_models",
    "odepipe_plugins.odernn",
    "odepipe_plugins.baseline",
    "odepipe_plugins.linear_spirals",
    "odepipe_plugins.csv_data",
    "odepipe_plugins.resnet",
)

ENTRY_POINT_GROUP = "odepipe"
STRICT_ENV = "ODEPIPE_STRICT_PLUGINS"
DISABLE_ENV = "ODEPIPE_DISABLE_PLUGINS"
TRACE_ENV = "ODEPIPE_TRACE_PLUGINS"

#: hook name -> the argument names its spec declares (an implementation may take a subset)
HOOK_ARGS: Dict[str, Tuple[str, ...]] = {
    name: tuple(inspect.signature(func).parameters)
    for name, func in vars(hookspecs).items()
    if name.startswith("odepipe_") and callable(func)
}

#: warning lines already shown in this process
_WARNED: set = set()

#: (id of a click group, command name) -> plugin that put the command there in this process
_ATTACHED: Dict[Tuple[int, str], str] = {}


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


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _normalize(name: str) -> str:
    """PEP 503 name normalisation: 'Odepipe_Example' and 'odepipe-example' are one name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class PluginHost:
    """One plugin manager with its registries, staged commands and a report per plugin.

    Args:
        extra_modules: modules a recipe names under ``plugins:``; imported with the current
            directory on the import path, reported as recipe problems when they fail.
        entry_points: load the ``odepipe`` entry-point group.
        builtins: built-in plugin modules; their failure is a bug, so it raises.
        components: call the component hooks and fill the registries (needs torch). The CLI
            start-up passes False to add plugin commands without importing torch.
    """

    def __init__(self, extra_modules: Sequence[str] = (), entry_points: bool = True,
                 builtins: Sequence[str] = DEFAULT_PLUGINS, components: bool = True):
        self.pm = pluggy.PluginManager("odepipe")
        self.pm.add_hookspecs(hookspecs)
        self.registries = Registries()
        self.infos: Dict[str, PluginInfo] = {}
        #: command name -> (plugin name, click command), staged from odepipe_register_commands
        self.commands: Dict[str, Tuple[str, Any]] = {}
        self.collect_components = components
        self.strict = _env_flag(STRICT_ENV)
        self.disabled = {_normalize(s.strip()) for s in os.environ.get(DISABLE_ENV, "").split(",")
                         if s.strip()}
        if _env_flag(TRACE_ENV):
            self.pm.trace.root.setwriter(_trace_writer)
            self.pm.enable_tracing()
        for name in builtins:
            self._add(PluginInfo(name=name, builtin=True, source="built-in", module=name,
                                 distribution="odepipe", version=_version("odepipe")),
                      functools.partial(importlib.import_module, name))
        if entry_points:
            for ep, dist_name, dist_version in _entry_points():
                info = PluginInfo(name=ep.name, distribution=dist_name, version=dist_version,
                                  module=ep.value)
                if info.name in self.infos:  # two distributions chose one entry-point name
                    other = self.infos[info.name]
                    info.name = f"{ep.name} ({dist_name})"
                    self.infos[info.name] = info
                    self._fail(info, PluginError(
                        f"entry point name '{ep.name}' is already used by distribution "
                        f"{other.origin()}; rename the entry point in one of them"))
                    continue
                self._add(info, ep.load)
        for module in extra_modules:
            self._add(PluginInfo(name=module, source="recipe", module=module),
                      functools.partial(_import_local, module))

    # -- loading -------------------------------------------------------------------------------
    def is_disabled(self, info: PluginInfo) -> bool:
        names = {info.name, info.module or "", info.distribution or ""}
        return not info.builtin and any(_normalize(n) in self.disabled for n in names if n)

    def _add(self, info: PluginInfo, load: Callable[[], Any]) -> None:
        """Imports, checks and registers one plugin and stages what it provides; commits it
        only when every step succeeded, else skips it (see :meth:`_fail`)."""
        if info.name in self.infos:
            return
        self.infos[info.name] = info
        if self.is_disabled(info):
            info.disabled = True
            return
        try:
            plugin = load()
            if self.pm.is_registered(plugin):  # a recipe names a module an entry point loaded
                del self.infos[info.name]
                return
            check_hookimpls(self.pm, plugin)
            self.pm.register(plugin, name=info.name)
            info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            staged = self._collect(info.name) if self.collect_components else []
            commands = self._collect_commands(info.name)
        except Exception as exc:  # a plugin's failure must not take odepipe down
            self._fail(info, exc)
            return
        for component in staged:
            self.registries[component.kind].add(component)
            info.components.append(f"{component.kind}:{component.name}")
        for name, command in commands.items():
            self.commands[name] = (info.name, command)
            info.components.append(f"commands:{name}")

    def add_plugin(self, plugin: Any, name: Optional[str] = None) -> PluginInfo:
        """Loads an already imported plugin (a module or object) into this host, as tests and
        notebooks do; a failure is recorded in the returned info's ``error``, not warned."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if self.pm.is_registered(plugin):
            return self.infos[self.pm.get_name(plugin)]
        self._add(PluginInfo(name=name, source="object", module=name), lambda: plugin)
        return self.infos[name]

    def _others(self, plugin_name: str) -> List[Any]:
        return [p for n, p in self.pm.list_name_plugin() if n != plugin_name]

    def _collect(self, plugin_name: str) -> List[Component]:
        """Calls this plugin's register hooks and validates every registration before any is
        committed, so a plugin is taken whole or not at all."""
        others = self._others(plugin_name)
        staged: List[Component] = []
        for hook, kind in hookspecs.COMPONENT_HOOKS.items():
            registry = self.registries[kind]
            taken: set = set()

            def register(name: str, cls: type, help: Optional[str] = None, *, _reg=registry,
                         _taken=taken, _kind=kind) -> None:
                component = _reg.check(name, cls, plugin_name)
                if name in _taken:
                    raise RegistryError(f"plugin '{plugin_name}' registered {_kind} name "
                                        f"{name!r} twice; register each name once")
                _taken.add(name)
                if help:
                    component = dataclasses.replace(component, help=_one_line(help))
                staged.append(component)

            self.pm.subset_hook_caller(hook, remove_plugins=others)(register=register)
        return staged

    def _collect_commands(self, plugin_name: str) -> Dict[str, Any]:
        """Runs this plugin's command hook on a scratch click group and checks the names: a
        plugin may add commands but never replace one of odepipe's or another plugin's."""
        if "odepipe_register_commands" not in self.infos[plugin_name].hooks:
            return {}
        import click

        scratch = click.Group("odepipe")
        caller = self.pm.subset_hook_caller("odepipe_register_commands",
                                            remove_plugins=self._others(plugin_name))
        caller(cli=scratch)
        main_cli = _main_cli()
        for name in scratch.commands:
            if name in self.commands:
                raise RegistryError(f"command {name!r} is added twice: by plugin "
                                    f"'{self.commands[name][0]}' and by plugin '{plugin_name}'; "
                                    f"rename one of them")
            owner = _ATTACHED.get((id(main_cli), name))
            same = main_cli.commands.get(name) is scratch.commands[name]  # loaded again
            if name in main_cli.commands and owner != plugin_name and not same:
                by = f"plugin '{owner}'" if owner else "odepipe itself"
                raise RegistryError(f"command {name!r} is already a command of {by}; a plugin "
                                    f"may not replace it; rename the command")
        return dict(scratch.commands)

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        """Records why a plugin was skipped; warns (or raises in strict mode) in one line."""
        cause = str(exc) if isinstance(exc, (PluginError, RegistryError)) else \
            f"{type(exc).__name__}: {exc}"
        info.error = _one_line(cause)
        info.hooks, info.components = [], []
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin)
        if info.builtin:
            raise PluginError(f"built-in plugin {info.name} failed: {info.error}") from exc
        if info.source in ("recipe", "object"):
            return  # the caller reports it (recipe validation: a problem of its plugins: key)
        message = f"odepipe: skipped plugin '{info.name}' ({info.origin()}): {info.error}"
        if self.strict:
            raise PluginError(f"{message} (unset {STRICT_ENV} to skip broken plugins with a "
                              f"warning)") from exc
        if message not in _WARNED:  # several hosts in one process: one line per plugin
            _WARNED.add(message)
            warnings.warn(message, PluginWarning, stacklevel=3)

    # -- queries and commands --------------------------------------------------------------------
    def plugin_of(self, component: Component) -> str:
        """'name (distribution version)' of the plugin that registered ``component``."""
        info = self.infos.get(component.plugin)
        return f"{component.plugin} ({info.origin()})" if info else component.plugin

    def register_commands(self, cli: Any) -> None:
        """Puts every loaded plugin's commands on ``cli``; one that would replace an existing
        command is skipped with its whole plugin, like any other broken plugin."""
        by_plugin: Dict[str, Dict[str, Any]] = {}
        for name, (plugin, command) in self.commands.items():
            by_plugin.setdefault(plugin, {})[name] = command
        for plugin, commands in by_plugin.items():
            clash = [n for n, c in commands.items()
                     if n in cli.commands and cli.commands[n] is not c
                     and _ATTACHED.get((id(cli), n)) != plugin]
            if clash:
                for n in commands:
                    self.commands.pop(n, None)
                self._fail(self.infos[plugin], RegistryError(
                    f"command {clash[0]!r} is already a command of odepipe; a plugin may not "
                    f"replace it; rename the command"))
                continue
            for n, c in commands.items():
                cli.add_command(c, n)
                _ATTACHED[(id(cli), n)] = plugin


def check_hookimpls(pm: pluggy.PluginManager, plugin: Any) -> None:
    """Refuses, in one sentence per problem, the mistakes pluggy would accept silently or
    explain badly: a function named like a hook but not marked ``@odepipe.hookimpl``, a marked
    function whose name is not a hook (a misspelling), and arguments the hook does not have."""
    problems = []
    for attr in dir(plugin):
        if not attr.startswith("odepipe_"):
            continue
        func = getattr(plugin, attr, None)
        if not (inspect.isfunction(func) or inspect.ismethod(func)):
            continue
        marked = pm.parse_hookimpl_opts(plugin, attr) is not None
        if attr not in HOOK_ARGS:
            if marked:
                problems.append(f"unknown hook '{attr}'{did_you_mean(attr, list(HOOK_ARGS))}; "
                                f"hooks: {', '.join(HOOK_ARGS)}")
            continue
        if not marked:
            problems.append(f"function '{attr}' is not marked @odepipe.hookimpl, so it would "
                            f"never be called; add the decorator")
            continue
        params = list(inspect.signature(func).parameters)
        if params[:1] in (["self"], ["cls"]) and not inspect.ismethod(func):
            params = params[1:]  # a class registered as the plugin: its methods' own first arg
        extra = [p for p in params if p not in HOOK_ARGS[attr]]
        if extra:
            problems.append(f"hook {attr}({', '.join(params)}) does not match its spec "
                            f"{attr}({', '.join(HOOK_ARGS[attr])}): unknown argument(s) "
                            f"{', '.join(extra)}")
    if problems:
        raise PluginError("; ".join(problems))


def _main_cli() -> Any:
    """odepipe's own command line (imported lazily: no import cycle, no torch)."""
    from .cli import cli

    return cli


def _trace_writer(text: str) -> None:
    for line in text.splitlines():
        sys.stderr.write(f"odepipe trace: {line}\n")


def _import_local(module: str) -> Any:
    """Imports a module a recipe names; the current directory is searched too, because the
    ``odepipe`` console script does not put it on ``sys.path`` as ``python -m`` does."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
        importlib.invalidate_caches()
    return importlib.import_module(module)


def _version(dist: str) -> Optional[str]:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _entry_points() -> List[Tuple[md.EntryPoint, Optional[str], Optional[str]]]:
    """(entry point, distribution name, version) for the ``odepipe`` group, one distribution
    once even when it is visible twice on an odd ``sys.path`` (the first copy wins, as imports
    do)."""
    seen, found = set(), []
    for dist in md.distributions():
        try:
            name = dist.metadata["Name"]
            eps = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        except Exception:  # a broken *.dist-info must not break odepipe either
            continue
        if not eps or not name or _normalize(name) in seen:
            continue
        seen.add(_normalize(name))
        found.extend((ep, name, dist.version) for ep in eps)
    return found


@functools.lru_cache(maxsize=8)
def load_plugins(extra_modules: Tuple[str, ...] = ()) -> PluginHost:
    """The process-wide plugin host (cached per set of recipe-named plugin modules;
    ``load_plugins.cache_clear()`` forgets them, as tests do)."""
    return PluginHost(extra_modules=extra_modules)
