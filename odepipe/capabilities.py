"""Declared capabilities: what a command needs from a run's data source or decoder, beyond the
stage contracts of :mod:`odepipe.stages`.

A component that offers one subclasses it next to its stage base
(``class MyText(DataSource, SentenceSource)``), and a command checks with
:func:`require_capability` (an ``isinstance`` test) instead of probing for methods: the offer
is visible in the class header, a missing method is an abstract-method error when the class is
first instantiated, and a run that lacks the capability gets one message naming the run, its
component and what is needed, with exit code 2.

No torch at import time: the classes only declare methods.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Type, TypeVar

from .errors import DataError, ModelError

if TYPE_CHECKING:
    import torch

    from .stages import Batch


class Capability(abc.ABC):  # noqa: B024 -- a marker base; each capability declares its methods
    """Base of every declared capability; ``offers`` says in a few words what it gives, for
    the message of :func:`require_capability`."""

    offers: str = ""


T = TypeVar("T", bound=Capability)


class SentenceSource(Capability):
    """A text data source that turns sentences into batches and latent codes back into
    sentences (``odepipe interpolate-sentences``, ``odepipe sample`` on text runs)."""

    offers = "a text source that encodes and decodes sentences"

    @abc.abstractmethod
    def encode_sentences(self, sentences: Sequence[str]) -> "Batch":
        """A batch of the given sentences, tokenized as the model was trained."""

    @abc.abstractmethod
    def decode_latents(self, model: Any, z0: "torch.Tensor", beam: int = 1) -> List[str]:
        """One sentence per initial latent state ``z0 (N, L)``: greedy when ``beam`` is 1,
        else beam search of that width (which needs a :class:`BeamSearchDecoder`)."""

    @abc.abstractmethod
    def interpolate(
        self, model: Any, a: str, b: str, steps: int = 8, method: str = "linear", beam: int = 1
    ) -> List[Dict[str, Any]]:
        """The path from ``a`` to ``b``: ``steps`` points strictly between their codes plus the
        two endpoints, each a dict with at least ``alpha`` and ``sentence``. A source may take
        ``refine: int = 0`` too (``--refine N``: the codes refined by N gradient steps,
        :meth:`odepipe.Pipeline.refine`); the command passes it only when N > 0, and says so
        when the source does not take it."""


class GrammaticalityJudge(Capability):
    """A data source whose language has a recognizer (the embedded grammar): commands mark the
    sentences it rejects."""

    offers = "a grammar that judges sentences"

    @abc.abstractmethod
    def grammatical(self, sentence: str) -> bool:
        """Whether ``sentence`` belongs to the source's language."""


class TokenDecoder(Capability):
    """A decoder that writes token ids one at a time from a latent path."""

    offers = "a token decoder with greedy decoding"

    @abc.abstractmethod
    def greedy(self, z: "torch.Tensor") -> "torch.Tensor":
        """The most likely token at each step given the previous choices; ``z`` is
        ``(B, T, L)``; returns ``(B, T)`` long ids."""


class BeamSearchDecoder(TokenDecoder):
    """A token decoder that can also keep the ``width`` best prefixes at every step."""

    offers = "a token decoder with beam search"

    @abc.abstractmethod
    def beam(self, z: "torch.Tensor", width: int) -> "torch.Tensor":
        """The best sequence found by beam search of ``width``; ``z`` is ``(B, T, L)``;
        returns ``(B, T)`` long ids."""


class SeriesCodecSource(Capability):
    """A series data source whose model units map to CSV columns and back (``odepipe
    extrapolate``): :meth:`series_codec` gives the id, time and feature columns, the time
    scale, ``to_batch(series)`` and ``decode_values(array)``."""

    offers = "a series source that reads and writes CSV through a codec"

    @abc.abstractmethod
    def series_codec(self) -> Any:
        """The codec between the run's model units and its CSV files."""


def require_capability(
    component: Any, capability: Type[T], *, where: str, role: str, command: str, fix: str
) -> T:
    """``component`` if it offers ``capability``; otherwise a user-facing error (exit 2)
    naming where the component is, its class, what ``command`` needs and ``fix``.

    Args:
        component: the run's data source or decoder.
        capability: a :class:`Capability` subclass.
        where: whose component it is, e.g. ``f"the run in {run_dir}"`` or ``"this model"``.
        role: what the component is in the run, e.g. ``"data source"`` or ``"decoder"``.
        command: the command (or option) that needs it, e.g. ``"interpolate-sentences"``.
        fix: what to do instead, e.g. ``"give a run of the grammar, text or hf data sources"``.
    """
    if isinstance(component, capability):
        return component
    offers = capability.offers or capability.__name__
    error = DataError if role.startswith("data") else ModelError
    raise error(
        f"{where} uses {role} {type(component).__name__}, which is not a "
        f"{capability.__name__} ({offers}); {command} needs one: {fix}"
    )


__all__ = [
    "Capability",
    "SentenceSource",
    "GrammaticalityJudge",
    "TokenDecoder",
    "BeamSearchDecoder",
    "SeriesCodecSource",
    "require_capability",
]
