"""Recipes a harsh user writes: non-finite and absurd numbers for every declared parameter,
YAML that is hostile (duplicate keys, anchor bombs, deep nesting, huge files) and huge values in
messages. Each one is a RecipeError that names the key, from ``validate``; never a traceback."""
from __future__ import annotations

import dataclasses
import inspect
import math
import time
import typing
from typing import Annotated, Any, Dict, List, Optional, Tuple

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import odepipe
from odepipe.cli import cli
from odepipe.errors import RecipeError
from odepipe.host import PluginHost
from odepipe.recipe import COMPONENT_SECTIONS, SUPPLIED, apply_overrides, parse_yaml, validate
from odepipe.recipe.ranges import Range, range_problem, strip_ranges
from odepipe.recipe.safe_yaml import MAX_BYTES
from odepipe.recipe.schema import SECTION_CONFIGS
from odepipe.recipe.shorten import short
from odepipe.run.build import build

from conftest import TINY_SPIRAL, tiny_recipe

HOST = PluginHost(entry_points=False)
BASE = tiny_recipe()
#: what a data type needs beside the parameter under test, to stay tiny
DATA_BASES = {
    "spiral": BASE["data"],
    "linear_spirals": {"type": "linear_spirals", "n_spirals": 8, "n_test": 4, "n_observed": 10,
                       "n_extrapolate": 5, "n_total": 20},
    "csv": {"type": "csv", "path": "data/example_series.csv"},
}
#: components built by the property test; text ones (corpus, tokenizer: heavy) are validated only
BUILT_PLUGINS = ("odepipe_plugins.latent_ode", "odepipe_plugins.series",
                 "odepipe_plugins.irregular", "odepipe_plugins.depth")


def _numeric(annotation: Any) -> bool:
    base, _ = strip_ranges(annotation)
    args = typing.get_args(base) if typing.get_origin(base) is typing.Union else (base,)
    return any(strip_ranges(a)[0] in (int, float) for a in args)


def _declared() -> List[Tuple[str, Optional[str], str, Any, Any]]:
    """(section, component type or None, parameter, annotation, default) of every numeric
    parameter of every built-in component and of the model and train sections."""
    out = []
    for section in COMPONENT_SECTIONS:
        registry = HOST.registries.for_section(section)
        for kind in registry.names():
            component = registry.get(kind)
            if not component.plugin.startswith("odepipe_plugins."):
                continue
            init = typing.cast(Any, component.cls).__init__
            hints = typing.get_type_hints(init, include_extras=True)
            for name, p in inspect.signature(init).parameters.items():
                if name != "self" and name not in SUPPLIED and _numeric(hints.get(name)):
                    out.append((section, kind, name, hints[name], p.default))
    for section, cls in SECTION_CONFIGS.items():
        hints = typing.get_type_hints(cls, include_extras=True)
        for field in dataclasses.fields(cls):
            if _numeric(hints[field.name]):
                out.append((section, None, field.name, hints[field.name], field.default))
    return out


DECLARED = _declared()
BAD = [math.nan, math.inf, -math.inf, 0, 0.0, -1, -1.0, -3, 10**30, -(10**30), 2**64, 1e300,
       -1e300, 10**5000]


def _near_default(default: Any, annotation: Any, scale: float) -> Any:
    """A valid value near the default (or the range's example), cheap to build."""
    base, ranges = strip_ranges(annotation)
    if default is None or default is inspect.Parameter.empty:
        inner = [strip_ranges(a) for a in typing.get_args(base) if a is not type(None)]
        ranges = ranges + [r for _, rs in inner for r in rs]
        default = next((r.inside() for r in ranges if r.inside() is not None), 1)
        base = inner[0][0] if inner else base
    value = default * scale
    return max(1, round(value)) if base is int else value


#: the recipe a text component (tokens only) is tested in: validation refuses series stages there
TEXT_BASE = {**BASE, "data": {"type": "grammar"}, "decoder": {"type": "text_gru"}}


def _tree(section: str, kind: Optional[str], name: str, value: Any) -> Dict[str, Any]:
    text = kind is not None and HOST.registries.for_section(section).get(kind).plugin == \
        "odepipe_plugins.text"
    tree = {k: (dict(v) if isinstance(v, dict) else v)
            for k, v in (TEXT_BASE if text else BASE).items()}
    if kind is not None:
        spec = DATA_BASES.get(kind, {"type": kind}) if section == "data" else {"type": kind}
        tree[section] = {**spec, name: value}
    else:
        tree[section] = {**tree.get(section, {}), name: value}
    return tree


