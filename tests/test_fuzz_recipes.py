"""Property tests: whatever a user types, the outcome is a run setup or a RecipeError."""
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odepipe.run.build import build
from odepipe.errors import OdepipeError, RecipeError
from odepipe.host import PluginHost
from odepipe.recipe import apply_overrides, validate

# `plugins:` (which imports the modules it names, by design) is left out of the random keys
HOST = PluginHost(entry_points=False)
BASE = yaml.safe_load("""
seed: 0
data: {type: spiral, n_spirals: 8, n_test: 4, n_observed: 10, n_extrapolate: 5, n_total: 40}
encoder: {type: gru, hidden_size: 4}
dynamics: {type: mlp, hidden_size: 4}
solver: {type: rk4, step_size: 0.5}
decoder: {type: mlp, hidden_size: 4}
model: {latent_dim: 2}
train: {steps: 1, batch_size: 4}
""")

KEYS = ["seed", "data", "data.type", "data.n_spirals", "data.noise_std", "data.n_observed",
        "data.n_irregular", "encoder", "encoder.type", "encoder.hidden_size",
        "encoder.num_layers", "encoder.dropout", "dynamics.activation", "dynamics.num_layers",
        "dynamics.time_dependent", "solver", "solver.type", "solver.rtol", "solver.step_size",
        "solver.adjoint", "solver.max_num_steps", "decoder.type", "decoder.std",
        "decoder.learn_std", "model.latent_dim", "model.variational", "train.steps",
        "train.lr", "train.kl_schedule", "train.device", "train.grad_clip",
        "nonsense", "train.nonsense.deeper"]
SCALARS = st.one_of(st.integers(-3, 12), st.floats(-2, 2), st.just(float("nan")), st.booleans(),
                    st.none(), st.sampled_from(["gru", "lstm", "rk4", "dopri5", "mlp", "tanh",
                                                "", "1e-3", "auto", "cuda", "[1, 2]", "{a: 1}",
                                                "x: y: z", "!!python/name:os.system", "'"]))
VALUE_TEXT = st.one_of(SCALARS.map(lambda v: yaml.safe_dump(v).strip().removesuffix("...").strip()),
                       st.text(string.printable, max_size=12))
OVERRIDE = st.one_of(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), VALUE_TEXT),
                     st.text(string.printable, max_size=20))


def outcome(raw, overrides=()):
    problems = []
    try:
        tree, retyped = apply_overrides(raw, list(overrides), problems)
        recipe = validate(tree, "fuzz.yaml", host=HOST, retyped=retyped)
    except RecipeError:
        return "error"
    if problems:
        return "error"
    try:
        build(recipe)
    except OdepipeError:
        return "error"
    return "ok"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OVERRIDE, max_size=4))
def test_random_overrides_give_a_setup_or_a_recipe_error(overrides):
    assert outcome(BASE, overrides) in ("ok", "error")


TREE = st.recursive(SCALARS | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=6) | st.integers(), children, max_size=3),
                    max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(list(BASE) + ["junk"]), TREE, max_size=4))
def test_random_recipe_trees_give_a_setup_or_a_recipe_error(changes):
    raw = {**BASE, **changes}
    assert outcome(raw) in ("ok", "error")


def test_the_base_recipe_is_a_valid_setup():
    assert outcome(BASE) == "ok"
