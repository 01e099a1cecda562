"""train.keep=best / train.select: the periodic evaluation on a valid split, the best checkpoint
beside the last, its choice continued bit-for-bit by --resume, summary.json and load_run on
the kept weights, the loss plot's validation panel, and the valid-split contract."""
import json
import os

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import tiny_recipe

import odepipe
from odepipe import Batch, DataSource, Run
from odepipe.cli import cli
from odepipe.contract import ContractError, check_valid_split
from odepipe.errors import CheckpointError, RecipeError
from odepipe.host import PluginHost
from odepipe.recipe import load_recipe
from odepipe.run.checkpoint import load_checkpoint
from odepipe.run.evaluate import evaluate
from odepipe.run.keep import Selection, direction
from odepipe.run.plots import loss_figure
from odepipe.run.report import describe
from odepipe.run.train import train

T_OBS, T_FUTURE = 6, 3


class Circles(DataSource):
    """Noisy 2-D circles of random phase and speed, with a valid split and, when ``future``,
    the clean continuation scored as ``extrap_mse`` (like the spirals, but tiny)."""

    def __init__(self, seed: int = 0, n: int = 16, valid: bool = True, future: bool = True,
                 overlap: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.sizes = {"train": n, "valid": 8, "test": 8}
        total = sum(self.sizes.values())
        t = torch.linspace(0, 3, T_OBS + T_FUTURE)
        phase, speed = torch.rand(total, 1, generator=g) * 6, 0.5 + torch.rand(total, 1,
                                                                                 generator=g)
        angle = phase + speed * t
        self.clean = torch.stack([angle.cos(), angle.sin()], -1)  # (N, T, 2)
        self.noisy = self.clean[:, :T_OBS] + 0.05 * torch.randn(total, T_OBS, 2, generator=g)
        self.times, self.future = t, future
        ends = torch.tensor([0, n, n + 8, n + 16])
        self.index = {s: list(range(int(ends[i]), int(ends[i + 1])))
                      for i, s in enumerate(("train", "valid", "test"))}
        if overlap:  # a broken source: valid repeats test items
            self.index["valid"] = self.index["test"][:3] + self.index["valid"][3:]
        self.splits = ("train", "valid", "test") if valid else ("train", "test")

    def dataset(self, split):
        return self.index[split]

    def collate(self, items):
        idx = torch.as_tensor(list(items))
        return Batch(times=self.times[:T_OBS], values=self.noisy[idx],
                     extras={"future": self.clean[idx, T_OBS:]})

    def dims(self):
        return {"obs_dim": 2}

    @torch.no_grad()
    def evaluate(self, model, batch):
        if not self.future:
            return {}
        pred = model.extrapolate(batch, self.times)[:, T_OBS:]
        return {"extrap_mse": float(((pred - batch.extras["future"]) ** 2).flatten(1).mean(1)
                                    .sum())}


class CirclesPlugin:
    @odepipe.hookimpl
    def odepipe_register_data_sources(self, register):
        register("circles", Circles)


@pytest.fixture
def circles(tmp_path):
    """(host, recipe file) of a tiny latent ODE on :class:`Circles`."""
    host = PluginHost(entry_points=False)
    host.add_plugin(CirclesPlugin(), name="circles_test")
    tree = tiny_recipe()
    tree["data"] = {"type": "circles"}
    tree["train"] = {"steps": 8, "batch_size": 8, "threads": 1, "plot": False, "lr": 0.05,
                     "eval_every": 2, "checkpoint_every": 0, "log_every": 1, "eval_samples": 2}
    path = tmp_path / "circles.yaml"
    path.write_text(yaml.safe_dump(tree))
    return host, str(path)


def run(circles, folder, *overrides, **kwargs):
    host, path = circles
    recipe = load_recipe(path, list(overrides), host=host)
    out = Run.create(str(folder))
    summary = train(recipe, out, progress=False, **kwargs)
    return out, summary


def evals(out):
    return [r for r in out.read_metrics() if r.get("kind") == "eval"]


# -- the direction rule --------------------------------------------------------------------------
@pytest.mark.parametrize("metric, expected", [
    ("valid_extrap_mse", "min"), ("valid_recon_mse_clean", "min"), ("valid_nll_per_token", "min"),
    ("valid_perplexity", "min"), ("valid_nll_iw10", "min"), ("valid_rmse", "min"),
    ("valid_loss", "min"), ("valid_elbo_at_mean", "max"), ("valid_elbo_sampled", "max"),
    ("valid_log_lik", "max"), ("valid_accuracy", "max"), ("extrap_mse", "min"),
    ("valid_active_units", None), ("valid_kl", None), ("valid_mi", None),
])
def test_direction_is_read_from_the_first_ranked_word_of_the_name(metric, expected):
    assert direction(metric) == expected


def test_selection_ties_keep_the_earlier_step_and_never_choose_a_non_finite_value():
    model = torch.nn.Linear(1, 1)
    low, high = Selection("valid_extrap_mse"), Selection("valid_elbo_at_mean")
    for step, value in ((2, float("nan")), (4, 0.5), (6, 0.5), (8, 0.7), (10, float("inf"))):
        low.offer(step, {"valid_extrap_mse": value}, model)
        high.offer(step, {"valid_elbo_at_mean": value}, model)
    assert (low.step, low.value, low.evaluated_step) == (4, 0.5, 10)
    assert (high.step, high.value) == (8, 0.7)
    again = Selection.from_state(low.state())
    assert (again.step, again.value, again.evaluated_step) == (4, 0.5, 10)
    assert again.summary(10) == {"kept": "best", "kept_step": 4,
                                 "selected_by": "valid_extrap_mse", "selected_value": 0.5}
    with pytest.warns(UserWarning, match="chose its best weights by valid_extrap_mse"):
        fresh = high.resumed(low.state(), 10)
    assert fresh is high
    with pytest.warns(UserWarning, match="no validation evaluation gave a finite"):
        assert Selection("valid_loss").summary(3) == {"kept": "last", "kept_step": 3,
                                                     "selected_by": None}


@pytest.mark.parametrize("overrides, needle", [
    (["train.keep=best", "train.eval_every=0"], "train.keep=best chooses among the periodic"),
    (["train.select=test_extrap_mse"], "train.select=test_extrap_mse names a metric of the test"),
    (["train.select=valid_active_units"], "cannot tell whether lower or higher is better"),
    (["train.keep=newest"], "train.keep: expected 'last' | 'best'"),
])
def test_keep_and_select_mistakes_are_refused_at_validation(overrides, needle):
    with pytest.raises(RecipeError, match="train\\.") as err:
        load_recipe("spiral", overrides)
    assert needle in str(err.value)


def test_default_keep_is_last_so_old_recipes_report_the_last_weights():
    assert load_recipe("linear_spirals").train.keep == "last"  # a recipe that sets no keep


# -- refused before any training -----------------------------------------------------------------
def test_keep_best_without_a_valid_split_is_refused_before_training(circles, tmp_path):
    with pytest.raises(RecipeError, match="train.keep=best.*only the splits train, test.*"
                                          "train.keep=last"):
        run(circles, tmp_path / "run", "train.keep=best", "data.valid=false")
    assert not os.path.exists(tmp_path / "run" / "checkpoint.pt")
    assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")


def test_an_unknown_select_metric_lists_the_available_ones_before_training(circles, tmp_path):
    with pytest.raises(RecipeError) as err:
        run(circles, tmp_path / "run", "train.keep=best", "train.select=accuracy")
    message = str(err.value)
    assert "train.select=accuracy" in message and "no valid_accuracy" in message
    assert "available: valid_elbo_at_mean, valid_extrap_mse, valid_log_lik" in message
    assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")


# -- the choice and what uses it -----------------------------------------------------------------
def test_keep_best_selects_the_lowest_valid_extrap_mse_and_reports_its_test_metrics(circles,
                                                                                    tmp_path):
    out, summary = run(circles, tmp_path / "run", "train.keep=best")
    scored = {r["step"]: r["valid_extrap_mse"] for r in evals(out)}
    assert sorted(scored) == [2, 4, 6, 8]  # every eval_every step, and the last one
    best = min(scored, key=lambda s: (scored[s], s))
    assert summary["kept"] == "best" and summary["selected_by"] == "valid_extrap_mse"
    assert summary["kept_step"] == best and summary["selected_value"] == scored[best]
    assert best != 8, "the tiny run should peak before its end, or this test proves nothing"
    saved = load_checkpoint(out.best_path)
    assert saved["step"] == best and saved["metric"] == "valid_extrap_mse"
    last = load_checkpoint(out.checkpoint_path)
    assert last["step"] == 8 and last["best"]["step"] == best
    # load_run gives the kept weights, and summary.json's test figures are theirs
    _, data, model = odepipe.load_run(out.path, host=circles[0], with_data=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved["model"][k]), k
    again = evaluate(model, data, torch.device("cpu"), 256)
    assert again["test_extrap_mse"] == pytest.approx(summary["test_extrap_mse"], rel=1e-6)
    final = [r for r in out.read_metrics() if r.get("kind") == "final"][0]
    assert final["kept_step"] == best and final["step"] == 8
    lines = describe(summary, out)
    assert f"kept: best weights from step {best} of 8, by valid_extrap_mse=" in "\n".join(lines)
    assert f"test metrics (weights of step {best}):" in lines


def test_without_extrapolation_the_default_is_the_highest_valid_elbo(circles, tmp_path):
    out, summary = run(circles, tmp_path / "run", "train.keep=best", "data.future=false")
    scored = {r["step"]: r["valid_elbo_at_mean"] for r in evals(out)}
    best = max(scored, key=lambda s: (scored[s], -s))
    assert summary["selected_by"] == "valid_elbo_at_mean" and summary["kept_step"] == best


def test_keep_last_logs_valid_metrics_and_keeps_the_last_weights(circles, tmp_path):
    out, summary = run(circles, tmp_path / "run", "train.steps=4")
    assert [r["step"] for r in evals(out)] == [2]  # the final step is the final evaluation
    assert {"valid_extrap_mse", "valid_elbo_at_mean", "test_extrap_mse"} <= set(evals(out)[0])
    assert summary["kept"] == "last" and summary["kept_step"] == 4
    assert summary["selected_by"] is None and not os.path.exists(out.best_path)
    assert "kept: last weights (step 4)" in describe(summary, out)


def _equal_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_the_best_choice_bit_for_bit(circles, tmp_path):
    whole, straight = run(circles, tmp_path / "whole", "train.keep=best")
    split = Run.create(str(tmp_path / "split"))
    host, path = circles
    recipe = load_recipe(path, ["train.keep=best"], host=host)

    def stop_at_4(step):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="--resume"):
        train(recipe, split, progress=False, on_event=stop_at_4)
    at_4 = load_checkpoint(split.checkpoint_path)["best"]
    # a kill between a later best.pt and the next checkpoint: resume must not trust best.pt
    torch.save({"format": 1, "step": 99, "model": {}, "metric": "x"}, split.best_path)
    seen = []

    def look(step):
        if not seen:
            seen.append(load_checkpoint(split.best_path)["step"])

    resumed = train(load_recipe(split.recipe_path, host=host), split, resume=True,
                    progress=False, on_event=look)
    assert seen == [at_4["step"]]
    for key in ("kept", "kept_step", "selected_by", "selected_value", "test_extrap_mse",
                "test_elbo_at_mean"):
        assert resumed[key] == straight[key], key
    a, b = load_checkpoint(whole.best_path), load_checkpoint(split.best_path)
    assert a["step"] == b["step"] and a["value"] == b["value"]
    assert _equal_weights(a["model"], b["model"])
    assert _equal_weights(load_checkpoint(whole.checkpoint_path)["model"],
                          load_checkpoint(split.checkpoint_path)["model"])
    assert [r["step"] for r in evals(split)] == [r["step"] for r in evals(whole)]


