"""Declared capabilities: nominal bases checked with isinstance, one clear refusal (exit 2)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import odepipe


class _Echo(odepipe.SentenceSource):
    def encode_sentences(self, sentences):
        return list(sentences)

    def decode_latents(self, model, z0, beam=1):
        return ["x"] * len(z0)

    def interpolate(self, model, a, b, steps=8, method="linear", beam=1):
        return [{"alpha": 0.0, "sentence": a}, {"alpha": 1.0, "sentence": b}]


def test_a_component_that_offers_the_capability_is_returned_as_is():
    echo = _Echo()
    assert odepipe.require_capability(echo, odepipe.SentenceSource, where="the run in r",
                                      role="data source", command="c", fix="f") is echo


@pytest.mark.parametrize("role, error", [("data source", odepipe.DataError),
                                         ("decoder", odepipe.ModelError)])
def test_a_missing_capability_names_the_run_the_component_and_the_fix(role, error):
    with pytest.raises(error) as info:
        odepipe.require_capability(object(), odepipe.SeriesCodecSource, where="the run in runs/x",
                                   role=role, command="extrapolate", fix="give a csv run")
    message = str(info.value)
    assert message.startswith(f"the run in runs/x uses {role} object, which is not a "
                              f"SeriesCodecSource (a series source that reads and writes CSV")
    assert message.endswith("extrapolate needs one: give a csv run")
    assert info.value.exit_code == 2


def test_a_method_probe_is_not_enough_the_base_must_be_declared():
    class LooksLikeText:  # has the methods, but does not say so
        encode_sentences = decode_latents = interpolate = _Echo.interpolate

    with pytest.raises(odepipe.DataError, match="not a SentenceSource"):
        odepipe.require_capability(LooksLikeText(), odepipe.SentenceSource, where="w",
                                   role="data source", command="c", fix="f")


def test_a_declared_capability_without_its_method_cannot_be_built():
    class Half(odepipe.TokenDecoder):
        pass

    with pytest.raises(TypeError, match="greedy"):
        Half()

    class Greedy(odepipe.TokenDecoder):
        def greedy(self, z):
            return z

    assert not isinstance(Greedy(), odepipe.BeamSearchDecoder)


def test_series_sources_declare_the_csv_codec():
    from odepipe_plugins.series.csv_source import CSVData
    from odepipe_plugins.series.linear_spirals import LinearSpiralData
    from odepipe_plugins.series.spiral import SpiralData

    for cls in (SpiralData, LinearSpiralData, CSVData):
        assert issubclass(cls, odepipe.SeriesCodecSource) and issubclass(cls, odepipe.DataSource)
        assert not issubclass(cls, odepipe.SentenceSource)


def test_the_capabilities_module_needs_no_torch():
    code = ("import sys, odepipe; odepipe.SentenceSource; odepipe.require_capability; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
