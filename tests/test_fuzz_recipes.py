"""Property tests: whatever a user types, the outcome is a run setup that repeats from its own
resolved recipe, or an error whose every problem names where it is; never another exception."""
import math
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odepipe.errors import OdepipeError, RecipeError
from odepipe.host import PluginHost
from odepipe.recipe import TOP_LEVEL, Recipe, apply_overrides, validate
from odepipe.recipe.shorten import name
from odepipe.run.build import build

from conftest import tiny_recipe

# `plugins:` (which imports the modules it names, by design) is left out of the random keys
HOST = PluginHost(entry_points=False)
BASE = tiny_recipe()

KEYS = ["seed", "data", "data.type", "data.n_spirals", "data.noise_std", "data.n_observed",
        "data.n_irregular", "encoder", "encoder.type", "encoder.hidden_size",
        "encoder.num_layers", "encoder.dropout", "dynamics.activation", "dynamics.num_layers",
        "dynamics.time_dependent", "solver", "solver.type", "solver.rtol", "solver.step_size",
        "solver.adjoint", "solver.max_num_steps", "decoder.type", "decoder.std",
        "decoder.learn_std", "model.latent_dim", "model.variational", "train.steps",
        "train.lr", "train.kl_schedule", "train.device", "train.grad_clip",
        "nonsense", "train.nonsense.deeper"]
SCALARS = st.one_of(st.integers(-3, 12), st.floats(-2, 2),
                    st.sampled_from([math.nan, math.inf, -math.inf, 10**30, 2**64, 1e300]),
                    st.booleans(),
                    st.none(), st.sampled_from(["gru", "lstm", "rk4", "dopri5", "mlp", "tanh",
                                                "", "1e-3", "auto", "cuda", "[1, 2]", "{a: 1}",
                                                "x: y: z", "!!python/name:os.system", "'"]))
VALUE_TEXT = st.one_of(SCALARS.map(lambda v: yaml.safe_dump(v).strip().removesuffix("...").strip()),
                       st.text(string.printable, max_size=12))
OVERRIDE = st.one_of(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), VALUE_TEXT),
                     st.text(string.printable, max_size=20))


def outcome(raw, overrides=()):
    """The built setup's Recipe, or the list of problems of the error that refused it."""
    problems = []
    tree, retyped = apply_overrides(raw, list(overrides), problems)
    try:
        recipe = validate(tree, "fuzz.yaml", host=HOST, retyped=retyped)
    except RecipeError as exc:
        return problems + exc.problems
    if problems:
        return problems
    try:
        build(recipe)
    except RecipeError as exc:
        return exc.problems
    except OdepipeError as exc:  # e.g. a solver stopped by a valid but tiny cap
        return [str(exc)]
    return recipe


def check(result, raw, overrides=()):
    """A setup validates again, identically, from its resolved YAML; an error lists problems
    that each start with the key, section or override they are about, in a short line."""
    if isinstance(result, Recipe):
        again = validate(yaml.safe_load(result.to_yaml()), "again.yaml", host=HOST)
        assert again.to_dict() == result.to_dict()
        return
    where = {*TOP_LEVEL, "override", "YAML", *(name(k) for k in raw if name(k))}
    keys = [o.split("=", 1)[0].strip() for o in overrides]
    where |= {k.split(".")[0] for k in keys if k}
    assert result, "a refused recipe names at least one problem"
    for problem in result:
        assert 0 < len(problem) < 1000, problem
        assert any(problem.startswith(w) for w in where), (problem, sorted(where))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OVERRIDE, max_size=4))
def test_random_overrides_give_a_setup_or_a_recipe_error(overrides):
    check(outcome(BASE, overrides), BASE, overrides)


TREE = st.recursive(SCALARS | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=6) | st.integers(), children, max_size=3),
                    max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(list(BASE) + ["junk"]), TREE, max_size=4))
def test_random_recipe_trees_give_a_setup_or_a_recipe_error(changes):
    raw = {**BASE, **changes}
    check(outcome(raw), raw)


def test_the_base_recipe_is_a_valid_setup():
    assert isinstance(outcome(BASE), Recipe)


def test_a_refused_override_is_reported_by_name():
    result = outcome(BASE, ["solver.rtol=.nan"])
    assert result == ["solver.rtol must be a finite number > 0 and <= 1, got nan; try "
                      "solver.rtol=0.001"]