def test_an_unwritable_best_checkpoint_is_a_checkpoint_error_and_keeps_the_last(circles, tmp_path,
                                                                 monkeypatch):
    from odepipe.run import checkpoint

    real = checkpoint.atomic_write

    def full_for_best(path, write, errors=(OSError,)):
        if path.endswith("best.pt"):
            def refuse(f):
                raise OSError(28, "No space left on device")
            write = refuse
        real(path, write, errors)

    monkeypatch.setattr(checkpoint, "atomic_write", full_for_best)
    host, path = circles
    out = tmp_path / "run"
    with pytest.raises(CheckpointError, match="could not write .*best.pt: No space left"):
        run(circles, out, "train.keep=best", "train.checkpoint_every=1")
    assert not os.path.exists(out / "best.pt")
    assert [f for f in os.listdir(out) if f.startswith(".tmp-")] == []
    assert load_checkpoint(str(out / "checkpoint.pt"))["step"] == 1


def test_cli_run_with_keep_best_names_the_kept_step_and_plots_it(circles, tmp_path):
    host, path = circles
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", path, "train.keep=best", "train.plot=true",
                                      "--out", str(out), "-q"], obj=host)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert f"kept: best weights from step {summary['kept_step']} of 8" in result.stdout
    assert (out / "plots" / "loss.png").is_file()