def _accepts_or_names_the_key(section: str, kind: Optional[str], name: str, value: Any) -> str:
    """Validates (and, for built components, builds) one value: "ok", or a RecipeError from
    validation (an OdepipeError from building) that names the key. Any other exception, or a
    message that does not name the key, fails the test."""
    key = f"{section}.{name}"
    try:
        recipe = validate(_tree(section, kind, name, value), "prop.yaml", host=HOST)
    except RecipeError as exc:
        assert key in str(exc), (key, value, str(exc))
        assert all(len(p) < 600 for p in exc.problems), exc.problems
        return "refused"
    component = recipe.components.get(section) if kind else None
    if component is not None and not component.plugin.startswith(BUILT_PLUGINS):
        return "ok"
    try:
        build(recipe)
    except odepipe.OdepipeError as exc:  # a cross-field rule, or a solve a valid cap stopped
        assert key in str(exc), (key, value, str(exc))
        return "refused"
    return "ok"


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DECLARED), st.one_of(st.sampled_from(BAD), st.floats(0.5, 2.0)))
def test_every_declared_parameter_accepts_or_names_its_key(param, draw):
    section, kind, name, annotation, default = param
    value = draw if not isinstance(draw, float) or not 0.5 <= draw <= 2.0 \
        else _near_default(default, annotation, draw)
    _accepts_or_names_the_key(section, kind, name, value)


@pytest.mark.parametrize("param", [p for p in DECLARED if _numeric(p[3])],
                         ids=lambda p: f"{p[0]}.{p[1] or ''}.{p[2]}")
def test_non_finite_and_huge_numbers_are_refused_naming_the_key(param):
    section, kind, name, annotation, _ = param
    base, _ = strip_ranges(annotation)
    floats = float in (base, *[strip_ranges(a)[0] for a in typing.get_args(base)])
    bad = [math.nan, math.inf, -math.inf] if floats else [2**63, 10**5000]
    for value in bad:
        assert _accepts_or_names_the_key(section, kind, name, value) == "refused", value


def test_the_property_covers_components_model_and_train():
    keys = {(s, k, n) for s, k, n, _, _ in DECLARED}
    assert ("solver", "rk4", "rtol") in keys and ("data", "spiral", "noise_std") in keys
    assert ("train", None, "lr") in keys and ("model", None, "latent_dim") in keys
    assert ("solver", "resnet", "span") in keys and ("encoder", "odernn", "substeps") in keys


# -- the cases of issue 16, through `odepipe validate` -----------------------------------------
ISSUE_16 = [
    ("train.lr=.nan", "train.lr"), ("data.noise_std=.inf", "data.noise_std"),
    ("decoder.std=.nan", "decoder.std"), ("solver.step_size=.nan", "solver.step_size"),
    ("train.max_seconds=.nan", "train.max_seconds"), ("train.grad_clip=.nan", "train.grad_clip"),
    ("train.lr_min=.nan", "train.lr_min"), ("train.beta=.inf", "train.beta"),
    ("train.free_bits=.nan", "train.free_bits"), ("solver.rtol=.nan", "solver.rtol"),
    ("seed=100000000000000000000000", "seed"), ("seed=-1", "seed"),
    ("dynamics.hidden_size=0", "dynamics.hidden_size"),
    ("dynamics.hidden_size=-3", "dynamics.hidden_size"),
    ("decoder.hidden_size=0", "decoder.hidden_size"),
    ("model.latent_dim=1000000000", "model.latent_dim"),
    ("data.n_spirals=1000000000", "data.n_spirals"), ("data.n_spirals=5000000", "data.n_spirals"),
    ("encoder.hidden_size=1000000000", "encoder.hidden_size"),
    ("train.threads=100000", "train.threads"), ("train.device=cuda:99", "train.device"),
    ("solver.step_size=1e-9", "solver.step_size"), ("train.lr=1e400", "train.lr"),
]


@pytest.mark.parametrize("override,key", ISSUE_16)
def test_issue_16_values_exit_2_naming_the_key(override, key):
    result = CliRunner().invoke(cli, ["validate", "spiral", *TINY_SPIRAL, override])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # the group's exit, not an escaped error
    assert key in result.output and "Traceback" not in result.output
    assert "try " in result.output or "use " in result.output or "lower " in result.output


