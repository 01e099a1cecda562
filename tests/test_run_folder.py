"""The run folder: what --overwrite may replace, the lock, reuse of an unfinished folder,
resuming with another recipe, strict JSON, permissions, how a run ends, and the data source's
save/restore contract for inference."""
import dataclasses
import errno
import json
import os
import stat
import warnings

import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_SPIRAL

import odepipe
from odepipe import Batch, DataSource, Run
from odepipe.cli import cli
from odepipe.errors import CheckpointError, NumericalError, RecipeError
from odepipe.host import PluginHost
from odepipe.recipe import load_recipe
from odepipe.run.faults import NonFinite
from odepipe.run.train import train

QUICK = TINY_SPIRAL + ["solver=euler", "train.lr_schedule=constant"]


def tiny(*extra, host=None):
    return load_recipe("spiral", QUICK + list(extra), host=host)


def trained(path, *extra):
    run = Run.create(str(path))
    train(tiny("train.steps=2", *extra), run, progress=False)
    return run


def snapshot(folder):
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


# -- what --overwrite may replace ----------------------------------------------------------------
def test_overwrite_refuses_a_folder_holding_other_files(tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    (folder / "checkpoint.pt").write_text("looks like a run, is not only one")
    with pytest.raises(CheckpointError, match=r"thesis\.tex.*--overwrite replaces only a run"):
        Run.create(str(folder), overwrite=True)
    assert (folder / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("target", [".", "..", "/"])
def test_overwrite_never_replaces_the_current_folder_or_a_parent(tmp_path, monkeypatch, target):
    here = tmp_path / "work"
    run = trained(here)  # even a real run folder, when it is where the user stands
    monkeypatch.chdir(here)
    before = snapshot(here)
    result = CliRunner().invoke(cli, ["run", "spiral", *QUICK, "train.steps=1", "--out", target,
                                      "--overwrite", "-q"])
    assert result.exit_code == 2, result.output
    assert "current folder or a folder above it" in result.output
    assert snapshot(here) == before and run.has_checkpoint()


def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(tmp_path):
    old = trained(tmp_path / "run")
    before = open(old.checkpoint_path, "rb").read()
    # validated, but refused by the solver's constructor once training builds the model
    result = CliRunner().invoke(cli, ["run", "spiral", *QUICK, "train.steps=1",
                                      "solver.step_size=-1", "--out", old.path, "--overwrite",
                                      "-q"])
    assert result.exit_code == 2, result.output
    assert open(old.checkpoint_path, "rb").read() == before
    assert os.listdir(tmp_path) == ["run"]  # nothing left aside
    new = Run.create(old.path, overwrite=True)
    assert new.replaced and os.path.isdir(new.replaced) and not new.has_checkpoint()
    train(tiny("train.steps=1"), new, progress=False)
    assert new.replaced is None and os.listdir(tmp_path) == ["run"]
    assert open(new.checkpoint_path, "rb").read() != before


def test_a_folder_killed_before_its_first_checkpoint_is_reused_without_overwrite(tmp_path):
    folder = tmp_path / "run"
    (folder / "plots").mkdir(parents=True)
    (folder / "recipe.yaml").write_text("seed: 0\n")
    (folder / ".tmp-torn").write_bytes(b"half a checkpoint")
    run = Run.create(str(folder))
    assert sorted(os.listdir(folder)) == ["plots"]
    train(tiny("train.steps=1"), run, progress=False)
    assert run.has_checkpoint()
    with pytest.raises(CheckpointError, match="already holds a run; pass --overwrite"):
        Run.create(str(folder))


def test_resume_removes_stale_temporary_files(tmp_path):
    run = trained(tmp_path / "run")
    (tmp_path / "run" / ".tmp-x1y2").write_bytes(b"torn")
    train(load_recipe(run.recipe_path, ["train.steps=3"]), run, resume=True, progress=False)
    assert not [f for f in os.listdir(run.path) if f.startswith(".tmp-")]


# -- the lock ----------------------------------------------------------------------------------
def test_a_run_folder_in_use_is_refused_to_a_second_process(tmp_path):
    run = trained(tmp_path / "run")
    with run.lock():  # what a training process holds
        with pytest.raises(CheckpointError, match=r"is in use: another odepipe process \(pid"):
            train(load_recipe(run.recipe_path, ["train.steps=3"]), run, resume=True,
                  progress=False)
        with pytest.raises(CheckpointError, match="in use"):
            Run.create(run.path, overwrite=True)
        result = CliRunner().invoke(cli, ["run", "--resume", run.path, "train.steps=3", "-q"])
        assert result.exit_code == 2 and "in use" in result.output
    assert run.load_checkpoint()["step"] == 2
    lines = run.read_metrics()
    train(load_recipe(run.recipe_path, ["train.steps=3"]), run, resume=True, progress=False)
    assert run.load_checkpoint()["step"] == 3 and len(run.read_metrics()) > len(lines)


# -- resuming with another recipe --------------------------------------------------------------
def test_resume_refuses_architecture_and_data_changes_listing_them(tmp_path):
    run = trained(tmp_path / "run")
    changed = load_recipe(run.recipe_path, ["encoder=lstm", "dynamics.hidden_size=7",
                                            "data.noise_std=0.5"])
    with pytest.raises(RecipeError) as info:
        train(changed, run, resume=True, progress=False)
    message = str(info.value)
    for key in ("encoder.type is 'gru' in the run but 'lstm'", "dynamics.hidden_size",
                "data.noise_std", "only train.* settings may change"):
        assert key in message
    assert run.load_checkpoint()["step"] == 2


def test_resume_records_training_changes_and_keeps_the_recipe_name(tmp_path):
    run = trained(tmp_path / "spiral-euler-20260101-000000")
    result = CliRunner().invoke(cli, ["run", "--resume", run.path, "train.steps=3",
                                      "train.lr=0.005", "-q", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["recipe"] == "spiral" and summary["steps"] == 3
    recorded = load_recipe(run.recipe_path)
    assert recorded.train.steps == 3 and recorded.train.lr == 0.005


# -- files -------------------------------------------------------------------------------------
def test_summary_is_strict_json_with_null_for_non_finite_figures(tmp_path):
    run = Run.create(str(tmp_path / "run"))
    with pytest.warns(RuntimeWarning, match="test_mse, nested.b not finite"):
        written = run.write_summary({"test_mse": float("nan"), "ok": 1.5,
                                     "nested": {"b": float("inf")}})
    text = open(run.summary_path).read()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == written == {"test_mse": None, "ok": 1.5, "nested": {"b": None}}


def test_run_files_share_one_mode_from_the_umask_before_and_after_resume(tmp_path):
    old = os.umask(0o027)
    try:
        run = trained(tmp_path / "run")
        names = ["checkpoint.pt", "recipe.yaml", "summary.json", "metrics.jsonl"]
        modes = {n: stat.S_IMODE(os.stat(run.file(n)).st_mode) for n in names}
        assert set(modes.values()) == {0o640}, modes
        train(load_recipe(run.recipe_path, ["train.steps=3"]), run, resume=True, progress=False)
        modes = {n: stat.S_IMODE(os.stat(run.file(n)).st_mode) for n in names}
        assert set(modes.values()) == {0o640}, modes
    finally:
        os.umask(old)


def test_unwritable_plots_exit_2_and_keep_the_checkpoint(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("odepipe.run.plots._plot_loss", full)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "spiral", *QUICK, "train.steps=2", "train.plot=true",
                                      "--out", str(out), "-q"])
    assert result.exit_code == 2 and "cannot write the plots" in result.output
    assert "No space left" in result.output and "Traceback" not in result.output
    assert Run.open(str(out)).load_checkpoint()["step"] == 2


# -- numerical faults --------------------------------------------------------------------------
def test_non_finite_message_without_a_checkpoint_says_so(tmp_path):
    run = Run.create(str(tmp_path / "run"))
    with pytest.raises(NumericalError) as info:
        train(tiny("train.steps=50", "train.lr=1.0e6", "train.checkpoint_every=0"), run,
              progress=False)
    message = str(info.value)
    assert "at step" in message and "No checkpoint was written yet" in message
    assert "last good checkpoint" not in message and "train.lr (now 1e+06)" in message


def test_non_finite_message_names_a_non_finite_setting(tmp_path):
    recipe = tiny()
    recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train,
                                                                   beta=float("nan")))
    faults = NonFinite(recipe, Run(str(tmp_path)))
    faults.checkpoint_step = 4
    message = str(faults.error(5, "the loss"))
    assert "the loss became NaN or Inf at step 5" in message
    assert f"step 4) is kept in {tmp_path / 'checkpoint.pt'}" in message
    assert "train.beta=nan" in message and "train.lr (now" not in message


# -- how a run ends ----------------------------------------------------------------------------
def test_end_of_run_summary_names_steps_reason_metrics_folder_and_plots(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "spiral", *QUICK, "train.steps=2", "train.plot=true",
                                      "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "2 of 2 steps, all planned steps done" in text
    assert "test_extrap_mse" in text and f"run folder: {out}" in text
    assert "loss.png" in text and "spirals.png" in text
    assert not text.lstrip().startswith("{")


def test_a_run_stopped_by_max_seconds_says_so(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "spiral", *QUICK, "train.steps=100000",
                                      "train.max_seconds=0.5", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "stopped early: train.max_seconds=0.5 reached" in result.stdout
    assert f"--resume {out}" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_because"] == "max_seconds" and summary["steps_planned"] == 100000
    assert summary["steps"] < 100000


def test_default_run_name_carries_the_switched_components(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "spiral", *TINY_SPIRAL, "train.steps=1",
                                      "solver=euler", "encoder=lstm", "-q"])
    assert result.exit_code == 0, result.output
    (name,) = os.listdir(tmp_path / "runs")
    assert name.startswith("spiral-euler-lstm-")


# -- the data source's save/restore contract -----------------------------------------------------
class Restorable(DataSource):
    """A one-feature series source that saves a marker and must not read its data when restored."""

    def __init__(self, seed: int = 0, n: int = 16):
        self.n, self.seed, self.restored_from = n, seed, None

    def dataset(self, split):
        if self.restored_from is not None:
            raise AssertionError("dataset() read after restore()")
        g = torch.Generator().manual_seed(self.seed + (split == "test"))
        return [torch.randn(6, 1, generator=g) for _ in range(self.n if split == "train" else 8)]

    def collate(self, items):
        return Batch(times=torch.linspace(0, 1, 6), values=torch.stack(list(items)))

    def dims(self):
        return {"obs_dim": 1}

    def save(self, folder):
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"n": self.n}, f)

    def restore(self, folder):
        with open(os.path.join(folder, "state.json")) as f:
            self.restored_from = (folder, json.load(f))


