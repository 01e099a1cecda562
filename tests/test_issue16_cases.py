"""Issue 16, case by case, through the command line: every bad input a harsh user tried is an
exit code 2 with a one-paragraph message that names the key, file or option and the fix, no
traceback, and no file changed outside the run folder it concerns.

Each test is one group of the issue. Groups tested elsewhere: a shared run folder's plugin
module (tests/test_untrusted_runs.py), hostile YAML (tests/test_recipe_safety.py), non-finite CSV
statistics and over-long series (plugins/series' tests), the run folder's reuse, permissions
and strict JSON (tests/test_run_folder.py)."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Dict, Iterable, Sequence

import pytest
import torch
from click.testing import CliRunner, Result
from conftest import TINY_SPIRAL

from odepipe import Run
from odepipe.cli import make_cli, new_host

CLI = make_cli(new_host())
ROOT = Path(__file__).resolve().parents[1]
QUICK = TINY_SPIRAL + ["solver=euler", "train.lr_schedule=constant", "train.steps=2"]


def files_of(root: Path) -> Dict[str, str]:
    """Every file under ``root`` with a digest of its bytes."""
    return {os.path.relpath(os.path.join(d, f), root):
            hashlib.sha1(Path(d, f).read_bytes()).hexdigest()
            for d, _, names in os.walk(root) for f in names}


def refused(args: Sequence[str], needles: Iterable[str], sandbox: Path,
            inside: Sequence[Path] = ()) -> Result:
    """Invokes ``odepipe ARGS`` and checks the issue's four promises; files under ``inside``
    (the run folder the command is about) may change, nothing else under ``sandbox``."""
    before = files_of(sandbox)
    result = CliRunner().invoke(CLI, [str(a) for a in args])
    after = files_of(sandbox)
    allowed = [os.path.relpath(p, sandbox) + os.sep for p in inside]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)
                     and not any(k.startswith(a) for a in allowed))
    text = result.output
    assert result.exit_code == 2, (args, text, result.exception)
    assert "Traceback" not in text, text
    error = text[text.index("Error:"):] if "Error:" in text else text
    assert "\n\n" not in error.strip(), error  # one paragraph
    for needle in needles:
        assert needle in text, (needle, text)
    assert changed == [], changed
    return result


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shared") / "spiral"
    result = CliRunner().invoke(CLI, ["run", "spiral", *QUICK, "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Path:
    """The user's current folder, holding their own files."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "my.yaml").write_text((ROOT / "recipes" / "spiral.yaml").read_text())
    return tmp_path


# -- data lost --------------------------------------------------------------------------------
@pytest.mark.parametrize("out, needle", [(".", "current folder or a folder above it"),
                                         ("..", "current folder or a folder above it"),
                                         ("thesis", "thesis.tex")])
def test_overwrite_refuses_what_is_not_a_run_folder(sandbox, out, needle, monkeypatch):
    (sandbox / "thesis").mkdir()
    (sandbox / "thesis" / "thesis.tex").write_text("years of work")
    work = sandbox / "work"
    work.mkdir()
    (work / "draft.md").write_text("draft")
    monkeypatch.chdir(work)
    target = out if out in (".", "..") else str(sandbox / out)
    refused(["run", "spiral", *QUICK, "--out", target, "--overwrite", "-q"],
            [needle, "--out"], sandbox)


# -- untrusted code: see tests/test_untrusted_runs.py (sample, evaluate, --resume, extrapolate,
# interpolate-sentences on a shared run folder with a local plugin module)


# -- --resume with another recipe or a broken checkpoint -----------------------------------------
@pytest.mark.parametrize("extra, needles", [
    (["encoder=lstm"], ["encoder.type is 'gru' in the run but 'lstm' here", "only train.*"]),
    (["dynamics.hidden_size=10"], ["dynamics.hidden_size is ", "in the run but 10 here"]),
    (["csv_example"], ["data.type is 'spiral' in the run but 'csv' here", "--out NEW_FOLDER"]),
])
def test_resume_with_a_different_recipe_lists_the_differences(spiral_run, sandbox, extra,
                                                              needles):
    refused(["run", *extra, "--resume", spiral_run, "-q"], needles, spiral_run.parent,
            inside=[spiral_run])