# -- the loss plot -------------------------------------------------------------------------------
def test_loss_plot_shows_the_validation_metric_and_marks_the_kept_step():
    records = [{"step": s, "loss": 10.0 / s} for s in range(1, 9)]
    records += [{"step": s, "kind": "eval", "test_elbo_at_mean": -s, "valid_extrap_mse": v,
                 "test_extrap_mse": v * 1.1} for s, v in ((2, 0.5), (4, 0.2), (6, 0.3))]
    records.append({"step": 8, "kind": "eval", "valid_extrap_mse": 0.4})
    records.append({"step": 8, "kind": "final", "kept_step": 4, "test_elbo_at_mean": -3.0})
    summary = {"kept": "best", "kept_step": 4, "selected_by": "valid_extrap_mse"}
    fig = loss_figure(records, 10, summary)
    loss_ax, metric_ax = fig.axes
    curves = {line.get_label(): line for line in metric_ax.get_lines()}
    assert list(curves["valid_extrap_mse"].get_xdata()) == [2, 4, 6, 8]
    assert list(curves["valid_extrap_mse"].get_ydata()) == [0.5, 0.2, 0.3, 0.4]
    assert list(curves["test_extrap_mse"].get_xdata()) == [2, 4, 6]
    for ax in (loss_ax, metric_ax):
        kept = [ln for ln in ax.get_lines() if ln.get_label() == "kept weights: best (step 4)"]
        assert len(kept) == 1 and list(kept[0].get_xdata()) == [4, 4]
    label = "test -ELBO at the posterior mean (evaluation)"
    tests = [ln for ln in loss_ax.get_lines() if ln.get_label() == label][0]
    assert list(tests.get_xdata()) == [2, 4, 6, 4]  # the final evaluation is of step 4's weights
    assert "lower is better" in metric_ax.get_ylabel()
    assert loss_ax.get_yscale() == "log"  # every loss positive: no negative decades shown


