"""torchrun with two CPU processes (gloo) against one process: same global batch, same result."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY_SPIRAL


def odepipe(*args, procs=1, timeout=300):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs),
                "--standalone", "-m", "odepipe"] if procs > 1 else [sys.executable, "-m", "odepipe"]
    env = {**os.environ, "ODEPIPE_DIST_TIMEOUT": "60", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(launcher + list(args), capture_output=True, text=True, timeout=timeout,
                         env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def params(run_dir):
    return torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=True)


def test_two_processes_match_one(tmp_path):
    args = ["run", "spiral", *TINY_SPIRAL, "train.steps=4", "-q"]
    odepipe(*args, "--out", str(tmp_path / "one"))
    odepipe(*args, "--out", str(tmp_path / "two"), procs=2)
    one, two = params(tmp_path / "one"), params(tmp_path / "two")
    assert one["step"] == two["step"] == 4
    for k in one["model"]:
        torch.testing.assert_close(one["model"][k], two["model"][k], rtol=1e-5, atol=1e-6)
    s1 = json.load(open(tmp_path / "one" / "summary.json"))
    s2 = json.load(open(tmp_path / "two" / "summary.json"))
    assert s2["processes"] == 2
    assert s1["test_extrap_mse"] == pytest.approx(s2["test_extrap_mse"], rel=1e-4)
    # rank 0 alone wrote the files: one metrics line per logged step, not two
    steps = [json.loads(x)["step"] for x in open(tmp_path / "two" / "metrics.jsonl")
             if "loss" in json.loads(x)]
    assert steps == sorted(set(steps))


def test_resume_under_torchrun(tmp_path):
    # a constant lr, so that extending train.steps on resume does not reshape the schedule
    args = ["spiral", *TINY_SPIRAL, "train.lr_schedule=constant", "-q"]
    odepipe("run", *args, "train.steps=2", "--out", str(tmp_path / "run"), procs=2)
    odepipe("run", "--resume", str(tmp_path / "run"), "train.steps=4", "-q", procs=2)
    odepipe("run", *args, "train.steps=4", "--out", str(tmp_path / "one"))
    a, b = params(tmp_path / "run"), params(tmp_path / "one")
    assert a["step"] == 4
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)


def test_batch_must_divide_among_processes(tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--standalone", "-m", "odepipe", "run", "spiral", *TINY_SPIRAL,
                "train.batch_size=7", "train.steps=1", "--out", str(tmp_path / "r"), "-q"]
    out = subprocess.run(launcher, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "ODEPIPE_DIST_TIMEOUT": "30"})
    assert out.returncode != 0
    assert "divisible by the number of processes (2)" in out.stderr


def test_a_dying_rank_ends_the_job_instead_of_hanging(tmp_path):
    (tmp_path / "die_on_rank1.py").write_text(
        "import os\nif os.environ.get('RANK') == '1':\n    os._exit(3)\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("plugins: [die_on_rank1]\n" + open(os.path.join(os.path.dirname(__file__), "..", "recipes", "spiral.yaml")).read())
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--standalone", "-m", "odepipe", "run", str(recipe), *TINY_SPIRAL,
                "train.steps=2", "--out", str(tmp_path / "r"), "-q"]
    started = time.time()
    out = subprocess.run(launcher, capture_output=True, text=True, timeout=240, cwd=tmp_path,
                         env={**os.environ, "ODEPIPE_DIST_TIMEOUT": "30"})
    assert out.returncode != 0
    assert "exitcode: 3" in out.stderr or "exitcode  : 3" in out.stderr
    assert time.time() - started < 200


TINY_TEXT = ["data.n_train=300", "data.n_valid=20", "data.n_test=20", "data.vocab=200",
             "encoder.hidden_size=16", "encoder.embedding_dim=8", "decoder.hidden_size=16",
             "decoder.embedding_dim=8", "model.latent_dim=4", "train.steps=3",
             "train.batch_size=8", "decoder.word_dropout=0", "-q"]


def test_text_recipe_under_torchrun_matches_one_process(tmp_path, monkeypatch):
    # word dropout draws from each rank's own RNG, so it is off for an exact comparison
    monkeypatch.setenv("ODEPIPE_CACHE", str(tmp_path / "cache"))
    odepipe("run", "text_vae", *TINY_TEXT, "--out", str(tmp_path / "one"))
    odepipe("run", "text_vae", *TINY_TEXT, "--out", str(tmp_path / "two"), procs=2)
    one, two = params(tmp_path / "one"), params(tmp_path / "two")
    for k in one["model"]:
        torch.testing.assert_close(one["model"][k], two["model"][k], rtol=1e-5, atol=1e-5)
    summary = json.load(open(tmp_path / "two" / "summary.json"))
    assert summary["processes"] == 2 and "test_perplexity" in summary