class RestorablePlugin:
    @odepipe.hookimpl
    def odepipe_register_data_sources(self, register):
        register("restorable", Restorable)


def test_a_run_saves_its_data_state_and_load_restores_it_without_the_data(tmp_path):
    host = PluginHost(entry_points=False)
    host.add_plugin(RestorablePlugin(), name="restorable_test")
    run = Run.create(str(tmp_path / "run"))
    recipe = load_recipe("spiral", QUICK + ["data=restorable", "train.steps=2", "train.keep=last"], host=host)
    train(recipe, run, progress=False)
    assert json.loads(open(os.path.join(run.data_dir, "state.json")).read()) == {"n": 16}
    _, data, model = odepipe.load_run(run.path, host=host)
    assert isinstance(data, Restorable) and data.restored_from == (run.data_dir, {"n": 16})
    z = model.decoder(torch.zeros(1, 6, model.latent_dim), data.collate([torch.zeros(6, 1)]))
    assert z.mean.shape == (1, 6, 1)


def test_a_run_without_a_data_folder_loads_as_before(tmp_path):
    host = PluginHost(entry_points=False)
    host.add_plugin(RestorablePlugin(), name="restorable_test")
    run = Run.create(str(tmp_path / "run"))
    train(load_recipe("spiral", QUICK + ["data=restorable", "train.steps=1", "train.keep=last"], host=host), run,
          progress=False)
    for f in os.listdir(run.data_dir):
        os.unlink(os.path.join(run.data_dir, f))
    os.rmdir(run.data_dir)  # a run written before data/ existed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, data, _ = run.load(host=host)
    assert data.restored_from is None


def test_open_refuses_a_non_run_and_completeness_needs_the_summary(tmp_path):
    with pytest.raises(CheckpointError, match="not an odepipe run folder"):
        Run.open(str(tmp_path))
    run = trained(tmp_path / "run")
    assert Run.open(run.path).is_complete()
    os.unlink(run.summary_path)
    assert run.is_run() and not run.is_complete()