def test_loss_plot_of_a_negative_loss_uses_symlog():
    records = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": -40.0}]
    fig = loss_figure(records, 2, {"kept": "last", "kept_step": 2})
    assert fig.axes[0].get_yscale() == "symlog"


def test_loss_plot_without_a_valid_split_keeps_one_panel():
    records = [{"step": 1, "loss": 3.0}, {"step": 2, "kind": "eval", "test_elbo_at_mean": -2.0}]
    fig = loss_figure(records, 2, {"kept": "last", "kept_step": 2})
    assert len(fig.axes) == 1


# -- the data-source contract --------------------------------------------------------------------
def test_valid_split_contract():
    check_valid_split(Circles(seed=3), Circles(seed=3))
    check_valid_split(Circles(valid=False))  # no valid split: nothing to check
    with pytest.raises(ContractError, match="3 item\\(s\\) of split 'valid' are also in split"):
        check_valid_split(Circles(overlap=True))
    with pytest.raises(ContractError, match="different valid splits"):
        check_valid_split(Circles(seed=3), Circles(seed=4))


def test_the_spiral_source_selects_by_valid_extrap_mse_by_default(tmp_path):
    from conftest import TINY_SPIRAL

    recipe = load_recipe("spiral", TINY_SPIRAL + ["solver=euler", "train.steps=4",
                                                  "train.eval_every=2", "train.keep=best",
                                                  "train.checkpoint_every=0"])
    out = Run.create(str(tmp_path / "run"))
    summary = train(recipe, out, progress=False)
    assert summary["selected_by"] == "valid_extrap_mse" and summary["kept_step"] in (2, 4)
    assert {"valid_extrap_mse", "valid_recon_mse_clean"} <= set(evals(out)[0])
