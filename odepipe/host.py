"""The plugin host: one per process, built by the caller (``odepipe``'s ``main()`` or an API
user) and passed down to everything that resolves a component.

Every plugin (built-in bundle, entry point, recipe-named module) is loaded, checked and
registered on its own, and taken whole or not at all: a plugin that fails to import, implements
a hook that does not exist or with arguments the spec does not have, registers a name already
taken or a class of the wrong kind, offers a command odepipe already has, or whose hook raises,
is skipped with one warning line naming its distribution, version and the cause
(``ODEPIPE_STRICT_PLUGINS=1`` makes that an error; ``ODEPIPE_DISABLE_PLUGINS=a,b`` blocks
plugins by entry-point, distribution or module name; ``ODEPIPE_TRACE_PLUGINS=1`` traces hook
calls to stderr, each line naming the plugin).

Failures are found when plugins load, for every command (``--help`` included), because loading
calls every component hook and checks every registration. One failure is found only later: a
``"module:Class"`` reference is checked to exist when it is registered, but imported when a
recipe or command first uses it (so that loading stays free of torch). If that import raises, or
the class is not of the right kind, using it is one error line naming the component and its
plugin (exit code 2, the traceback under ``--traceback``); the rest of the plugin stays usable.

The host knows nothing of click: it returns the commands plugins offered, and the CLI attaches
them. Nothing here imports torch: components are registered by reference or by class, and a
reference is imported only when a recipe or command uses it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pluggy

from . import hookspecs, plugin_sources
from .errors import PluginError, RegistryError
from .plugin_recipes import RecipeCollector
from .plugin_report import (
    DISABLE_ENV,
    STRICT_ENV,
    TRACE_ENV,
    PluginInfo,
    env_flag,
    one_line,
    record_failure,
)
from .registry import KINDS, Component, Registries, did_you_mean

#: hook name -> the argument names its spec declares (an implementation may take a subset)
HOOK_ARGS: Dict[str, Tuple[str, ...]] = {
    name: tuple(inspect.signature(func).parameters)
    for name, func in vars(hookspecs).items()
    if name.startswith("odepipe_") and callable(func)
}


class CommandCollector:
    """What ``odepipe_register_commands(cli)`` receives: it collects the commands a plugin
    offers, accepting both ``cli.add_command(cmd)`` and the ``@cli.command()`` decorator, so
    the host can check them before the CLI attaches any."""

    def __init__(self) -> None:
        self.commands: Dict[str, Any] = {}

    def add_command(self, cmd: Any, name: Optional[str] = None) -> None:
        self.commands[name or cmd.name] = cmd

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        import click

        def decorator(func: Callable[..., Any]) -> Any:
            cmd = click.command(*args, **kwargs)(func)
            self.add_command(cmd)
            return cmd

        return decorator

    def group(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        import click

        def decorator(func: Callable[..., Any]) -> Any:
            grp = click.group(*args, **kwargs)(func)
            self.add_command(grp)
            return grp

        return decorator


class PluginHost:
    """One plugin manager with its registries, the commands plugins offered and a report per
    plugin.

    Args:
        builtins: built-in plugin modules; their failure is a bug, so it raises.
        entry_points: load the ``odepipe`` entry-point group.
        reserved_commands: command names the caller has already (odepipe's own); a plugin
            offering one of them is skipped whole.
    """

    def __init__(
        self,
        builtins: Sequence[str] = plugin_sources.BUILTIN_PLUGINS,
        entry_points: bool = True,
        reserved_commands: Sequence[str] = (),
    ):
        self.pm = pluggy.PluginManager("odepipe")
        self.pm.add_hookspecs(hookspecs)
        self.registries = Registries()
        self.infos: Dict[str, PluginInfo] = {}
        #: command name -> (plugin name, command object) for every loaded plugin's commands
        self.commands: Dict[str, Tuple[str, Any]] = {}
        #: recipe name -> (plugin name, YAML text) for every loaded plugin's recipes
        self.plugin_recipes: Dict[str, Tuple[str, str]] = {}
        #: loading a run folder may import local modules its recipe names (--allow-plugins)
        self.allow_local_plugins = False
        self.reserved_commands = frozenset(reserved_commands)
        self.strict = env_flag(STRICT_ENV)
        self.disabled = {
            plugin_sources.normalize(s.strip())
            for s in os.environ.get(DISABLE_ENV, "").split(",")
            if s.strip()
        }
        self.trace = env_flag(TRACE_ENV)
        if self.trace:
            self.pm.add_hookcall_monitoring(self._trace_before, self._trace_after)
        for name in builtins:
            self._add(
                PluginInfo(
                    name=name,
                    builtin=True,
                    source="built-in",
                    module=name,
                    distribution="odepipe",
                    version=plugin_sources.version("odepipe"),
                ),
                functools.partial(importlib.import_module, name),
            )
        if entry_points:
            self._add_entry_points()

    # -- loading -------------------------------------------------------------------------------
    def _add_entry_points(self) -> None:
        for ep, dist_name, dist_version in plugin_sources.entry_points():
            info = PluginInfo(
                name=ep.name, distribution=dist_name, version=dist_version, module=ep.value
            )
            if info.name in self.infos:  # two distributions chose one entry-point name
                other = self.infos[info.name]
                info.name = f"{ep.name} ({dist_name})"
                self.infos[info.name] = info
                record_failure(
                    info,
                    PluginError(
                        f"entry point name '{ep.name}' is already used by distribution "
                        f"{other.origin()}; rename the entry point in one of them"
                    ),
                    self.strict,
                )
                continue
            self._add(info, ep.load)

    def load_modules(
        self, modules: Sequence[str], untrusted: Optional[Sequence[str]] = None
    ) -> List[PluginInfo]:
        """Loads the modules a recipe names under ``plugins:`` (a module an entry point already
        loaded is not loaded twice); failures are in each returned info's ``error``.

        ``untrusted``: folders whose modules must not run (a run folder someone shared, the
        current folder) unless the caller allowed it (:attr:`allow_local_plugins`, set by
        ``odepipe --allow-plugins``); then only installed modules load. None: a recipe the
        user runs, whose local modules beside it load (the current folder is searched)."""
        infos = []
        for module in modules:
            if untrusted is None or self.allow_local_plugins:
                load = functools.partial(plugin_sources.import_local, module)
            else:
                load = functools.partial(plugin_sources.import_installed, module, untrusted)
            self._add(PluginInfo(name=module, source="recipe", module=module), load)
            infos.append(self.infos.get(module) or self._info_of_module(module))
        return infos

    def _info_of_module(self, module: str) -> PluginInfo:
        return next(i for i in self.infos.values() if i.module and i.module.split(":")[0] == module)

    def is_disabled(self, info: PluginInfo) -> bool:
        names = {info.name, info.module or "", info.distribution or ""}
        return not info.builtin and any(
            plugin_sources.normalize(n) in self.disabled for n in names if n
        )

    def _add(self, info: PluginInfo, load: Callable[[], Any]) -> None:
        """Imports, checks and registers one plugin and stages what it provides; commits it
        only when every step succeeded, else skips it whole."""
        if info.name in self.infos:
            return
        self.infos[info.name] = info
        if self.is_disabled(info):
            info.disabled = True
            return
        try:
            self._write_trace(
                f"loading plugin '{info.name}' ({info.origin()}) from {info.module or 'an object'}"
            )
            plugin = load()
            if self.pm.is_registered(plugin):  # a recipe names a module an entry point loaded
                del self.infos[info.name]
                return
            check_hookimpls(self.pm, plugin)
            self.pm.register(plugin, name=info.name)
            info.hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [])
            staged = self._collect(info.name)
            commands = self._collect_commands(info.name)
            recipes = self._collect_recipes(info.name)
        # a plugin's failure, even sys.exit() while importing, must not take odepipe down
        except (Exception, SystemExit) as exc:
            self._fail(info, exc)
            return
        for component in staged:
            self.registries[component.kind].add(component)
            info.components.append(f"{component.kind}:{component.name}")
        for name, command in commands.items():
            self.commands[name] = (info.name, command)
            info.components.append(f"commands:{name}")
        for name, text in recipes.items():
            self.plugin_recipes[name] = (info.name, text)
            info.components.append(f"recipes:{name}")

    def add_plugin(self, plugin: Any, name: Optional[str] = None) -> PluginInfo:
        """Loads an already imported plugin (a module or object) into this host, as tests and
        notebooks do; a failure is recorded in the returned info's ``error``, not warned."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if self.pm.is_registered(plugin):
            return self.infos[str(self.pm.get_name(plugin))]
        self._add(PluginInfo(name=name, source="object", module=name), lambda: plugin)
        return self.infos[name]

    def _caller(self, hook: str, plugin_name: str) -> Any:
        others = [p for n, p in self.pm.list_name_plugin() if n != plugin_name]
        return self.pm.subset_hook_caller(hook, remove_plugins=others)

    def _collect(self, plugin_name: str) -> List[Component]:
        """Calls this plugin's register hooks and validates every registration before any is
        committed, so a plugin is taken whole or not at all. Every name it offers is recorded
        on its info first, so a skipped plugin still tells what it would have provided."""
        staged: List[Component] = []
        info = self.infos[plugin_name]
        origin = f"{plugin_name} ({info.origin()})"
        for hook, kind in hookspecs.COMPONENT_HOOKS.items():
            registry = self.registries[kind]
            taken: set = set()

            def register(
                name: str,
                cls: Any,
                help: Optional[str] = None,
                *,
                _reg=registry,
                _taken=taken,
                _kind=kind,
            ) -> None:
                if isinstance(name, str):
                    info.offered.setdefault(_kind, []).append(name)
                target = cls if isinstance(cls, str) else getattr(cls, "__qualname__", cls)
                self._write_trace(f"plugin '{plugin_name}' registers {_kind} {name!r} -> {target}")
                component = _reg.check(name, cls, plugin_name, one_line(help or ""))
                if name in _taken:
                    raise RegistryError(
                        f"plugin '{plugin_name}' registered {_kind} name "
                        f"{name!r} twice; register each name once"
                    )
                _taken.add(name)
                staged.append(dataclasses.replace(component, origin=origin))

            self._caller(hook, plugin_name)(register=register)
        return staged

    def _collect_commands(self, plugin_name: str) -> Dict[str, Any]:
        """Runs this plugin's command hook and checks the names: a plugin may add commands but
        never replace one of odepipe's or another plugin's."""
        if "odepipe_register_commands" not in self.infos[plugin_name].hooks:
            return {}
        collector = CommandCollector()
        self._caller("odepipe_register_commands", plugin_name)(cli=collector)
        self.infos[plugin_name].offered["commands"] = list(collector.commands)
        for name in collector.commands:
            if name in self.reserved_commands:
                raise RegistryError(
                    f"command {name!r} is already a command of odepipe itself; "
                    f"a plugin may not replace it; rename the command"
                )
            if name in self.commands:
                raise RegistryError(
                    f"command {name!r} is added twice: by plugin "
                    f"'{self.commands[name][0]}' and by plugin '{plugin_name}'; "
                    f"rename one of them"
                )
        return collector.commands

    def _collect_recipes(self, plugin_name: str) -> Dict[str, str]:
        """Runs this plugin's recipe hook: name -> YAML text. A name that odepipe ships or
        another plugin already gave skips the whole plugin, as for commands."""
        if "odepipe_register_recipes" not in self.infos[plugin_name].hooks:
            return {}
        collector = RecipeCollector(
            plugin_name,
            self.infos[plugin_name].offered,
            {n: p for n, (p, _) in self.plugin_recipes.items()},
        )
        self._caller("odepipe_register_recipes", plugin_name)(register=collector.register)
        return collector.recipes

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin)
        record_failure(info, exc, self.strict)

    # -- queries -------------------------------------------------------------------------------
    def plugin_of(self, component: Component) -> str:
        """'name (distribution version)' of the plugin that registered ``component``."""
        info = self.infos.get(component.plugin)
        return f"{component.plugin} ({info.origin()})" if info else component.plugin

    def skipped(self) -> List[PluginInfo]:
        """The plugins that failed to load or register, in load order."""
        return [i for i in self.infos.values() if i.error]

    def why_missing(self, kind: str, name: str) -> Optional[str]:
        """Why no component ``name`` of ``kind`` (a registry kind such as ``dynamics`` or a
        recipe section such as ``data``) is registered, when a skipped plugin explains it:
        "plugin 'x' (dist 1.0) that registers it was skipped: <why>". Plugins that failed
        before registering anything (an import error) are named as possible providers. None
        when no skipped plugin could have provided it. Meant to follow the validator's
        "unknown dynamics type 'pendulum'" after a '; '."""
        kind = _registry_kind(kind)
        skipped = self.skipped()
        for info in skipped:
            if name in info.offered.get(kind, []):
                return (
                    f"plugin '{info.name}' ({info.origin()}) that registers it was skipped: "
                    f"{info.error}"
                )
        unknown = [i for i in skipped if not any(i.offered.values())]
        if not unknown:
            return None
        named = "; ".join(f"'{i.name}' ({i.origin()}): {i.error}" for i in unknown)
        return f"it may come from a plugin that failed to load: {named}"

    def recipe_text(self, name: str) -> Optional[Tuple[str, str]]:
        """(YAML text, source) of the recipe a plugin registered as ``name`` (``name.yaml``
        accepted), else None. The source reads "oscillator (plugin 'example',
        odepipe-example 0.1.0)", for error messages and ``Recipe.source``."""
        stem = name[:-5] if name.endswith(".yaml") else name
        if stem not in self.plugin_recipes:
            return None
        plugin, text = self.plugin_recipes[stem]
        return text, f"{stem} (plugin '{plugin}', {self.infos[plugin].origin()})"

    def recipes(self) -> Dict[str, str]:
        """Recipe name -> 'plugin (distribution version)' for every plugin-shipped recipe,
        sorted by name (for ``odepipe ls recipes``)."""
        return {
            n: f"{p} ({self.infos[p].origin()})"
            for n, (p, _) in sorted(self.plugin_recipes.items())
        }

    # -- tracing (ODEPIPE_TRACE_PLUGINS) --------------------------------------------------------
    def _write_trace(self, text: str) -> None:
        if self.trace:
            _trace_writer(text)

    def _impl_names(self, hook_impls: Sequence[Any]) -> str:
        names = []
        for impl in hook_impls:
            info = self.infos.get(impl.plugin_name)
            names.append(f"plugin '{impl.plugin_name}'" + (f" ({info.origin()})" if info else ""))
        return ", ".join(names) or "no plugin"

    def _trace_before(self, hook_name: str, hook_impls: Sequence[Any], kwargs: Any) -> None:
        _trace_writer(f"{hook_name}: calling {self._impl_names(hook_impls)}")

    def _trace_after(
        self, outcome: Any, hook_name: str, hook_impls: Sequence[Any], kwargs: Any
    ) -> None:
        exc = outcome.exception
        result = f"raised {type(exc).__name__}: {one_line(exc)}" if exc is not None else "done"
        _trace_writer(f"{hook_name}: {self._impl_names(hook_impls)} {result}")


