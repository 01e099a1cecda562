"""odepipe extrapolate and odepipe sample, end to end on tiny runs."""
import csv
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import TINY_SPIRAL
from odepipe_plugins.series.csv_source import resolve_data_path

from odepipe import Run
from odepipe.cli import make_cli, new_host
from odepipe.recipe import load_recipe
from odepipe.run.train import train

SEED_CSV = resolve_data_path("data/example_seed.csv")
cli = make_cli(new_host())


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    out = Run.create(str(tmp_path_factory.mktemp("csv") / "run")).path
    recipe = load_recipe("csv_example", ["train.steps=3", "train.plot=false",
                                         "train.checkpoint_every=0", "train.threads=1"])
    train(recipe, out, progress=False)
    return out


def _invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_extrapolate_example_csv_end_to_end(csv_run, tmp_path):
    out = tmp_path / "pred.csv"
    result = _invoke("extrapolate", "--run", csv_run, "--input", SEED_CSV, "--until", "15",
                     "--points", "50", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out)))
    ids = sorted({r["series"] for r in rows})
    assert ids == ["s1_000", "s1_001", "s1_002"] and len(rows) == 3 * 50
    assert list(rows[0]) == ["series", "time", "x", "v"]
    assert float(rows[49]["time"]) == pytest.approx(15.0)
    assert all(r["x"] not in ("", "nan") for r in rows)
    assert (tmp_path / "pred.png").stat().st_size > 1000
    assert "wrote" in result.output and "s1_001" in result.output


def test_extrapolate_default_output_and_bad_until(csv_run):
    result = _invoke("extrapolate", "--run", csv_run, "--input", SEED_CSV, "--until", "12")
    assert result.exit_code == 0, result.output
    assert os.path.isfile(os.path.join(csv_run, "extrapolations", "example_seed.csv"))
    result = _invoke("extrapolate", "--run", csv_run, "--input", SEED_CSV, "--until", "0.5")
    assert result.exit_code == 2 and "later --until" in result.output


def test_extrapolate_names_missing_columns(csv_run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("series,time,x\na,0,1\n")
    result = _invoke("extrapolate", "--run", csv_run, "--input", str(bad), "--until", "3")
    assert result.exit_code == 2
    assert "no feature column 'v'" in result.output and "use the run's columns" in result.output


def test_extrapolate_refuses_a_changed_training_file(tmp_path):
    data = tmp_path / "train.csv"
    rows = ["series,time,x"] + [f"s{i},{t},{(i + 1) * t}" for i in range(4) for t in range(5)]
    data.write_text("\n".join(rows) + "\n")
    out = Run.create(str(tmp_path / "run")).path
    recipe = load_recipe("csv_example", [f"data.path={data}", "train.steps=2", "train.plot=false",
                                         "train.batch_size=4"])
    train(recipe, out, progress=False)
    data.write_text("\n".join(rows[:-1] + ["s3,4,100"]) + "\n")  # edited after training
    seed = tmp_path / "seed.csv"
    seed.write_text("series,time,x\nq,0,1\nq,1,2\n")
    result = _invoke("extrapolate", "--run", out, "--input", str(seed), "--until", "3")
    assert result.exit_code == 2 and "changed after training" in result.output


def test_sample_spiral_and_csv_runs(csv_run, tmp_path):
    spiral = Run.create(str(tmp_path / "spiral")).path
    train(load_recipe("spiral", TINY_SPIRAL + ["train.steps=2"]), spiral, progress=False)
    result = _invoke("sample", "--run", spiral, "-n", "3", "--out", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("sample0: 200 points")
    rows = list(csv.DictReader(open(tmp_path / "s" / "samples.csv")))
    assert len(rows) == 3 * 200 and list(rows[0]) == ["series", "time", "x", "y"]
    again = _invoke("sample", "--run", spiral, "-n", "3")
    assert again.output.splitlines()[:3] == lines[:3]  # seeded, and no files without --out
    result = _invoke("sample", "--run", csv_run, "-n", "2", "--seed", "1")
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 2


def test_sample_and_extrapolate_need_a_run(tmp_path):
    result = _invoke("sample", "--run", str(tmp_path), "-n", "2")
    assert result.exit_code == 2 and "not an odepipe run folder" in result.output


def test_commands_module_is_torch_free():
    code = "import sys, odepipe_plugins.series.commands; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sample_into_an_unwritable_folder_exits_2(csv_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _invoke("sample", "--run", csv_run, "-n", "2", "--out", str(blocker / "s"))
    assert result.exit_code == 2, result.output
    assert "cannot write the samples" in result.output
    assert "choose a writable --out" in result.output
