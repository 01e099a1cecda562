"""odepipe.testing.check_run: a whole run in-process passes on the example plugin and names the
hook that broke in a plugin whose ``plot`` (or ``evaluate``) raises."""
from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

import odepipe
from odepipe import testing
from odepipe.testing import ContractError

RECIPE = Path(__file__).resolve().parent / "example_plugin" / "odepipe_example" / "oscillator.yaml"
TINY = ["data.n_series=8", "data.n_test=4", "data.n_observed=8", "data.n_extrapolate=4",
        "train.batch_size=4", "train.eval_batch_size=4", "train.threads=1", "train.device=cpu",
        "encoder.hidden_size=4", "decoder.hidden_size=4"]

pytestmark = pytest.mark.usefixtures("plugin_env")


def test_check_run_passes_on_the_example_plugin_and_its_shipped_recipe(tmp_path, example_plugin):
    """The recipe the plugin ships (odepipe_register_recipes), as the host gives it by name."""
    import yaml

    from odepipe.host import PluginHost

    host = PluginHost(entry_points=False)
    host.add_plugin(example_plugin)
    text, source = host.recipe_text("oscillator")
    assert text == RECIPE.read_text(encoding="utf-8")
    assert "plugin 'odepipe_example.plugin'" in source
    result = testing.check_run(yaml.safe_load(text), tmp_path, steps=2, overrides=TINY,
                               host=host)
    assert result.summary["steps"] == 3  # two steps, then one more by resuming
    assert result.checked[:3] == ["train", "final evaluation", "load_run"]
    for step in ("evaluate", "plot", "extrapolate", "extrapolate command (series codec)", "state",
                 "resume"):
        assert step in result.checked
    assert "does not support sampling" in result.skipped["sample"]
    assert (Path(result.run_dir) / "checkpoint.pt").is_file()


def _broken_source(method: str):
    from odepipe_example.oscillator import DampedOscillator

    def broken(self, *args, **kwargs):
        raise ValueError(f"{method} is broken on purpose")

    return type("BrokenOscillator", (DampedOscillator,), {method: broken})


def _plugin_with(cls) -> types.ModuleType:
    module = types.ModuleType("broken_hook_plugin")

    @odepipe.hookimpl
    def odepipe_register_data_sources(register):
        register("broken_oscillator", cls)

    module.odepipe_register_data_sources = odepipe_register_data_sources
    return module


RECIPE_DICT = {
    "data": {"type": "broken_oscillator", "n_series": 8, "n_test": 4, "n_observed": 6,
             "n_extrapolate": 2},
    "encoder": {"type": "gru", "hidden_size": 4},
    "dynamics": {"type": "mlp", "hidden_size": 4},
    "solver": {"type": "rk4", "step_size": 0.5},
    "decoder": {"type": "mlp", "hidden_size": 4},
    "model": {"latent_dim": 2},
    "train": {"batch_size": 4, "eval_batch_size": 4, "threads": 1, "device": "cpu"},
}


@pytest.mark.parametrize("method", ["plot", "evaluate"])
def test_check_run_names_the_hook_that_raised(tmp_path, method):
    plugin = _plugin_with(_broken_source(method))
    with pytest.raises(ContractError, match=rf"^BrokenOscillator\.{method} raised ValueError: "
                                            rf"{method} is broken on purpose$"):
        testing.check_run(RECIPE_DICT, tmp_path, plugin=plugin)


def test_check_run_names_a_stage_forward_that_raises(tmp_path):
    class Exploding(odepipe.Dynamics):
        def __init__(self, latent_dim: int):
            super().__init__()
            self.lin = torch.nn.Linear(latent_dim, latent_dim)

        def forward(self, t, z):
            raise RuntimeError("field exploded")

    module = types.ModuleType("exploding_plugin")

    @odepipe.hookimpl
    def odepipe_register_dynamics(register):
        register("exploding", Exploding)

    module.odepipe_register_dynamics = odepipe_register_dynamics
    recipe = {**RECIPE_DICT, "data": {"type": "spiral", "n_spirals": 8, "n_test": 4},
              "dynamics": {"type": "exploding"}}
    with pytest.raises(ContractError, match=r"Exploding\.forward raised RuntimeError: field "
                                            r"exploded"):
        testing.check_run(recipe, tmp_path, plugin=module)


def test_check_run_refuses_a_recipe_that_does_not_validate(tmp_path):
    with pytest.raises(ContractError, match="(?s)the recipe does not validate:.*unknown data type"):
        testing.check_run({**RECIPE_DICT, "data": {"type": "no_such_source"}}, tmp_path)
