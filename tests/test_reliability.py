"""Interruptions, untrusted files and output problems: no lost runs, no tracebacks, no code run."""
import errno
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_SPIRAL

from odepipe import Run
from odepipe.cli import cli
from odepipe.errors import CheckpointError
from odepipe.run import checkpoint as ckpt
from odepipe.run.checkpoint import load_checkpoint

RUN = [sys.executable, "-m", "odepipe", "run", "spiral", *TINY_SPIRAL, "train.steps=40",
       "train.checkpoint_every=1", "train.log_every=1", "train.lr_schedule=constant", "-q"]


def wait_for(path, timeout=120):
    end = time.time() + timeout
    while not os.path.exists(path):
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.05)


def final_params(run_dir):
    return load_checkpoint(os.path.join(run_dir, "checkpoint.pt"))


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    whole = str(tmp_path / "whole")
    subprocess.run(RUN + ["--out", whole], check=True, capture_output=True, timeout=300)
    killed = str(tmp_path / "killed")
    proc = subprocess.Popen(RUN + ["--out", killed], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(os.path.join(killed, "checkpoint.pt"))
    time.sleep(random.Random(os.getpid()).uniform(0.0, 0.6))  # a random moment mid-run
    proc.kill()
    proc.wait()
    state = load_checkpoint(os.path.join(killed, "checkpoint.pt"))  # loadable after SIGKILL
    assert 1 <= state["step"] <= 40
    subprocess.run([sys.executable, "-m", "odepipe", "run", "--resume", killed, "-q"], check=True,
                   capture_output=True, timeout=300)
    a, b = final_params(whole), final_params(killed)
    assert a["step"] == b["step"] == 40
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    steps = [json.loads(x)["step"] for x in open(os.path.join(killed, "metrics.jsonl"))
             if x.strip() and "loss" in json.loads(x)]
    assert steps == list(range(1, 41))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path, signum):
    out = str(tmp_path / "run")
    # A job started in the background by a non-interactive shell inherits SIGINT ignored, and
    # Python then leaves it ignored: give the child the default disposition a terminal has.
    proc = subprocess.Popen(RUN[:-4] + ["train.steps=100000", "train.checkpoint_every=0", "-q",
                                        "--out", out],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(os.path.join(out, "metrics.jsonl"))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    assert load_checkpoint(os.path.join(out, "checkpoint.pt"))["step"] >= 1


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EVIL_MARK']}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_checkpoint_runs_nothing(tmp_path, monkeypatch):
    mark = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARK", str(mark))
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": 1, "model": Evil()}, path)  # a pickle that runs a command on load
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(str(path))
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(str(raw))
    assert not mark.exists()


def test_garbage_and_foreign_checkpoints_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(str(junk))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(2)}, other)
    with pytest.raises(CheckpointError, match="not an odepipe checkpoint"):
        load_checkpoint(str(other))


def test_recipe_cannot_import_code_through_a_type_name(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    module = f"odepipe_type_name_probe_{os.getpid()}"
    (tmp_path / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(cli, ["validate", "spiral", f"encoder={module}:Encoder",
                                      f"data={module}"])
    assert result.exit_code == 2 and "unknown encoder type" in result.output
    assert "unknown data type" in result.output
    assert not marker.exists() and module not in sys.modules


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["run", "spiral", *TINY_SPIRAL, "train.steps=1",
                                      "--out", str(blocker / "run")])
    assert result.exit_code == 2 and "choose a writable --out" in result.output


def _full_disk_as_oserror(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _full_disk_as_torch_does(*args, **kwargs):
    # what torch.save's zip writer raises on a really full disk: a RuntimeError, not an OSError
    raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0: "
                       "PytorchStreamWriter failed writing file data/0: file write failed")


@pytest.mark.parametrize("full", [_full_disk_as_oserror, _full_disk_as_torch_does])
def test_full_disk_is_a_clear_error_and_keeps_the_old_checkpoint(tmp_path, monkeypatch, full):
    path = str(tmp_path / "checkpoint.pt")
    ckpt.save_checkpoint(path, {"step": 1})
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match=r"could not write .*checkpoint.pt.*free some disk"):
        ckpt.save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 1
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")] == []


@pytest.mark.parametrize("full", [_full_disk_as_oserror, _full_disk_as_torch_does])
def test_full_disk_during_a_run_exits_2(tmp_path, monkeypatch, full):
    monkeypatch.setattr(torch, "save", full)
    result = CliRunner().invoke(cli, ["run", "spiral", *TINY_SPIRAL, "train.steps=2",
                                      "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2, result.output
    assert "could not write" in result.output and "free some disk space" in result.output
    assert "Traceback" not in result.output


def test_existing_run_folder_is_never_overwritten_silently(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    for overwrite in (False, True):
        with pytest.raises(CheckpointError, match="--overwrite replaces only a run folder"):
            Run.create(str(out), overwrite=overwrite)
    assert (out / "precious.txt").read_text() == "keep"


def test_solver_failure_in_a_run_names_the_options(tmp_path):
    result = CliRunner().invoke(cli, ["run", "spiral", *TINY_SPIRAL, "train.steps=2",
                                      "solver=dopri5", "solver.max_num_steps=2",
                                      "solver.rtol=1e-12",
                                      "solver.atol=1e-12",
                                      "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2, result.output
    assert "solver 'dopri5' failed" in result.output
    for hint in ("solver.rtol", "solver=rk4", "solver.max_num_steps"):
        assert hint in result.output
