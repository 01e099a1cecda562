"""Sequence-to-text: sentence data sources (the embedded grammar, real English from the World
English Bible, the user's files, a hub dataset), the SentencePiece tokenizer, autoregressive
token decoders, a convolutional sentence encoder, the shipped default model,
``odepipe interpolate-sentences`` and ``odepipe models``."""

from __future__ import annotations

from typing import Any

import odepipe

_HERE = __name__


@odepipe.hookimpl
def odepipe_register_data_sources(register: odepipe.Register) -> None:
    register("grammar", f"{_HERE}.sources:GrammarText")
    register("text", f"{_HERE}.sources:TextFiles")
    register("hf", f"{_HERE}.sources:HubText")
    register("english", f"{_HERE}.english_source:EnglishText")


@odepipe.hookimpl
def odepipe_register_encoders(register: odepipe.Register) -> None:
    register("text_conv", f"{_HERE}.encoders:ConvPoolTextEncoder")


@odepipe.hookimpl
def odepipe_register_decoders(register: odepipe.Register) -> None:
    register("text_gru", f"{_HERE}.decoders:GRUTextDecoder")
    register("text_lstm", f"{_HERE}.decoders:LSTMTextDecoder")


@odepipe.hookimpl
def odepipe_register_commands(cli: Any) -> None:
    from .commands import interpolate_sentences, models

    cli.add_command(interpolate_sentences)
    cli.add_command(models)
