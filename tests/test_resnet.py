"""The resnet solver: Euler with per-layer weights, checked against torchdiffeq's euler."""
from __future__ import annotations

import os

import pytest
import torch
import torchdiffeq

import odepipe
from odepipe.recipe import load_recipe
from odepipe.run.train import train
from odepipe_plugins.latent_ode.dynamics import MLPDynamics
from odepipe_plugins.depth.resnet import ResNetSolver

from conftest import TINY_SPIRAL


def _solver(layers, dynamics, **kw):
    solver = ResNetSolver(layers=layers, **kw)
    solver.prepare(dynamics)
    return solver


@pytest.mark.parametrize("layers", [1, 7, 50])
def test_equal_copies_match_torchdiffeq_euler_on_the_same_grid(layers):
    dyn = MLPDynamics(latent_dim=3, hidden_size=8, time_dependent=True)
    solver = _solver(layers, dyn)
    z0 = torch.randn(5, 3)
    times = torch.sort(torch.rand(9) * 2.0).values  # irregular outputs between grid points
    grid = torch.tensor(solver.grid(times[0].item(), times[-1].item()))
    assert len(grid) == layers + 1
    expected = torchdiffeq.odeint(dyn, z0, times, method="euler",
                                  options={"grid_constructor": lambda f, y0, t: grid})
    got = solver(dyn, z0, times)  # (B, T, L)
    assert got.shape == (5, 9, 3)
    torch.testing.assert_close(got, expected.transpose(0, 1), rtol=1e-5, atol=1e-6)
    assert solver.nfe_forward == layers


def test_layers_have_their_own_weights_and_gradients():
    torch.manual_seed(0)
    dyn = MLPDynamics(latent_dim=2, hidden_size=4)
    solver = _solver(4, dyn)
    shapes = {k: tuple(v.shape) for k, v in solver.state_dict().items()}
    assert shapes["weights.net__0__weight"] == (4, 4, 2)  # K copies of a (4, 2) weight
    solver(dyn, torch.randn(3, 2), torch.linspace(0, 1, 5)).pow(2).sum().backward()
    grad = solver.weights["net__0__weight"].grad
    assert all(grad[k].abs().sum() > 0 for k in range(4))
    assert not torch.allclose(grad[0], grad[3])  # each layer gets its own gradient
    assert all(p.grad is None for p in dyn.parameters())  # the shared field is not used


def test_independent_init_differs_and_copy_init_does_not():
    dyn = MLPDynamics(latent_dim=2, hidden_size=4)
    same = _solver(3, dyn).weights["net__0__weight"]
    fresh = _solver(3, dyn, independent_init=True).weights["net__0__weight"]
    assert torch.equal(same[0], same[2]) and torch.equal(same[0], dyn.net[0].weight)
    assert not torch.equal(fresh[0], fresh[2])


def test_span_fixes_the_step_and_reuses_the_last_layer_beyond_it():
    dyn = MLPDynamics(latent_dim=2, hidden_size=4)
    solver = _solver(4, dyn, span=1.0)  # dt = 0.25
    short = solver(dyn, torch.ones(1, 2), torch.tensor([0.0, 1.0]))
    assert solver.nfe_forward == 4
    solver.reset_nfe()
    long = solver(dyn, torch.ones(1, 2), torch.tensor([0.0, 1.0, 2.0]))
    assert solver.nfe_forward == 8  # 4 layers, then the last one 4 more times
    torch.testing.assert_close(long[:, :2], short)


def test_refuses_bad_parameters_with_the_recipe_key():
    with pytest.raises(odepipe.ModelError, match="solver.layers"):
        ResNetSolver(layers=0)
    with pytest.raises(odepipe.ModelError, match="solver.span"):
        ResNetSolver(layers=2, span=-1.0)


def test_a_resnet_recipe_trains_checkpoints_and_resumes(tmp_path):
    recipe = load_recipe("spiral", TINY_SPIRAL + ["solver={type: resnet, layers: 5}",
                                                  "train.steps=3", "train.checkpoint_every=1"])
    out = str(tmp_path / "run")
    os.makedirs(out)
    summary = train(recipe, out, progress=False)
    assert summary["steps"] == 3 and summary["nfe_forward_per_step"] == 5
    state = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)["model"]
    assert state["solver.weights.net__0__weight"].shape[0] == 5
    longer = load_recipe(os.path.join(out, "recipe.yaml"), ["train.steps=4"])
    assert train(longer, out, resume=True, progress=False)["steps"] == 4