def test_run_refuses_what_validate_refuses_before_making_a_folder(tmp_path):
    out = tmp_path / "run"
    args = [*TINY_SPIRAL, "seed=4294967296"]
    checked = CliRunner().invoke(cli, ["validate", "spiral", *args])
    ran = CliRunner().invoke(cli, ["run", "spiral", *args, "--out", str(out), "-q"])
    assert checked.exit_code == ran.exit_code == 2
    line = next(x for x in checked.output.splitlines() if "seed must be" in x)
    assert line in ran.output and not out.exists()


def test_the_largest_seed_runs_through_validation(host):
    assert validate({**BASE, "seed": 2**32 - 1}, host=host).seed == 2**32 - 1


def test_messages_suggest_a_valid_fix(host):
    with pytest.raises(RecipeError) as err:
        validate({**BASE, "solver": {"type": "dopri5", "rtol": -1}}, host=host)
    assert "solver.rtol must be > 0 and <= 1, got -1; try solver.rtol=0.001" in str(err.value)


# -- declaring ranges --------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"ge": 1, "gt": 0}, {"le": 1, "lt": 2}, {"ge": 2, "le": 1},
                                    {"gt": math.nan}, {"le": "1"}])
def test_a_range_that_cannot_hold_is_refused_where_it_is_declared(kwargs):
    with pytest.raises(TypeError):
        Range(**kwargs)


@pytest.mark.parametrize("annotation,value,default,needle", [
    (Annotated[int, Range(ge=1, le=8)], 9, 2, "k must be >= 1 and <= 8, got 9; try k=2"),
    (Annotated[int, Range(ge=1, le=8)], 0, 99, "k must be >= 1 and <= 8, got 0; try k=1"),
    (Optional[Annotated[float, Range(gt=0, example=0.5)]], -1.0, None,
     "k must be > 0 or null, got -1.0; try k=0.5 or k=null"),
    (float, math.inf, 2.0, "k must be a finite number, got inf; try k=2"),
    (int, -(2**63) - 1, 3, "k must be an integer of 64 bits, got -9223372036854775809; try k=3"),
    (Annotated[Optional[float], Range(lt=1)], 1.0, None, "k must be < 1 or null, got 1.0"),
])
def test_range_problem_names_the_range_and_a_fix(annotation, value, default, needle):
    assert needle in range_problem("k", value, annotation, default=default)


@pytest.mark.parametrize("annotation,value", [
    (Annotated[int, Range(ge=1, le=8)], 8), (Optional[Annotated[float, Range(gt=0)]], None),
    (Annotated[float, Range(gt=0)], 1e300), (List[float], [1.0, 2.0]), (str, "x"),
])
def test_range_problem_accepts_valid_values(annotation, value):
    assert range_problem("k", value, annotation) is None


def test_direct_construction_applies_the_declared_ranges():
    from odepipe_plugins.latent_ode.solvers import SOLVERS
    from odepipe_plugins.series.spiral import SpiralData

    with pytest.raises(odepipe.ModelError, match=r"solver\.rtol must be a finite number"):
        SOLVERS["rk4"](rtol=math.nan)
    with pytest.raises(odepipe.DataError, match=r"data\.n_spirals must be >= 1"):
        SpiralData(n_spirals=0)
    with pytest.raises(odepipe.DataError, match=r"data\.n_spirals \+ data\.n_test"):
        SpiralData(n_spirals=400_000)  # within its range, but 160 M values together


def test_a_plugin_class_declares_ranges_the_validator_reads(host):
    class Stepper(odepipe.Solver):
        @odepipe.checked
        def __init__(self, gain: Annotated[float, Range(gt=0, le=10)] = 1.0):
            super().__init__()

        def forward(self, dynamics, z0, times):
            return z0.unsqueeze(1).expand(-1, len(times), -1)

    solvers = host.registries.for_section("solver")
    solvers.add(solvers.check("stepper", Stepper, plugin="tests"))
    with pytest.raises(RecipeError, match=r"solver\.gain must be > 0 and <= 10, got 11"):
        validate({**BASE, "solver": {"type": "stepper", "gain": 11}}, host=host)
    with pytest.raises(odepipe.ModelError, match=r"solver\.gain must be a finite number"):
        Stepper(gain=math.nan)
    assert validate({**BASE, "solver": {"type": "stepper", "gain": 10}}, host=host)


# -- hostile YAML ------------------------------------------------------------------------------
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


def _refused_quickly(text: str, needle: str, seconds: float = 2.0) -> str:
    start = time.perf_counter()
    with pytest.raises(RecipeError) as err:
        parse_yaml(text, "hostile.yaml")
    assert time.perf_counter() - start < seconds
    message = str(err.value)
    assert needle in message and len(message) < 600, message
    return message


