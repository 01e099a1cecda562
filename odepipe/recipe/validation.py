"""Validation: a recipe tree (after overrides) -> one :class:`Recipe`, or one RecipeError that
lists every problem with the dotted key, what is valid and a did-you-mean.

Component parameters are bound against the registered class's ``__init__`` signature and
type-checked against its annotations (ranges declared with ``typing.Annotated``)."""
from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any, Dict, List, Optional, Sequence

from ..errors import RecipeError, RegistryError
from ..registry import did_you_mean
from .load import Retyped, apply_overrides, parse_yaml, recipe_name, resolve_path
from .resolved import COMPONENT_SECTIONS, Recipe, ResolvedComponent
from .schema import SECTION_CONFIGS, ModelConfig, TrainConfig, coerce, type_name

if typing.TYPE_CHECKING:
    from ..host import PluginHost

TOP_LEVEL = ("seed", "plugins") + COMPONENT_SECTIONS + tuple(SECTION_CONFIGS)
#: constructor arguments the pipeline supplies; a recipe may not set them on a component
SUPPLIED = ("latent_dim", "obs_dim", "vocab_size", "seed")


# -- validation --------------------------------------------------------------------------------
def _signature_params(cls: type) -> Dict[str, inspect.Parameter]:
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self", None)
    return {n: p for n, p in params.items()
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}


def _hints(cls: type) -> Dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: fall back to no type checks
        return {}


def _check_value(key: str, value: Any, annotation: Any, problems: List[str]) -> Any:
    ok, converted = coerce(value, annotation)
    if not ok:
        problems.append(f"{key}: expected {type_name(annotation)}, got "
                        f"{type(value).__name__} {value!r}")
    return converted


def _validate_component(section: str, spec: Any, host: "PluginHost", carried: Sequence[str],
                        problems: List[str]) -> Optional[ResolvedComponent]:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        problems.append(f"{section}: expected a mapping with 'type:', got {type(spec).__name__}")
        return None
    spec = dict(spec)
    registry = host.registries.for_section(section)
    kind = spec.pop("type", None)
    if kind is None:
        problems.append(f"{section}.type is missing; valid: {', '.join(registry.names())}")
        return None
    if not isinstance(kind, str) or kind not in registry:
        problems.append(f"{section}.type: unknown {section} type {kind!r}"
                        f"{did_you_mean(str(kind), registry.names())}; valid: "
                        f"{', '.join(registry.names())}")
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
        key = f"{section}.{name}"
        if name in SUPPLIED and name in accepted:
            problems.append(f"{key} is set by odepipe itself; set model.latent_dim or the data "
                            f"source instead")
        elif name not in accepted:
            if name in carried:
                continue  # a parameter of the type this section had before the override
            problems.append(f"{key}: {section} type {kind!r} has no parameter {name!r}"
                            f"{did_you_mean(str(name), settable)}; valid: "
                            f"{', '.join(settable) or '(none)'}")
        else:
            params[name] = _check_value(key, value, hints.get(name, inspect.Parameter.empty),
                                        problems)
    for name in settable:
        p = accepted[name]
        if name not in params:
            if p.default is inspect.Parameter.empty:
                problems.append(f"{section}.{name} is required for {section} type {kind!r}")
            else:
                params[name] = p.default
    return ResolvedComponent(section, kind, cls, component.plugin, params)


def _validate_config(section: str, value: Any, cls: type, problems: List[str]) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(f"{section}: expected a mapping, got {type(value).__name__}")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, v in value.items():
        if name not in fields:
            problems.append(f"{section}.{name}: unknown key{did_you_mean(str(name), list(fields))}; "
                            f"valid: {', '.join(fields)}")
            continue
        before = len(problems)
        converted = _check_value(f"{section}.{name}", v, hints[name], problems)
        if len(problems) == before:
            kwargs[name] = converted
    config = cls(**kwargs)
    problems.extend(config.check())
    return config


def validate(raw: Dict[str, Any], source: str = "<recipe>",
             host: Optional["PluginHost"] = None, name: Optional[str] = None,
             retyped: Optional[Retyped] = None) -> Recipe:
    """Checks a recipe tree (after overrides) and returns the resolved Recipe, or raises one
    RecipeError listing every problem.

    Args:
        host: the process's plugin host (a fresh one with every installed plugin when None);
            the modules the recipe names under ``plugins:`` are loaded into it.
        retyped: from :func:`apply_overrides`: parameters a type override carried over.
    """
    problems: List[str] = []
    for key in raw:
        if key not in TOP_LEVEL:
            problems.append(f"{key}: unknown section{did_you_mean(str(key), list(TOP_LEVEL))}; "
                            f"valid: {', '.join(TOP_LEVEL)}")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        problems.append(f"seed: expected a non-negative int, got {seed!r}")
        seed = 0
    plugins = raw.get("plugins") or []
    if not (isinstance(plugins, list) and all(isinstance(p, str) and p for p in plugins)):
        problems.append(f"plugins: expected a list of module names, got {plugins!r}")
        plugins = []
    if host is None:
        from ..host import PluginHost

        host = PluginHost()
    for info in host.load_modules(plugins):
        if info.error:
            problems.append(f"plugins: module {info.name!r} failed to load: {info.error}")
    components = {}
    for section in COMPONENT_SECTIONS:
        if section not in raw:
            registry = host.registries.for_section(section)
            problems.append(f"{section} is missing; add '{section}: {{type: NAME}}' with NAME one "
                            f"of: {', '.join(registry.names())}")
            continue
        result = _validate_component(section, raw[section], host,
                                     sorted((retyped or {}).get(section, ())), problems)
        if result is not None:
            components[section] = result
    model = _validate_config("model", raw.get("model"), ModelConfig, problems)
    train = _validate_config("train", raw.get("train"), TrainConfig, problems)
    if problems:
        raise RecipeError(problems, source)
    return Recipe(name=name or "recipe", seed=seed, plugins=list(plugins), components=components,
                  model=model, train=train, source=source)


def load_recipe(recipe: str, overrides: Sequence[str] = (),
                host: Optional["PluginHost"] = None) -> Recipe:
    """Reads a recipe (path or shipped name), applies overrides and validates it against the
    components of ``host`` (see :func:`validate`)."""
    text, source = resolve_path(recipe)
    raw = parse_yaml(text, source)
    problems: List[str] = []
    raw, retyped = apply_overrides(raw, overrides, problems)
    try:
        result = validate(raw, source, host=host, name=recipe_name(recipe), retyped=retyped)
    except RecipeError as exc:
        raise RecipeError(problems + exc.problems, source) from None
    if problems:
        raise RecipeError(problems, source)
    return result


