"""The csv source: long-format reading, gaps, normalization, splits and errors that name the
file, the line and the column."""
import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from odepipe_plugins.series.csv_source import CSVData, resolve_data_path, write_example
from odepipe_plugins.series.series_io import read_long_csv

import odepipe
from odepipe import Run
from odepipe.cli import cli
from odepipe.recipe import load_recipe
from odepipe.run.train import train
from odepipe.testing import check_data_source

GOOD = """series,time,a,b
s1,0.0,1.0,10
s1,2.0,,12
s1,1.0,2.0,NA
s2,5.0,3.0,11
s2,5.5,4.0,
s2,7.0,,
s3,1.0,5.0,13
s3,3.0,6.0,14
"""


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_reads_long_format_with_gaps(tmp_path):
    features, series = read_long_csv(_write(tmp_path, GOOD))
    assert features == ["a", "b"]
    assert [s.id for s in series] == ["s1", "s2", "s3"]
    s1 = series[0]
    assert s1.times.tolist() == [0.0, 1.0, 2.0]  # sorted by time
    assert np.isnan(s1.values[1, 1]) and np.isnan(s1.values[2, 0])
    assert len(series[1].times) == 2  # the all-missing row at t=7 is dropped


def test_batch_has_per_sample_times_mask_and_training_normalization(tmp_path):
    data = CSVData(_write(tmp_path, GOOD), test_fraction=0.34, time_scale=1.0)
    assert len(data.dataset("test")) == 1 and len(data.dataset("train")) == 2
    batch = data.collate([0, 1])
    assert batch.times.shape == (2, 3) and batch.mask.shape == (2, 3, 2)
    assert batch.times[1].tolist() == pytest.approx([0.0, 0.5, 0.501])  # own start; padded
    assert batch.mask[1, 2].sum() == 0 and batch.mask[0, 1].tolist() == [1.0, 0.0]
    train_values = np.concatenate([data.series[i].values for i in data.dataset("train")])
    assert np.allclose(data.codec.mean, np.nanmean(train_values, 0))
    observed = batch.values[batch.mask > 0]
    assert torch.isfinite(observed).all()
    assert data.state() == CSVData(_write(tmp_path, GOOD), test_fraction=0.34,
                                   time_scale=1.0).state()  # recomputed the same


def test_csv_source_keeps_the_data_source_contract(tmp_path):
    batches = check_data_source(CSVData(_write(tmp_path, GOOD), test_fraction=0.34))
    assert set(batches) == {"train", "test"}


def test_time_scale_default_makes_the_median_span_five(tmp_path):
    data = CSVData(_write(tmp_path, GOOD), test_fraction=0.0)
    assert data.splits == ("train",)
    assert data.codec.time_scale == pytest.approx(2.0 / 5)


BAD = [
    ("", "is empty"),
    ("id,time,a\nx,0,1\n", "line 1 (the header) has no series id column 'series'"),
    ("series,tim,a\nx,0,1\n", "did you mean 'tim'"),
    ("series,time\nx,0\n", "no feature columns"),
    ("series,time,a\nx,0,1\nx,1\n", "line 3 has 2 fields but the header has 3"),
    ("series,time,a\nx,0,1\nx,zero,2\n", "line 3, column 'time': 'zero' is not a finite number"),
    ("series,time,a\nx,0,1\nx,1,abc\n", "line 3, column 'a': 'abc' is not a number"),
    ("series,time,a\nx,0,1\n\nx,0,2\n", "line 4: series 'x' has time 0 twice (also line 2)"),
    ("series,time,a\n,0,1\n", "line 2, column 'series': the series id is empty"),
    ("series,time,a,b\nx,0,1,\ny,1,2,\n", "column 'b' has no value"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_malformed_files_name_file_line_and_column(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(odepipe.DataError) as info:
        CSVData(path, test_fraction=0.0)
    assert message in str(info.value)
    assert str(info.value).startswith(path)


def test_missing_file_and_unknown_feature(tmp_path):
    with pytest.raises(odepipe.DataError, match="set data.path"):
        CSVData(str(tmp_path / "nope.csv"))
    with pytest.raises(odepipe.DataError, match="feature column 'c'"):
        CSVData(_write(tmp_path, GOOD), features=["a", "c"])


def test_cli_reports_a_bad_file_without_traceback(tmp_path):
    path = _write(tmp_path, "series,time,a\nx,0,1\nx,1,abc\n")
    result = CliRunner().invoke(cli, ["run", "csv_example", f"data.path={path}", "--out",
                                      str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2
    assert "line 3, column 'a'" in result.output and "Traceback" not in result.output


def test_shipped_example_resolves_and_trains(tmp_path):
    assert os.path.isfile(resolve_data_path("data/example_series.csv"))
    fresh = tmp_path / "example.csv"
    write_example(str(fresh))
    shipped = resolve_data_path("data/example_series.csv")
    assert fresh.read_text() == open(shipped).read()  # the shipped file is the generator's
    recipe = load_recipe("csv_example", ["train.steps=3", "train.plot=false",
                                         "train.checkpoint_every=0"])
    out = Run.create(str(tmp_path / "run")).path
    summary = train(recipe, out, progress=False)
    assert summary["data"]["features"] == ["x", "v"]
    assert json.load(open(os.path.join(out, "summary.json")))["data"] == summary["data"]
    assert summary["test_extrap_mse"] > 0 and summary["test_recon_mse"] > 0


def test_a_run_without_test_split_trains_and_plots(tmp_path):
    recipe = load_recipe("csv_example", [f"data.path={_write(tmp_path, GOOD)}",
                                         "data.test_fraction=0", "train.steps=2",
                                         "train.plot=true", "train.batch_size=3"])
    out = Run.create(str(tmp_path / "run")).path
    summary = train(recipe, out, progress=False)
    assert summary["steps"] == 2 and not any(k.startswith("test_") for k in summary)
    assert os.path.isfile(os.path.join(out, "plots", "loss.png"))
