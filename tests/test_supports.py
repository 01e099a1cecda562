"""Series/token support: declared on the stage bases, inferred from a required obs_dim or
vocab_size, and a recipe pairing mismatched kinds gives one problem per section."""
from __future__ import annotations

import types

import pytest

import odepipe
from odepipe.supports import data_kind, support_problems, supported


class Anything(odepipe.Encoder):
    def __init__(self, latent_dim: int, obs_dim: int = None, vocab_size: int = None):
        super().__init__()


class SeriesOnly(odepipe.Encoder):
    def __init__(self, latent_dim: int, obs_dim: int):
        super().__init__()


class DeclaredTokens(odepipe.Decoder):
    supports = ("tokens",)


class TextData(odepipe.DataSource):
    supports = ("tokens",)


def test_the_default_is_both_and_inference_and_declaration_narrow_it():
    assert odepipe.Encoder.supports == ("series", "tokens")
    assert supported(Anything) == ("series", "tokens")
    assert supported(SeriesOnly) == ("series",)
    assert supported(DeclaredTokens) == ("tokens",)
    assert data_kind({"vocab_size": 8}) == "tokens" and data_kind({"obs_dim": 2}) == "series"


def test_a_bad_declaration_is_a_clear_type_error():
    bad = type("Bad", (odepipe.Encoder,), {"supports": ("images",)})
    with pytest.raises(TypeError, match=r"Bad.supports = \('images',\): use a tuple of"):
        supported(bad)


def _resolved(section, type_, cls):
    return types.SimpleNamespace(section=section, type=type_, cls=cls)


def test_a_series_only_encoder_on_text_is_one_problem_naming_the_section(host):
    components = {"data": _resolved("data", "text", TextData),
                  "encoder": _resolved("encoder", "series_enc", SeriesOnly),
                  "decoder": _resolved("decoder", "tok", DeclaredTokens)}
    problems = support_problems(components, host.registries)
    assert len(problems) == 1
    assert problems[0].startswith("encoder.type: encoder type 'series_enc' supports series data "
                                  "only, but data type 'text' gives tokens; use a encoder type "
                                  "that supports tokens: ")
    assert "gru" in problems[0] and "lstm" in problems[0]


def test_an_undeclared_source_is_checked_once_its_kind_is_known():
    components = {"data": _resolved("data", "mine", odepipe.DataSource),
                  "decoder": _resolved("decoder", "tok", DeclaredTokens)}
    assert support_problems(components) == []
    assert support_problems(components, kind="series") == [
        "decoder.type: decoder type 'tok' supports tokens data only, but data type 'mine' "
        "gives series"]