def test_duplicate_keys_are_refused_naming_key_and_lines():
    message = _refused_quickly("seed: 0\ndata: {type: spiral}\nencoder: {type: gru}\n"
                               "data: {type: csv}\n", "duplicate key 'data'")
    assert "line 4" in message and "first at line 2" in message
    _refused_quickly("solver: {type: rk4, step_size: 0.1, step_size: 0.2}\n",
                     "duplicate key 'step_size'")


def test_merge_keys_may_still_be_overridden():
    tree = parse_yaml("base: &b {hidden_size: 8, num_layers: 2}\n"
                      "dynamics: {<<: *b, type: mlp, hidden_size: 16}\n", "merge.yaml")
    assert tree["dynamics"] == {"hidden_size": 16, "num_layers": 2, "type": "mlp"}


def test_an_anchor_bomb_is_refused_in_milliseconds():
    _refused_quickly(BOMB, "more than 10000 values", seconds=2.0)


def test_a_recursive_alias_is_refused():
    _refused_quickly("seed: &a [1, *a]\n", "recursive structure")


@pytest.mark.parametrize("opening,closing", [("[", "]"), ("{a: ", "}")], ids=["list", "map"])
def test_nesting_20000_deep_is_an_error_not_a_recursion_error(opening, closing):
    _refused_quickly("seed: " + opening * 20_000 + "1" + closing * 20_000, "nested deeper than")


def test_an_integer_of_thousands_of_digits_is_refused():
    _refused_quickly("seed: " + "9" * 5000 + "\n", "an integer of 5000 characters")


def test_a_huge_recipe_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("seed: [" + "1, " * (MAX_BYTES // 3 + 10) + "1]\n")
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert time.perf_counter() - start < 2.0
    assert result.exit_code == 2 and "1 MiB" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("text,needle", [
    ("seed: 0\nseed: 1\n", "duplicate key 'seed'"),
    (BOMB, "more than 10000 values"),
    ("seed: " + "[" * 20_000 + "]" * 20_000, "nested deeper than"),
], ids=["duplicate", "bomb", "deep"])
def test_hostile_files_exit_2_through_the_cli(tmp_path, text, needle):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("value,needle", [
    ("{a: 1, a: 2}", "duplicate key 'a'"),
    ("[" * 5000 + "]" * 5000, "nested deeper than"),
    ("{" + BOMB.replace("\n", ", ") + "}", "more than 10000 values"),
    ("x" * (MAX_BYTES + 1), "1 MiB"),
], ids=["duplicate", "deep", "bomb", "huge"])
def test_override_values_get_the_same_limits(value, needle):
    problems: List[str] = []
    apply_overrides(BASE, [f"train.steps={value}"], problems)
    assert len(problems) == 1 and needle in problems[0] and len(problems[0]) < 400


def test_a_huge_value_is_never_written_out_in_a_message(host):
    huge = "y" * 200_000
    with pytest.raises(RecipeError) as err:
        validate({**BASE, "train": {"steps": huge, huge: 1, "device": huge}, huge: 0,
                  "solver": {"type": huge}}, host=host)
    assert len(err.value.problems) == 5
    assert all(len(p) < 600 for p in err.value.problems), [len(p) for p in err.value.problems]


def test_short_costs_nothing_on_shared_structures():
    value: Any = ["lol"] * 9
    for _ in range(30):  # 9**30 items if expanded
        value = [value] * 9
    start = time.perf_counter()
    text = short({"k": value, "n": 10**5000})
    assert len(text) <= 80 and time.perf_counter() - start < 0.1


def test_many_problems_are_listed_up_to_a_limit(host):
    raw = {**BASE, **{f"junk{i}": 1 for i in range(200)}}
    with pytest.raises(RecipeError) as err:
        validate(raw, host=host)
    assert len(err.value.problems) == 200
    assert "and 150 more" in str(err.value) and str(err.value).count("\n") == 51


def test_loading_a_run_skips_what_only_training_needs_from_this_machine(host):
    raw = {**BASE, "train": {"device": "cuda:99", "threads": 100_000}}
    with pytest.raises(RecipeError, match="train.device=cuda:99") as err:
        validate(raw, host=host)
    assert "train.threads=100000" in str(err.value)
    assert validate(raw, host=host, machine=False).train.device == "cuda:99"
    with pytest.raises(RecipeError, match="train.device='tpu' is not one of"):
        validate({**BASE, "train": {"device": "tpu"}}, host=host, machine=False)
