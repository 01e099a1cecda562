"""Issue 16's series cases: CSV statistics that are not finite, a series too long to train on,
and ``odepipe extrapolate``'s options out of range or an unwritable output. Each is exit code 2
with a message naming the column or option and the fix, no traceback, nothing written."""
import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from odepipe_plugins.series.csv_source import CSVData, resolve_data_path

import odepipe
from odepipe import Run
from odepipe.cli import make_cli, new_host
from odepipe.recipe import load_recipe
from odepipe.run.train import train

CLI = make_cli(new_host())
SEED_CSV = resolve_data_path("data/example_seed.csv")


def _invoke(*args):
    return CliRunner().invoke(CLI, [str(a) for a in args])


def _files(root: Path):
    return {p: hashlib.sha1(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def _refused(result, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output


def _series(rows: int, ids=("s1", "s2", "s3"), value=lambda i, t: t % 7):
    return "series,time,a\n" + "".join(f"{sid},{t},{value(i, t)}\n"
                                       for i, sid in enumerate(ids) for t in range(rows))


@pytest.mark.parametrize("cell", ["1e300", "-3e200"])
def test_a_column_whose_statistics_overflow_is_an_error_naming_it(tmp_path, cell):
    path = tmp_path / "huge.csv"
    path.write_text(_series(4) + f"s1,9,{cell}\n")
    with pytest.raises(odepipe.DataError) as info:
        CSVData(str(path), test_fraction=0, valid_fraction=0)
    message = str(info.value)
    assert "column 'a'" in message and "line 14" in message and "data.features" in message
    result = _invoke("run", "csv_example", f"data.path={path}", "data.test_fraction=0",
                     "data.valid_fraction=0", "--out", tmp_path / "run", "-q")
    _refused(result, "column 'a'", "rescale the column")
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("cell", ["inf", "-Infinity", "1e400"])
def test_an_infinite_cell_names_line_column_and_fix(tmp_path, cell):
    path = tmp_path / "inf.csv"
    path.write_text(_series(2) + f"s2,5,{cell}\n")
    with pytest.raises(odepipe.DataError, match=r"line 8, column 'a': .* is infinite .*finite"):
        CSVData(str(path))


def test_times_spanning_beyond_float64_name_the_time_column(tmp_path):
    path = tmp_path / "span.csv"
    path.write_text("series,time,a\ns1,-1e308,1\ns1,1e308,2\ns2,0,1\ns2,1,2\n")
    with pytest.raises(odepipe.DataError, match="column 'time': the times of a series span"):
        CSVData(str(path), test_fraction=0, valid_fraction=0)


def test_a_series_beyond_max_points_is_refused_before_parsing(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(_series(60, ids=("long",)))
    result = _invoke("run", "csv_example", f"data.path={path}", "data.max_points=50", "--out",
                     tmp_path / "run", "-q")
    _refused(result, "series 'long' has 60 rows", "data.max_points=50", "'long_0'")
    data = CSVData(str(path), max_points=60)  # raising the limit is the other fix
    assert len(data.series[0].times) == 60


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    out = Run.create(str(tmp_path_factory.mktemp("csv") / "run")).path
    recipe = load_recipe("csv_example", ["train.steps=2", "train.plot=false",
                                         "train.checkpoint_every=0", "train.threads=1",
                                         "train.eval_every=0"])
    train(recipe, out, progress=False)
    return out


@pytest.mark.parametrize("options, needles", [
    (["--until", "nan"], ["--until", "'nan' is not a finite number"]),
    (["--until", "inf"], ["--until", "not a finite number"]),
    (["--until", "-inf"], ["--until", "not a finite number"]),
    (["--until", "9"], ["--until", "s1_001 is observed up to time 9.2488", "later --until"]),
    (["--until", "15", "--points", "0"], ["--points", "1<=x<=1000000"]),
    (["--until", "15", "--points", "100000000"], ["--points"]),
    (["--until", "15", "--points", "1000000"], ["--points", "3 series x 1000000 points",
                                                "--points 666666 or fewer"]),
    (["--until", "15", "--out", "blocker/p.csv"], ["--out", "blocker is a file, not a folder",
                                                   "nothing was written"]),
    (["--until", "15", "--out", "."], ["--out", "directory"]),
])
def test_extrapolate_refuses_bad_options_and_writes_nothing(csv_run, tmp_path, monkeypatch,
                                                           options, needles):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("mine")
    before, run_before = _files(tmp_path), _files(Path(csv_run))
    _refused(_invoke("extrapolate", "--run", csv_run, "--input", SEED_CSV, *options), *needles)
    assert _files(tmp_path) == before and _files(Path(csv_run)) == run_before


def test_extrapolate_to_one_point_predicts_at_until(csv_run, tmp_path):
    out = tmp_path / "deep" / "folder" / "p.csv"
    result = _invoke("extrapolate", "--run", csv_run, "--input", SEED_CSV, "--until", "15",
                     "--points", "1", "--out", out)
    assert result.exit_code == 0, result.output
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == 3 and all(r.split(",")[1] == "15" for r in rows)
    assert os.path.isfile(out.with_suffix(".png"))


def test_extrapolate_holds_an_over_long_input_series_to_data_max_points(csv_run, tmp_path):
    header, row = Path(SEED_CSV).read_text().splitlines()[:2]
    rest = row.split(",")[2:]
    long_csv = tmp_path / "long.csv"
    long_csv.write_text(header + "\n" + "".join(f"s1,{t},{','.join(rest)}\n"
                                                for t in range(5001)))
    before = _files(Path(csv_run))
    result = _invoke("extrapolate", "--run", csv_run, "--input", long_csv, "--until", "1e5")
    _refused(result, "series 's1' has 5,001 rows", "data.max_points=5,000", "Cut it into windows")
    assert _files(Path(csv_run)) == before
