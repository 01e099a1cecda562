import pytest
import yaml

from odepipe.errors import RecipeError
from odepipe.recipe import (apply_overrides, load_recipe, parse_yaml, shipped_recipes,
                            validate)

BASE = {
    "seed": 0,
    "data": {"type": "spiral", "n_spirals": 10},
    "encoder": {"type": "gru", "hidden_size": 8},
    "dynamics": {"type": "mlp"},
    "solver": {"type": "dopri5", "rtol": 1e-3},
    "decoder": {"type": "mlp"},
    "model": {"latent_dim": 4},
    "train": {"steps": 5},
}


def overridden(*items):
    problems = []
    out, _ = apply_overrides(BASE, list(items), problems)
    assert problems == []
    return out


def validated(*items, host):
    problems = []
    tree, retyped = apply_overrides(BASE, list(items), problems)
    assert problems == []
    return validate(tree, host=host, retyped=retyped)


def test_defaults_filled_and_types_kept(host):
    r = validate(BASE, host=host)
    solver = r.components["solver"]
    assert solver.type == "dopri5" and solver.plugin == "odepipe_plugins.latent_ode"
    assert solver.cls.__name__ == "Solver_dopri5"
    assert solver.params["rtol"] == 1e-3 and solver.params["adjoint"] is False
    assert r.components["encoder"].params["hidden_size"] == 8
    assert r.train.steps == 5 and r.train.lr == 1e-2


def test_resolved_recipe_round_trips(host):
    r = validate(BASE, host=host)
    again = validate(yaml.safe_load(r.to_yaml()), host=host)
    assert again.to_dict() == r.to_dict()


@pytest.mark.parametrize("items,check", [
    (["train.steps=7"], lambda d: d["train"]["steps"] == 7),
    (["solver.adjoint=true"], lambda d: d["solver"]["adjoint"] is True),
    (["solver.rtol=1e-5"], lambda d: d["solver"]["rtol"] == "1e-5"),  # YAML 1.1: a string...
    (["encoder=lstm"], lambda d: d["encoder"]["type"] == "lstm"),
    (["new.section.key=[1, 2]"], lambda d: d["new"]["section"]["key"] == [1, 2]),
    (["train.device="], lambda d: d["train"]["device"] is None),
])
def test_overrides(items, check):
    assert check(overridden(*items))


def test_string_numbers_coerced_for_float_params(host):
    r = validate(overridden("solver.rtol=1e-5"), host=host)
    assert r.components["solver"].params["rtol"] == pytest.approx(1e-5)  # ...coerced to float


def test_type_switch_keeps_compatible_params_and_drops_others(host):
    r = validated("encoder=lstm", host=host)
    assert r.components["encoder"].type == "lstm"
    assert r.components["encoder"].params["hidden_size"] == 8
    r = validated("solver=rk4", "solver.step_size=0.05", host=host)
    solver = r.components["solver"]
    assert solver.type == "rk4" and solver.params["step_size"] == 0.05
    assert "__retyped__" not in str(r.to_dict())


def test_type_switch_keeps_the_unknown_key_check_for_the_new_type(host):
    with pytest.raises(RecipeError, match="encoder.hiden_size: encoder type 'lstm' has no "
                                          "parameter 'hiden_size' .did you mean 'hidden_size'"):
        validated("encoder=lstm", "encoder.hiden_size=8", host=host)


@pytest.mark.parametrize("item", ["noequals", "=3", "a..b=1", "train.steps.x=1"])
def test_bad_overrides_reported(item):
    problems = []
    apply_overrides(BASE, [item], problems)
    assert problems and item in problems[0]


def test_all_problems_at_once(host):
    raw = overridden("encoder.hiden_size=3", "solver=dopri6", "train.steps=abc")
    with pytest.raises(RecipeError) as err:
        validate(raw, "r.yaml", host=host)
    msg = str(err.value)
    assert len(err.value.problems) == 3
    assert "encoder.hiden_size" in msg and "did you mean 'hidden_size'" in msg
    assert "solver.type" in msg and "did you mean 'dopri" in msg and "valid:" in msg
    assert "train.steps: expected int >= 1 and <= 1000000000, got str 'abc'" in msg  # with range
    assert "r.yaml" in msg


@pytest.mark.parametrize("items,needle", [
    (["train.steps=-1"], "train.steps must be >= 1"),
    (["model.latent_dim=0"], "model.latent_dim must be >= 1"),
    (["train.lr=0"], "train.lr must be > 0"),
    (["train.device=tpu"], "train.device"),
    (["traim.steps=1"], "did you mean 'train'"),
    (["train.stepz=1"], "did you mean 'steps'"),
    (["encoder.latent_dim=3"], "set by odepipe itself"),
    (["seed=-3"], "seed"),
    (["train.kl_schedule=wavy"], "'constant' | 'linear'"),
])
def test_range_and_key_errors(host, items, needle):
    with pytest.raises(RecipeError, match="problem") as err:
        validate(overridden(*items), host=host)
    assert needle in str(err.value)


def test_missing_section_names_valid_types(host):
    raw = {k: v for k, v in BASE.items() if k != "decoder"}
    with pytest.raises(RecipeError, match="decoder is missing.*linear, mlp"):
        validate(raw, host=host)


def test_yaml_syntax_error_has_line_and_column():
    with pytest.raises(RecipeError, match=r"line 3, column 1"):
        parse_yaml("seed: 0\ndata: {type: spiral\n", "bad.yaml")


def test_unsafe_yaml_tags_refused():
    with pytest.raises(RecipeError):
        parse_yaml("seed: !!python/object/apply:os.system ['echo hacked']\n", "evil.yaml")


def test_shipped_recipes_resolve_by_name_and_path():
    assert {"spiral", "spiral_reference"} <= set(shipped_recipes())
    assert load_recipe("spiral").name == "spiral"
    assert load_recipe("recipes/spiral.yaml").name == "spiral"
    with pytest.raises(RecipeError, match="did you mean 'spiral'"):
        load_recipe("spirl")
