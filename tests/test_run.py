import json
import os

import pytest
import torch
import yaml
from conftest import TINY_SPIRAL

from odepipe import Run
from odepipe.recipe import load_recipe, shipped_recipes
from odepipe.run.checkpoint import load_checkpoint
from odepipe.run.train import train


def tiny(recipe="spiral", *extra):
    return load_recipe(recipe, TINY_SPIRAL + list(extra))


@pytest.mark.parametrize("name", shipped_recipes())
def test_every_shipped_recipe_validates_and_runs_two_steps(name, tmp_path):
    # one posterior sample in the final evaluation: it scores every valid and test sentence,
    # 1,839 each for the real-English recipes, and ten samples took a minute per recipe
    recipe = load_recipe(name, ["train.steps=2", "train.plot=false", "train.eval_items=4",
                                "train.eval_samples=1"])
    out = Run.create(str(tmp_path / "run")).path
    summary = train(recipe, out, progress=False)
    assert summary["steps"] == 2
    assert os.path.isfile(os.path.join(out, "checkpoint.pt"))
    assert load_recipe(os.path.join(out, "recipe.yaml")).to_dict() == recipe.to_dict()


def test_outputs_of_a_run(tmp_path):
    out = Run.create(str(tmp_path / "run")).path
    recipe = tiny("spiral", "train.steps=4", "train.log_every=2", "train.plot=true",
                  "train.eval_every=2")
    summary = train(recipe, out, progress=False)
    lines = [json.loads(x) for x in open(os.path.join(out, "metrics.jsonl"))]
    logged = [r for r in lines if "loss" in r]
    assert [r["step"] for r in logged] == [2, 4]
    assert {"loss", "log_lik", "kl", "elbo", "nfe_forward", "nfe_backward", "lr",
            "seconds"} <= set(logged[0])
    assert any(r.get("kind") == "eval" for r in lines)
    saved = json.load(open(os.path.join(out, "summary.json")))
    assert saved == json.loads(json.dumps(summary))
    for key in ("test_recon_mse_clean", "test_extrap_mse", "test_elbo_at_mean",
                "test_elbo_sampled", "test_nll_iw10", "nfe_forward_per_step", "seconds"):
        assert key in saved
    assert sorted(os.listdir(os.path.join(out, "plots"))) == ["loss.png", "spirals.png"]
    resolved = yaml.safe_load(open(os.path.join(out, "recipe.yaml")))
    # the resolved recipe: the shipped solver with its defaults written out (rtol is not in
    # the shipped file), whichever fixed-step solver spiral.yaml ships
    assert resolved["solver"]["type"] == recipe.to_dict()["solver"]["type"]
    assert "rtol" in resolved["solver"]


def _interrupt_at(step):
    def hook(s):
        if s == step:
            raise KeyboardInterrupt
    return hook


def test_resume_is_bit_for_bit(tmp_path):
    recipe = tiny("spiral", "train.steps=6", "train.checkpoint_every=0", "train.log_every=1")
    whole = Run.create(str(tmp_path / "whole")).path
    train(recipe, whole, progress=False)
    split = Run.create(str(tmp_path / "split")).path
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        train(recipe, split, progress=False, on_event=_interrupt_at(3))
    assert load_checkpoint(os.path.join(split, "checkpoint.pt"))["step"] == 3
    train(load_recipe(os.path.join(split, "recipe.yaml")), split, resume=True, progress=False)
    a = load_checkpoint(os.path.join(whole, "checkpoint.pt"))
    b = load_checkpoint(os.path.join(split, "checkpoint.pt"))
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    steps = [json.loads(x)["step"] for x in open(os.path.join(split, "metrics.jsonl"))
             if "loss" in json.loads(x)]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_nan_stops_with_the_step_and_keeps_the_checkpoint(tmp_path):
    out = Run.create(str(tmp_path / "run")).path
    recipe = tiny("spiral", "train.steps=50", "train.lr=1.0e6", "train.checkpoint_every=1",
                  "solver=euler")
    from odepipe.errors import NumericalError

    with pytest.raises(NumericalError, match=r"at step \d+.*train.lr"):
        train(recipe, out, progress=False)
    state = load_checkpoint(os.path.join(out, "checkpoint.pt"))
    assert all(torch.isfinite(v).all() for v in state["model"].values())
