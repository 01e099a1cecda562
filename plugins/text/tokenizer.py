"""SentencePiece tokenization trained on a training split, cached by the split's content hash.

Why SentencePiece: a word the model never saw is still split into known pieces (down to single
characters), so user input never fails on an unknown word. Ids are fixed across every text
source so the text decoder can rely on them: pad 0, unk 1, bos 2, eos 3.

The trained model lives in ``<cache>/tokenizers/<sha256>.model`` where ``<cache>`` is
``$ODEPIPE_CACHE`` or ``~/.cache/odepipe``; the same sentences and settings give the same file,
so training again on the same text does not retrain it. A run keeps its own copy (see
:mod:`.encoding`), so reopening it needs neither the cache nor the corpus.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
from typing import Any, Iterable, List, Optional, Sequence

import odepipe

from .cache import cache_root

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def warn(message: str) -> None:
    """One warning line on stderr (kept out of ``warnings`` so the CLI prints no file paths)."""
    print(f"odepipe: warning: {message}", file=sys.stderr)


class Tokenizer:
    """A loaded SentencePiece model with odepipe's special ids.

    ``name`` identifies the trained model (its cache file name, a hash of the training text
    and settings) wherever the file was copied to, e.g. into a run folder.
    """

    def __init__(self, model_file: str, lowercase: bool = False, name: Optional[str] = None):
        spm = sentencepiece()
        self.path = model_file
        self.name = name or os.path.basename(model_file)
        self.lowercase = lowercase
        self.fresh = False  # trained by this call (not loaded from the cache)
        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        self._starts: Optional[List[bool]] = None  # per id: opens a word (word_counts)

    @property
    def vocab_size(self) -> int:
        return int(self.sp.get_piece_size())

    def normalize(self, text: str) -> str:
        text = " ".join(text.split())
        return text.lower() if self.lowercase else text

    def encode(self, texts: Sequence[str]) -> List[List[int]]:
        """Piece ids of each text, without bos/eos."""
        return self.sp.encode([self.normalize(t) for t in texts])

    def pieces(self, text: str) -> List[str]:
        return self.sp.encode(self.normalize(text), out_type=str)

    def word_counts(self, rows: Iterable[Sequence[int]]) -> List[int]:
        """Words in each row of piece ids: pieces that open a word (SentencePiece's leading
        "\u2581"), so per-word perplexity needs no second pass over the text. Specials count
        nothing."""
        if self._starts is None:
            self._starts = [
                self.sp.id_to_piece(i).startswith("\u2581") and not self.sp.is_control(i)
                for i in range(self.vocab_size)
            ]
        starts = self._starts
        return [sum(1 for i in row if starts[int(i)]) for row in rows]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` up to the first eos; pad, bos and unk markers are dropped."""
        kept: List[int] = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                kept.append(i)
        return self.sp.decode(kept)


def train_tokenizer(
    sentences: Sequence[str],
    vocab_size: int,
    model_type: str = "unigram",
    lowercase: bool = False,
    cache_dir: str | None = None,
) -> Tokenizer:
    """The tokenizer of ``sentences``: loaded from the cache when these exact sentences and
    settings were seen before, else trained (deterministically, one thread) and cached.

    A ``vocab_size`` larger than the corpus supports is capped to what it does support, with a
    warning; one too small for the corpus's characters is a DataError naming the fix.
    """
    if vocab_size < 8:
        raise odepipe.DataError(f"data.vocab={vocab_size} is too small; use at least 100")
    if not sentences:
        raise odepipe.DataError("the training split is empty; a tokenizer needs sentences")
    texts = [" ".join(s.split()).lower() if lowercase else " ".join(s.split()) for s in sentences]
    digest = hashlib.sha256()
    digest.update(f"v1|{vocab_size}|{model_type}|{lowercase}\n".encode())
    for t in texts:
        digest.update(t.encode("utf-8") + b"\n")
    folder = os.path.join(cache_dir or cache_root(), "tokenizers")
    path = os.path.join(folder, digest.hexdigest()[:32] + ".model")
    if os.path.isfile(path):
        return Tokenizer(path, lowercase)

    spm = sentencepiece()
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        prefix = os.path.join(tmp, "sp")
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_prefix=prefix,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                num_threads=1,
                hard_vocab_limit=False,
                shuffle_input_sentence=False,
                minloglevel=2,
            )
        except RuntimeError as exc:
            text = str(exc)
            needed = re.search(r"required_chars", text)
            hint = (
                " (it must cover every distinct character of the corpus plus 4 specials)"
                if needed
                else ""
            )
            raise odepipe.DataError(
                f"SentencePiece could not build a vocabulary of "
                f"data.vocab={vocab_size}{hint}: {text.strip()}; "
                f"raise data.vocab"
            ) from None
        os.replace(prefix + ".model", path)
    tok = Tokenizer(path, lowercase)
    tok.fresh = True
    if tok.vocab_size < vocab_size:
        warn(
            f"data.vocab={vocab_size} is larger than this training split supports; "
            f"capped at {tok.vocab_size} pieces (set data.vocab={tok.vocab_size} to "
            f"silence this)"
        )
    return tok


def sentencepiece() -> Any:
    """The sentencepiece module, or a clear error naming the install command: it comes with
    odepipe's optional ``text`` extra, which an install without it lacks."""
    try:
        import sentencepiece as spm
    except ImportError:
        raise odepipe.DataError(
            "the text data sources need sentencepiece, part of odepipe's "
            "text extra: pip install 'odepipe[text]'"
        ) from None
    return spm