def test_a_checkpoint_without_model_weights_is_a_clear_error(spiral_run, tmp_path, sandbox):
    broken = tmp_path / "broken"
    Run.create(str(broken))
    for name in os.listdir(spiral_run):
        if os.path.isfile(spiral_run / name):
            (broken / name).write_bytes((spiral_run / name).read_bytes())
    for name in ("checkpoint.pt", "best.pt"):  # best.pt: the weights a keep=best run loads
        if (broken / name).exists():
            state = torch.load(broken / name, weights_only=True)
            del state["model"]
            torch.save(state, broken / name)
    refused(["run", "--resume", broken, "-q"], ["holds no model", "new run"], tmp_path,
            inside=[broken])
    refused(["sample", "--run", broken, "-n", "1"], [str(broken)], tmp_path)


# -- numbers validation lets through: non-finite, negative, zero, too big ------------------------
@pytest.mark.parametrize("override, key", [
    ("train.lr=.nan", "train.lr"), ("data.noise_std=.inf", "data.noise_std"),
    ("decoder.std=.nan", "decoder.std"), ("solver.step_size=.nan", "solver.step_size"),
    ("seed=1e23", "seed"), ("seed=-1", "seed"), ("seed=4294967296", "seed"),
    ("dynamics.hidden_size=-3", "dynamics.hidden_size"),
    ("dynamics.hidden_size=0", "dynamics.hidden_size"),
    ("decoder.hidden_size=0", "decoder.hidden_size"),
    ("model.latent_dim=1e9", "model.latent_dim"), ("data.n_spirals=1e9", "data.n_spirals"),
    ("data.n_spirals=5000000", "data.n_spirals"),  # within its range, beyond memory
    ("solver.step_size=1e-9", "solver.step_size"), ("train.batch_size=1e9", "train.batch_size"),
    ("train.max_seconds=.nan", "train.max_seconds"), ("train.device=cuda:99", "train.device"),
    ("train.threads=100000", "train.threads"), ("train.beta=.nan", "train.beta"),
    ("train.grad_clip=.nan", "train.grad_clip"), ("train.lr_min=.nan", "train.lr_min"),
    ("train.free_bits=.inf", "train.free_bits"), ("solver.rtol=.nan", "solver.rtol"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_numbers_exit_2_naming_the_key_and_a_fix(sandbox, override, key, command):
    args = [command, "spiral", *QUICK, override]
    if command == "run":
        args += ["--out", "runs/x", "-q"]
    result = refused(args, [key], sandbox)
    assert "try " in result.output or "use " in result.output or "lower " in result.output
    assert not (sandbox / "runs").exists()  # refused before a folder is made


@pytest.mark.parametrize("overrides, key", [
    (["encoder.hidden_size=16384", "encoder.num_layers=64"], "encoder.num_layers=64"),
    (["dynamics.hidden_size=16384", "dynamics.num_layers=64"], "dynamics.hidden_size=16384"),
])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_sizes_valid_alone_but_too_big_together_are_refused_before_allocating(sandbox, overrides,
                                                                            key, command):
    args = [command, "spiral", *QUICK, *overrides] + (["-q"] if command == "run" else [])
    refused(args, ["parameters", "GiB to train", key], sandbox)
    assert not (sandbox / "runs").exists()


def test_a_switched_type_keeps_the_unknown_key_check(sandbox):
    refused(["validate", "spiral", "encoder=lstm", "encoder.hiden_size=8"],
            ["encoder.hiden_size", "did you mean 'hidden_size'"], sandbox)


# -- the command line's own options ------------------------------------------------------------
@pytest.mark.parametrize("options, needle", [
    (["-n", "100000000"], "'-n'"), (["-n", "1e8"], "'-n'"), (["-n", "0"], "'-n'"),
    (["--seed", "-1"], "'--seed'"), (["--seed", "1e23"], "'--seed'"),
    (["--device", "cuda:99"], "'--device'"), (["--device", "gpu"], "'--device'"),
])
def test_sample_options_are_range_checked(spiral_run, sandbox, options, needle):
    if options[-1] == "cuda:99" and torch.cuda.device_count() > 99:
        pytest.skip("this machine has 100 GPUs")
    refused(["sample", "--run", spiral_run, *options], [needle], spiral_run.parent)


@pytest.mark.parametrize("args, needle", [
    (["evaluate", "{run}", "-k", "0"], "'--samples'"),
    (["evaluate", "{run}", "--seed", "-1"], "'--seed'"),
    (["evaluate", "{run}", "--device", "cuda:99"], "'--device'"),
    (["compare", "--layers", "1000000000"], "'--layers'"),
    (["compare", "--steps", "0"], "'--steps'"),
    (["compare", "--batch-size", "100000000"], "'--batch-size'"),
    (["interpolate-sentences", "a", "b", "--steps", "1000000000"], "'--steps'"),
])
def test_numeric_options_of_other_commands_are_range_checked(spiral_run, sandbox, args, needle):
    if "cuda:99" in args and torch.cuda.device_count() > 99:
        pytest.skip("this machine has 100 GPUs")
    refused([a.format(run=spiral_run) for a in args], [needle], spiral_run.parent)


def test_outputs_into_unwritable_places_exit_2(spiral_run, sandbox):
    (sandbox / "blocker").write_text("a file where a folder should be")
    refused(["cp", "spiral", "/nonexistent/x.yaml"], ["cannot write /nonexistent/x.yaml",
                                                      "existing, writable folder"], sandbox)
    refused(["sample", "--run", spiral_run, "-n", "2", "--out", sandbox / "blocker" / "s"],
            ["cannot write the samples", "choose a writable --out"], sandbox)
    refused(["compare", "--layers", "2", "--out", sandbox / "blocker" / "c"],
            ["cannot write into --out", "choose a writable --out"], sandbox)


def test_compare_writes_under_the_runs_folder_by_default(sandbox, monkeypatch):
    from odepipe_plugins.depth import compare as measured

    monkeypatch.setattr(measured, "compare", lambda *a, **k: [])  # no child processes
    monkeypatch.setattr(measured, "table", lambda rows: "table")
    monkeypatch.setattr(measured, "plot", lambda rows, path: Path(path).write_text("png") or path)
    result = CliRunner().invoke(CLI, ["compare", "--layers", "2"])
    assert result.exit_code == 0, result.output
    assert not (sandbox / "compare").exists()
    made = list((sandbox / "runs").glob("compare-*/resnet_vs_ode.json"))
    assert len(made) == 1 and str(made[0].parent.relative_to(sandbox)) in result.output


# -- disk full ---------------------------------------------------------------------------------
def _full_disk(*args, **kwargs):
    raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0: "
                       "PytorchStreamWriter failed writing file data/0: file write failed")


def test_resume_on_a_full_disk_exits_2_and_keeps_the_checkpoint(spiral_run, tmp_path, sandbox,
                                                                 monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(spiral_run, out)  # a finished two-step run of its own
    kept = (out / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(torch, "save", _full_disk)
    refused(["run", "--resume", out, "train.steps=4", "-q"], ["could not write",
                                                             "free some disk space"],
            tmp_path, inside=[out])
    assert (out / "checkpoint.pt").read_bytes() == kept
    assert [f for f in os.listdir(out) if f.startswith(".tmp-")] == []


# -- recipes as YAML: see tests/test_recipe_safety.py::test_hostile_files_exit_2_through_the_cli
def test_duplicate_sections_are_refused(sandbox):
    text = (sandbox / "my.yaml").read_text()
    (sandbox / "dup.yaml").write_text(text + "\nencoder: {type: lstm}\n")
    refused(["validate", "dup.yaml"], ["duplicate key 'encoder'", "keep one"], sandbox)


# -- a run folder in use ----------------------------------------------------------------------
def test_a_locked_run_folder_is_refused(spiral_run, sandbox):
    with Run(str(spiral_run)).lock():
        refused(["run", "--resume", spiral_run, "train.steps=3", "-q"],
                ["is in use", "another odepipe process"], spiral_run.parent,
                inside=[spiral_run])
        refused(["run", "spiral", *QUICK, "--out", spiral_run, "--overwrite", "-q"],
                ["is in use"], spiral_run.parent, inside=[spiral_run])


# -- plugin modules named by a recipe -------------------------------------------------------------
@pytest.mark.parametrize("body, needles", [
    ("raise SystemExit('bye')\n", ["plugins: module 'exitmod_{pid}_False' failed to load",
                                   "SystemExit", "never exit the process"]),
    (None, ["No module named 'exitmod_{pid}_True'", "remove it from plugins:"]),
])
def test_a_plugin_module_that_exits_or_is_missing_is_a_recipe_problem(sandbox, body, needles):
    module = f"exitmod_{os.getpid()}_{body is None}"
    if body is not None:
        (sandbox / f"{module}.py").write_text(body)
    (sandbox / "p.yaml").write_text(f"plugins: [{module}]\n" + (sandbox / "my.yaml").read_text())
    result = refused(["validate", "p.yaml"], [n.format(pid=os.getpid()) for n in needles],
                     sandbox)
    assert "failed to load: failed to load" not in result.output


# -- extrapolate (plugins/series) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def csv_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("csv") / "run"
    result = CliRunner().invoke(CLI, ["run", "csv_example", "train.steps=2", "train.plot=false",
                                      "train.threads=1", "train.eval_every=0", "--out",
                                      str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("options, needle", [(["--until", "nan"], "--until"),
                                             (["--until", "inf"], "--until"),
                                             (["--until", "15", "--points", "100000000"],
                                              "--points"),
                                             (["--until", "15", "--out", "blocker/p.csv"],
                                              "--out")])
def test_extrapolate_bad_options_exit_2(csv_run, sandbox, options, needle):
    from odepipe_plugins.series.csv_source import resolve_data_path

    (sandbox / "blocker").write_text("x")
    refused(["extrapolate", "--run", csv_run, "--input",
             resolve_data_path("data/example_seed.csv"), *options], [needle], sandbox)


# -- disk full for the summary and the metrics ------------------------------------------------
def test_a_full_disk_at_the_summary_exits_2_and_keeps_the_checkpoint(tmp_path, sandbox,
                                                                     monkeypatch):
    import errno

    from odepipe.run import files, folder

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    def write_text(path, text):
        if path.endswith("summary.json"):
            return files.atomic_write(path, full)
        return files.write_text(path, text)

    monkeypatch.setattr(folder, "write_text", write_text)
    out = tmp_path / "run"
    refused(["run", "spiral", *QUICK, "--out", out, "-q"],
            ["could not write", "summary.json", "No space left", "free some disk space"],
            tmp_path, inside=[out])
    assert Run(str(out)).load_checkpoint()["step"] == 2


def test_a_full_disk_at_the_metrics_exits_2_and_keeps_the_checkpoint(spiral_run, tmp_path,
                                                                     sandbox, monkeypatch):
    import builtins
    import errno

    from odepipe.run import folder

    def open_(path, mode="r", *args, **kwargs):
        if "a" in mode and str(path).endswith("metrics.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return builtins.open(path, mode, *args, **kwargs)

    out = tmp_path / "run"
    shutil.copytree(spiral_run, out)  # a finished two-step run of its own
    kept = (out / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(folder, "open", open_, raising=False)
    refused(["run", "--resume", out, "train.steps=4", "-q"],
            ["metrics.jsonl", "No space left"], tmp_path, inside=[out])
    assert (out / "checkpoint.pt").read_bytes() == kept


def test_an_unreadable_metrics_log_on_resume_exits_2(spiral_run, tmp_path, sandbox):
    out = tmp_path / "run"
    shutil.copytree(spiral_run, out)  # a finished two-step run of its own
    (out / "metrics.jsonl").unlink()
    (out / "metrics.jsonl").mkdir()  # in the way of every read and write
    refused(["run", "--resume", out, "train.steps=4", "-q"], ["metrics.jsonl"], tmp_path,
            inside=[out])