def _registry_kind(kind: str) -> str:
    """A registry kind from a kind or a recipe section name."""
    for registry_kind, (_, section) in KINDS.items():
        if kind in (registry_kind, section):
            return registry_kind
    return kind


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
                problems.append(
                    f"unknown hook '{attr}'{did_you_mean(attr, list(HOOK_ARGS))}; "
                    f"hooks: {', '.join(HOOK_ARGS)}"
                )
            continue
        if not marked:
            problems.append(
                f"function '{attr}' is not marked @odepipe.hookimpl, so it would "
                f"never be called; add the decorator"
            )
            continue
        params = list(inspect.signature(func).parameters)
        if params[:1] in (["self"], ["cls"]) and not inspect.ismethod(func):
            params = params[1:]  # a class registered as the plugin: its methods' own first arg
        extra = [p for p in params if p not in HOOK_ARGS[attr]]
        if extra:
            problems.append(
                f"hook {attr}({', '.join(params)}) does not match its spec "
                f"{attr}({', '.join(HOOK_ARGS[attr])}): unknown argument(s) "
                f"{', '.join(extra)}"
            )
    if problems:
        raise PluginError("; ".join(problems))


def _trace_writer(text: str) -> None:
    for line in text.splitlines():
        sys.stderr.write(f"odepipe trace: {line}\n")
