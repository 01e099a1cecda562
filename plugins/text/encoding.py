"""Sentences <-> batches: a trained tokenizer plus the settings a model was trained with.

A :class:`TextCodec` is everything inference needs besides the weights, so it is also what a
run folder keeps (:meth:`TextCodec.save`, :meth:`TextCodec.load`): reopening a run needs
neither its corpus nor a retrained tokenizer.

A batch is ``tokens (B, T)`` padded with the pad id, ``mask (B, T)`` and
``times (T,) = arange(T) * dt``: the latent ODE runs over token positions. Every sentence ends
with eos.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Dict, List, Sequence, Tuple

import torch

import odepipe
from odepipe import Batch

from .tokenizer import EOS_ID, PAD_ID, Tokenizer, warn

#: file names inside the folder a codec is saved to
TOKENIZER_FILE, SETTINGS_FILE = "tokenizer.model", "text.json"
FORMAT = 1


class TextCodec:
    """Encodes sentences for a model and decodes its token ids.

    Args:
        tokenizer: the SentencePiece model trained on the training split.
        max_tokens: longest sentence in pieces, eos included.
        dt: time between two token positions on the latent ODE's clock.
    """

    def __init__(self, tokenizer: Tokenizer, max_tokens: int, dt: float):
        self.tokenizer, self.max_tokens, self.dt = tokenizer, max_tokens, dt

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def times(self, length: int) -> torch.Tensor:
        return torch.arange(length, dtype=torch.float32) * self.dt  # (T,)

    def collate(self, items: Sequence[List[int]]) -> Batch:
        """Pads token-id lists (eos included) into one Batch."""
        T = max(len(ids) for ids in items)
        tokens = torch.full((len(items), T), PAD_ID, dtype=torch.long)
        mask = torch.zeros(len(items), T)
        for i, ids in enumerate(items):
            tokens[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1.0
        return Batch(times=self.times(T), tokens=tokens, mask=mask)  # (B, T), (B, T)

    def encode_split(
        self, split: str, sentences: Sequence[str], quiet: bool = False
    ) -> Tuple[List[List[int]], List[str]]:
        """Ids (eos appended) of the sentences that fit ``max_tokens``, and those sentences.
        Longer or empty ones are skipped, with one warning unless ``quiet``; a split where
        none fits is a DataError naming the key to raise."""
        encoded = self.tokenizer.encode(sentences)
        keep = [i for i, ids in enumerate(encoded) if 0 < len(ids) < self.max_tokens]
        if len(keep) < len(encoded) and not quiet:
            warn(
                f"{len(encoded) - len(keep)} of {len(encoded)} {split} sentences are empty "
                f"or longer than data.max_tokens={self.max_tokens} pieces and were skipped"
            )
        if not keep:
            raise odepipe.DataError(
                f"no {split} sentence fits data.max_tokens={self.max_tokens}; raise data.max_tokens"
            )
        return [encoded[i] + [EOS_ID] for i in keep], [sentences[i] for i in keep]

    def encode_sentences(self, sentences: Sequence[str]) -> Batch:
        """A batch of user sentences. Empty or whitespace-only input is refused; a sentence
        longer than the model reads is cut to its first ``max_tokens - 1`` pieces, with a
        warning naming the limit."""
        items = []
        for s in sentences:
            if not isinstance(s, str) or not s.strip():
                raise odepipe.DataError("a sentence is empty or only whitespace; give some words")
            ids = self.tokenizer.encode([s])[0]
            limit = self.max_tokens - 1
            if len(ids) > limit:
                warn(
                    f"the sentence {_short(s)!r} is {len(ids)} pieces long; this model reads "
                    f"at most {limit} (data.max_tokens={self.max_tokens}), so only its first "
                    f"{limit} pieces are used"
                )
                ids = ids[:limit]
            items.append(ids + [EOS_ID])
        return self.collate(items)

    def decode(self, rows: torch.Tensor) -> List[str]:
        """Text of each row of ids ``(N, T)``, up to its first eos."""
        return [self.tokenizer.decode(row.tolist()) for row in rows]

    # -- persistence -----------------------------------------------------------------------------
    def save(self, folder: str) -> None:
        """Copies the tokenizer's model file and writes the settings into ``folder``."""
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(self.tokenizer.path, os.path.join(folder, TOKENIZER_FILE))
        settings = {
            "format": FORMAT,
            "tokenizer": self.tokenizer.name,
            "vocab_size": self.vocab_size,
            "max_tokens": self.max_tokens,
            "dt": self.dt,
            "lowercase": self.tokenizer.lowercase,
        }
        with open(os.path.join(folder, SETTINGS_FILE), "w", encoding="utf-8") as f:
            json.dump(settings, f, indent=2)

    @staticmethod
    def saved_in(folder: str) -> bool:
        return all(
            os.path.isfile(os.path.join(folder, name)) for name in (TOKENIZER_FILE, SETTINGS_FILE)
        )

    @classmethod
    def load(cls, folder: str) -> "TextCodec":
        """The codec :meth:`save` wrote into ``folder``; a damaged one is a CheckpointError."""
        try:
            with open(os.path.join(folder, SETTINGS_FILE), encoding="utf-8") as f:
                settings: Dict = json.load(f)
            tokenizer = Tokenizer(
                os.path.join(folder, TOKENIZER_FILE),
                lowercase=bool(settings["lowercase"]),
                name=str(settings["tokenizer"]),
            )
            codec = cls(tokenizer, int(settings["max_tokens"]), float(settings["dt"]))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise odepipe.CheckpointError(
                f"the text settings saved in {folder} cannot be read "
                f"({type(exc).__name__}: {exc}); train the run "
                f"again"
            ) from None
        if codec.vocab_size != settings["vocab_size"]:
            raise odepipe.CheckpointError(
                f"the tokenizer saved in {folder} has {codec.vocab_size} pieces but its "
                f"settings say {settings['vocab_size']}; train the run again"
            )
        return codec


def _short(s: str, n: int = 40) -> str:
    return s if len(s) <= n else s[:n] + "..."
