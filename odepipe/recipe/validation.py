"""Validation: a recipe tree (after overrides) -> one :class:`Recipe`, or one RecipeError that
lists every problem with the dotted key, what is valid and a did-you-mean.

Component parameters are bound against the registered class's ``__init__`` signature and
type-checked against its annotations; numbers are then checked against the ranges declared
with ``typing.Annotated[..., Range(...)]`` (:mod:`.ranges`) and refused when not finite. Values
are shown in messages through :mod:`.shorten`, so a message stays short whatever was written."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any, Dict, List, Optional, Sequence

from ..errors import RecipeError, RegistryError
from ..registry import did_you_mean
from ..supports import support_problems
from .footprint import footprint_problems
from .load import Retyped, apply_overrides, parse_yaml, recipe_name, resolve_path
from .ranges import EMPTY, range_problem, suggested_fix
from .resolved import COMPONENT_SECTIONS, Recipe, ResolvedComponent
from .schema import SECTION_CONFIGS, ModelConfig, Seed, TrainConfig, coerce, type_name
from .shorten import name as shown_key
from .shorten import short

if typing.TYPE_CHECKING:
    from ..host import PluginHost

TOP_LEVEL = ("seed", "plugins") + COMPONENT_SECTIONS + tuple(SECTION_CONFIGS)
#: constructor arguments the pipeline supplies; a recipe may not set them on a component
SUPPLIED = ("latent_dim", "obs_dim", "vocab_size", "seed")


# -- validation --------------------------------------------------------------------------------
def _init(cls: type) -> Any:
    """The constructor whose signature a recipe section binds against."""
    return typing.cast(Any, cls).__init__


def _signature_params(cls: type) -> Dict[str, inspect.Parameter]:
    params = dict(inspect.signature(_init(cls)).parameters)
    params.pop("self", None)
    return {
        n: p
        for n, p in params.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }


def _hints(cls: type) -> Dict[str, Any]:
    try:
        return typing.get_type_hints(_init(cls), include_extras=True)
    except Exception:  # unresolvable annotations: fall back to no type checks
        return {}


def _check_value(
    key: str, value: Any, annotation: Any, problems: List[str], default: Any = EMPTY
) -> Any:
    """The value converted to its type; a wrong type, a non-finite number or one outside its
    declared range adds a problem naming ``key``."""
    ok, converted = coerce(value, annotation)
    if not ok:
        problems.append(
            f"{key}: expected {type_name(annotation)}, got {type(value).__name__} {short(value)}"
            f"{suggested_fix(key, annotation, default)}"
        )
        return converted
    problem = range_problem(key, converted, annotation, default, shown=value)
    if problem:
        problems.append(problem)
    return converted


def _validate_component(
    section: str, spec: Any, host: "PluginHost", carried: Sequence[str], problems: List[str]
) -> Optional[ResolvedComponent]:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        problems.append(
            f"{section}: expected a mapping with 'type:', got {type(spec).__name__} {short(spec)}"
        )
        return None
    spec = dict(spec)
    registry = host.registries.for_section(section)
    kind = spec.pop("type", None)
    if kind is None:
        problems.append(f"{section}.type is missing; valid: {', '.join(registry.names())}")
        return None
    if not isinstance(kind, str) or kind not in registry:
        why = host.why_missing(section, str(kind))
        problems.append(
            f"{section}.type: unknown {section} type {short(kind)}"
            f"{did_you_mean(shown_key(kind), registry.names())}; valid: "
            f"{', '.join(registry.names())}" + (f"; {why}" if why else "")
        )
        return None
    component = registry.get(kind)
    try:
        cls = component.cls
    except RegistryError as exc:
        problems.append(f"{section}.type: {exc}")
        return None
    accepted = _signature_params(cls)
    hints = _hints(cls)
    params: Dict[str, Any] = {}
    settable = [n for n in accepted if n not in SUPPLIED]
    for name, value in spec.items():
        key = f"{section}.{shown_key(name)}"
        if name in SUPPLIED and name in accepted:
            problems.append(
                f"{key} is set by odepipe itself; set model.latent_dim or the data source instead"
            )
        elif name not in accepted:
            if name in carried:
                continue  # a parameter of the type this section had before the override
            problems.append(
                f"{key}: {section} type {kind!r} has no parameter "
                f"{short(name)}{did_you_mean(shown_key(name), settable)}; valid: "
                f"{', '.join(settable) or '(none)'}"
            )
        else:
            params[name] = _check_value(
                key, value, hints.get(name, EMPTY), problems, accepted[name].default
            )
    for name in settable:
        p = accepted[name]
        if name not in params:
            if p.default is inspect.Parameter.empty:
                problems.append(f"{section}.{name} is required for {section} type {kind!r}")
            else:
                params[name] = p.default
    return ResolvedComponent(section, kind, cls, component.plugin, params)


def _validate_config(
    section: str, value: Any, cls: type, problems: List[str], machine: bool = True
) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(f"{section}: expected a mapping, got {type(value).__name__} {short(value)}")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {}
    for name, v in value.items():
        if name not in fields:
            problems.append(
                f"{section}.{shown_key(name)}: unknown key"
                f"{did_you_mean(shown_key(name), list(fields))}; "
                f"valid: {', '.join(fields)}"
            )
            continue
        before = len(problems)
        converted = _check_value(
            f"{section}.{name}", v, hints[name], problems, fields[name].default
        )
        if len(problems) == before:
            kwargs[name] = converted
    config = cls(**kwargs)
    problems.extend(config.check(machine))
    return config


def _plugin_problem(module: str, error: str) -> str:
    """A ``plugins:`` module that did not load, with the fix when the module is missing."""
    error = error[len("failed to load: ") :] if error.startswith("failed to load: ") else error
    fix = ""
    if error.startswith("ModuleNotFoundError") and repr(module) in error:
        fix = (
            f"; put {module}.py beside the recipe or in the current folder, install the "
            f"package that provides it, or remove it from plugins:"
        )
    return f"plugins: module {short(module)} failed to load: {error}{fix}"


def validate(
    raw: Dict[str, Any],
    source: str = "<recipe>",
    host: Optional["PluginHost"] = None,
    name: Optional[str] = None,
    retyped: Optional[Retyped] = None,
    machine: bool = True,
    untrusted: Optional[Sequence[str]] = None,
) -> Recipe:
    """Checks a recipe tree (after overrides) and returns the resolved Recipe, or raises one
    RecipeError listing every problem.

    Args:
        host: the process's plugin host (a fresh one with every installed plugin when None);
            the modules the recipe names under ``plugins:`` are loaded into it.
        retyped: from :func:`apply_overrides`: parameters a type override carried over.
        untrusted: folders whose modules ``plugins:`` may not import (see
            :meth:`PluginHost.load_modules`): given when a run folder is loaded.
        machine: also check what this machine must provide to train it (``train.device``
            exists here, ``train.threads`` fits its CPUs); False when a run is only loaded
            (its model goes to the device the caller names, whatever it trained on).
    """
    problems: List[str] = []
    for key in raw:
        if key not in TOP_LEVEL:
            problems.append(
                f"{shown_key(key)}: unknown section"
                f"{did_you_mean(shown_key(key), list(TOP_LEVEL))}; "
                f"valid: {', '.join(TOP_LEVEL)}"
            )
    before = len(problems)
    seed = _check_value("seed", raw.get("seed", 0), Seed, problems, 0)
    if len(problems) > before:
        seed = 0
    plugins = raw.get("plugins") or []
    if not (isinstance(plugins, list) and all(isinstance(p, str) and p for p in plugins)):
        problems.append(f"plugins: expected a list of module names, got {short(plugins)}")
        plugins = []
    if host is None:
        from ..host import PluginHost

        host = PluginHost()
    for info in host.load_modules(plugins, untrusted):
        if info.error:
            problems.append(_plugin_problem(info.name, info.error))
    components = {}
    for section in COMPONENT_SECTIONS:
        if section not in raw:
            registry = host.registries.for_section(section)
            problems.append(
                f"{section} is missing; add '{section}: {{type: NAME}}' with NAME one "
                f"of: {', '.join(registry.names())}"
            )
            continue
        result = _validate_component(
            section, raw[section], host, sorted((retyped or {}).get(section, ())), problems
        )
        if result is not None:
            components[section] = result
    problems.extend(support_problems(components, host.registries))
    model = _validate_config("model", raw.get("model"), ModelConfig, problems)
    train = _validate_config("train", raw.get("train"), TrainConfig, problems, machine)
    if not problems:  # sizes are valid one by one; now what they hold together
        problems.extend(footprint_problems(components, model.latent_dim))
    if problems:
        raise RecipeError(problems, source)
    return Recipe(
        name=name or "recipe",
        seed=seed,
        plugins=list(plugins),
        components=components,
        model=model,
        train=train,
        source=source,
    )


def load_recipe(
    recipe: str,
    overrides: Sequence[str] = (),
    host: Optional["PluginHost"] = None,
    machine: bool = True,
    untrusted: Optional[Sequence[str]] = None,
) -> Recipe:
    """Reads a recipe (path or shipped name), applies overrides and validates it against the
    components of ``host`` (see :func:`validate`, also for ``machine``)."""
    if host is None:
        from ..host import PluginHost

        host = PluginHost()
    text, source = resolve_path(recipe, host)
    raw = parse_yaml(text, source)
    problems: List[str] = []
    raw, retyped = apply_overrides(raw, overrides, problems)
    try:
        result = validate(
            raw,
            source,
            host=host,
            name=recipe_name(recipe),
            retyped=retyped,
            machine=machine,
            untrusted=untrusted,
        )
    except RecipeError as exc:
        raise RecipeError(problems + exc.problems, source) from None
    if problems:
        raise RecipeError(problems, source)
    return result
