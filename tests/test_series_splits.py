"""The valid split of the series sources: its size, disjoint from train and test, fixed by the
seed, scored like test; and the train and test items of a seed unchanged by it (pinned to the
values the sources gave before the valid split existed)."""

import numpy as np
import pytest
import torch
from odepipe_plugins.series.csv_source import CSVData, resolve_data_path
from odepipe_plugins.series.linear_spirals import LinearSpiralData
from odepipe_plugins.series.spiral import SpiralData

import odepipe
from odepipe.testing import check_data_source

SMALL = dict(n_spirals=12, n_test=6, n_total=60, n_observed=20, n_extrapolate=10)
EXAMPLE = resolve_data_path("data/example_series.csv")


def _values(data, split):
    return data.collate(data.dataset(split)).values.double()


@pytest.mark.parametrize("cls", [SpiralData, LinearSpiralData])
def test_spiral_sources_have_a_valid_split_of_the_asked_size(cls):
    default = cls(seed=0, **SMALL)
    assert default.splits == ("train", "valid", "test")
    assert len(default.dataset("valid")) == 6  # null: as many as n_test
    assert len(cls(seed=0, **{**SMALL, "n_test": 150}).dataset("valid")) == 100  # at most 100
    sized = cls(seed=0, n_valid=9, **SMALL)
    assert [len(sized.dataset(s)) for s in sized.splits] == [12, 9, 6]
    assert cls(seed=0, n_valid=0, **SMALL).splits == ("train", "test")
    check_data_source(sized)


@pytest.mark.parametrize("cls", [SpiralData, LinearSpiralData])
def test_valid_spirals_are_disjoint_from_train_and_test(cls):
    data = cls(seed=1, n_valid=8, **SMALL)
    index = {s: set(data.dataset(s)) for s in data.splits}
    assert not index["valid"] & index["train"] and not index["valid"] & index["test"]
    valid = _values(data, "valid").flatten(1)
    for other in ("train", "test"):  # no valid series equals any other series
        rows = _values(data, other).flatten(1)
        assert torch.cdist(valid, rows).min() > 1e-3


@pytest.mark.parametrize("cls", [SpiralData, LinearSpiralData])
def test_valid_split_is_a_function_of_the_seed(cls):
    first, again = cls(seed=2, **SMALL), cls(seed=2, **SMALL)
    assert torch.equal(_values(first, "valid"), _values(again, "valid"))
    assert not torch.allclose(_values(first, "valid"), _values(cls(seed=3, **SMALL), "valid"))


@pytest.mark.parametrize("n_valid", [0, 5, 50])
def test_train_and_test_spirals_are_those_before_the_valid_split(n_valid):
    # sums the sources gave for this configuration before the valid split existed
    data = SpiralData(seed=5, n_irregular=15, n_valid=n_valid, **SMALL)
    train = data.collate(data.dataset("train"))
    test = data.collate(data.dataset("test"))
    assert float(train.values.double().sum()) == pytest.approx(188.44889117684215, abs=1e-9)
    assert float(test.values.double().sum()) == pytest.approx(217.79658034443855, abs=1e-9)
    assert float(test.extras["future"].double().sum()) == pytest.approx(19.27992883324623,
                                                                         abs=1e-9)
    assert float((test.mask * test.values[..., 0]).double().sum()) == pytest.approx(
        166.86154806613922, abs=1e-9)  # the same observed points of each irregular spiral
    linear = LinearSpiralData(seed=5, n_valid=n_valid, **SMALL)
    assert float(_values(linear, "train").sum()) == pytest.approx(-16.140664082602598, abs=1e-9)
    future = linear.collate(linear.dataset("test")).extras["future"].double().sum()
    assert float(future) == pytest.approx(-0.4808995575986046, abs=1e-9)


class _Zero(torch.nn.Module):
    """A stand-in model predicting 0 everywhere: enough to see which keys evaluate gives."""

    def reconstruct(self, batch):
        return torch.zeros_like(batch.values)

    def extrapolate(self, batch, times):
        return torch.zeros(batch.size, times.shape[-1], batch.values.shape[-1])


@pytest.mark.parametrize("make", [lambda: SpiralData(seed=0, **SMALL),
                                  lambda: LinearSpiralData(seed=0, **SMALL),
                                  lambda: CSVData(EXAMPLE)])
def test_valid_is_scored_with_the_test_split_metrics(make):
    data = make()
    scores = {s: data.evaluate(_Zero(), data.collate(data.dataset(s)[:4]))
              for s in ("valid", "test")}
    assert set(scores["valid"]) == set(scores["test"])
    assert "extrap_mse" in scores["valid"] and scores["valid"]["extrap_mse"] > 0


def test_csv_valid_split_comes_out_of_training_and_keeps_the_test_series():
    data = CSVData(EXAMPLE, seed=3)
    assert data.splits == ("train", "valid", "test")
    # the test series this seed held out before the valid split existed
    assert data.dataset("test") == [6, 9, 15, 23, 25, 34, 42, 45, 59, 64, 67, 71, 75, 77, 82,
                                    83, 93, 96, 97, 98]
    split = {s: set(data.dataset(s)) for s in data.splits}
    assert [len(split[s]) for s in data.splits] == [70, 10, 20]
    assert split["train"] | split["valid"] | split["test"] == set(range(100))
    assert not split["valid"] & (split["train"] | split["test"])
    assert data.state()["series"] == {"train": 70, "valid": 10, "test": 20}
    again = CSVData(EXAMPLE, seed=3)
    assert again.dataset("valid") == data.dataset("valid")
    assert CSVData(EXAMPLE, seed=4).dataset("valid") != data.dataset("valid")
    check_data_source(data)


def test_csv_normalization_is_fitted_on_the_training_series_only():
    data = CSVData(EXAMPLE, valid_fraction=0.3)
    train = np.concatenate([data.series[i].values for i in data.dataset("train")])
    assert np.allclose(data.codec.mean, np.nanmean(train, 0))
    everything = np.concatenate([s.values for s in data.series])
    assert not np.allclose(data.codec.mean, np.nanmean(everything, 0))


def test_csv_valid_fraction_zero_or_too_small_gives_no_valid_split(tmp_path):
    assert CSVData(EXAMPLE, valid_fraction=0).splits == ("train", "test")
    few = tmp_path / "few.csv"
    few.write_text("series,time,a\n" + "".join(f"s{i},0,{i}\ns{i},1,{i + 1}\n" for i in range(4)))
    assert CSVData(str(few), valid_fraction=0.1).splits == ("train", "test")  # 0.4 series
    with pytest.raises(odepipe.DataError, match="data.test_fraction=0.5 and "
                                                "data.valid_fraction=0.5"):
        CSVData(EXAMPLE, test_fraction=0.5, valid_fraction=0.5)
