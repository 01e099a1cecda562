"""Recipes: YAML (safe) + ``key.sub=value`` overrides -> one validated :class:`Recipe`.

Validation runs before anything heavy and reports every problem at once, each with the dotted
key, what is valid and a did-you-mean. Component parameters are bound against the registered
class's ``__init__`` signature and type-checked against its annotations.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import inspect
import os
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .config import SECTION_CONFIGS, ModelConfig, TrainConfig, coerce, type_name
from .errors import RecipeError
from .registry import KINDS, did_you_mean

#: recipe sections that name a registered component with ``type:``
COMPONENT_SECTIONS = tuple(section for _, section in KINDS.values())
TOP_LEVEL = ("seed", "plugins") + COMPONENT_SECTIONS + tuple(SECTION_CONFIGS)
#: constructor arguments the pipeline supplies; a recipe may not set them on a component
SUPPLIED = ("latent_dim", "obs_dim", "vocab_size", "seed")


@dataclasses.dataclass
class Recipe:
    """A validated recipe. ``components`` maps section -> (type, params with defaults filled)."""

    name: str
    seed: int
    plugins: List[str]
    components: Dict[str, Tuple[str, Dict[str, Any]]]
    model: ModelConfig
    train: TrainConfig
    source: str = "<recipe>"

    def to_dict(self) -> Dict[str, Any]:
        """The resolved recipe, every default written out, so it repeats the run exactly."""
        out: Dict[str, Any] = {"seed": self.seed}
        if self.plugins:
            out["plugins"] = list(self.plugins)
        for section in COMPONENT_SECTIONS:
            kind, params = self.components[section]
            out[section] = {"type": kind, **params}
        out["model"] = dataclasses.asdict(self.model)
        out["train"] = dataclasses.asdict(self.train)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# -- finding and reading -----------------------------------------------------------------------
def shipped_recipes() -> List[str]:
    """Names of the recipes shipped inside the package."""
    files = importlib.resources.files("odepipe.recipes")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def resolve_path(recipe: str) -> Tuple[str, str]:
    """(text, source) of a recipe given as a path or a shipped recipe's name."""
    path = Path(recipe)
    if path.is_dir() and (path / "recipe.yaml").is_file():
        path = path / "recipe.yaml"
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise RecipeError([f"cannot read {path}: {exc}"]) from exc
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if name in shipped_recipes() and (len(path.parts) == 1 or not path.parent.exists()
                                      or path.parent.name == "recipes"):
        text = importlib.resources.files("odepipe.recipes").joinpath(name + ".yaml").read_text()
        return text, f"{name} (shipped)"
    names = shipped_recipes()
    raise RecipeError([f"no recipe file {recipe!r}{did_you_mean(name, names)}; give a path to a "
                       f"YAML file or a shipped recipe: {', '.join(names)}"])


def parse_yaml(text: str, source: str) -> Dict[str, Any]:
    """Safe YAML only; a syntax error names its line and column."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise RecipeError([f"YAML syntax error at {where}: {exc.problem or exc}"], source) from None
    except yaml.YAMLError as exc:
        raise RecipeError([f"YAML error: {exc}"], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([f"a recipe must be a mapping of sections, got {type(data).__name__}"],
                          source)
    return data


# -- overrides ---------------------------------------------------------------------------------
def apply_overrides(raw: Dict[str, Any], overrides: Sequence[str],
                    problems: List[str]) -> Dict[str, Any]:
    """Applies ``key.sub=value`` overrides (values parsed by ``yaml.safe_load``).

    ``encoder=lstm`` is shorthand for a new component type; parameters of the old type that the
    new one does not accept are dropped later by validation (see :func:`validate`)."""
    data = copy.deepcopy(raw)
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            problems.append(f"override {item!r} is not KEY=VALUE (for example train.steps=100)")
            continue
        key, text = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if not key or any(not p for p in parts):
            problems.append(f"override {item!r} has an empty key part; write e.g. solver.rtol=1e-3")
            continue
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text  # a plain string that YAML cannot read, e.g. "a: b: c"
        if len(parts) == 1 and parts[0] in COMPONENT_SECTIONS and isinstance(value, str):
            old = data.get(parts[0]) if isinstance(data.get(parts[0]), dict) else {}
            data[parts[0]] = {**old, "type": value, "__retyped__": old.get("type") != value}
            continue
        node = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                if part in node and node[part] is not None:
                    problems.append(f"override {item!r}: {'.'.join(parts[:i + 1])} is not a mapping")
                    break
                node[part] = {}
            node = node[part]
        else:
            node[parts[-1]] = value
    return data


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


def _validate_component(section: str, spec: Any, host: Any,
                        problems: List[str]) -> Optional[Tuple[str, Dict[str, Any]]]:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        problems.append(f"{section}: expected a mapping with 'type:', got {type(spec).__name__}")
        return None
    spec = dict(spec)
    retyped = spec.pop("__retyped__", False)
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
    cls = registry.get(kind).cls
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
            if retyped:
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
    return kind, params


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


def validate(raw: Dict[str, Any], source: str = "<recipe>", host: Any = None,
             name: Optional[str] = None) -> Recipe:
    """Checks a recipe tree (after overrides) and returns the Recipe, or raises one RecipeError
    listing every problem."""
    from .plugins import load_plugins

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
        host = load_plugins(tuple(plugins))
        for plugin in plugins:
            info = host.infos.get(plugin)
            if info is not None and info.error:
                problems.append(f"plugins: module {plugin!r} failed to load: {info.error}")
    components = {}
    for section in COMPONENT_SECTIONS:
        if section not in raw:
            registry = host.registries.for_section(section)
            problems.append(f"{section} is missing; add '{section}: {{type: NAME}}' with NAME one "
                            f"of: {', '.join(registry.names())}")
            continue
        result = _validate_component(section, raw[section], host, problems)
        if result is not None:
            components[section] = result
    model = _validate_config("model", raw.get("model"), ModelConfig, problems)
    train = _validate_config("train", raw.get("train"), TrainConfig, problems)
    if problems:
        raise RecipeError(problems, source)
    return Recipe(name=name or "recipe", seed=seed, plugins=list(plugins), components=components,
                  model=model, train=train, source=source)


def load_recipe(recipe: str, overrides: Sequence[str] = ()) -> Recipe:
    """Reads a recipe (path or shipped name), applies overrides and validates it."""
    text, source = resolve_path(recipe)
    raw = parse_yaml(text, source)
    problems: List[str] = []
    raw = apply_overrides(raw, overrides, problems)
    try:
        result = validate(raw, source, name=_recipe_name(recipe))
    except RecipeError as exc:
        raise RecipeError(problems + exc.problems, source) from None
    if problems:
        raise RecipeError(problems, source)
    return result


def _recipe_name(recipe: str) -> str:
    path = Path(recipe)
    if path.is_dir() or path.name == "recipe.yaml":
        parent = path if path.is_dir() else path.parent
        return parent.name.rsplit("-", 2)[0] if parent.name else "recipe"
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    return stem.replace(os.sep, "_") or "recipe"
