"""The three text data sources of recipes: ``grammar`` (the embedded corpus), ``text`` (the
user's files) and ``hf`` (a hub dataset).

Each is a :class:`TextSource`: its recipe parameters, a :class:`~.corpus.Corpus` that reads
nothing until asked, and a :class:`~.encoding.TextCodec` (tokenizer + settings). Nothing is
read or generated in ``__init__``: the first ``dims()``, ``dataset()`` or ``state()`` reads the
corpus, trains (or finds in the cache) the tokenizer and encodes every split. A finished run
instead calls :meth:`TextSource.restore` with the folder :meth:`TextSource.save` wrote, which
brings the tokenizer back so that encoding and decoding work without any corpus.
"""

from __future__ import annotations

import abc
from typing import Annotated, Any, Dict, List, Literal, Optional, Sequence

import torch

import odepipe
from odepipe import Batch, DataSource, Range

from . import generation
from .corpus import SPLITS, Corpus, FileCorpus, GrammarCorpus, HubCorpus
from .encoding import TextCodec
from .tokenizer import train_tokenizer


class TextSource(DataSource, odepipe.SentenceSource, odepipe.ItemLengths):
    """What every text source shares: lazy preparation, the DataSource contract, saving and
    restoring the codec, the sentence capability used by ``interpolate-sentences``, and item
    lengths, so that training batches group sentences of similar length (less padding).

    Args:
        vocab: SentencePiece vocabulary size (capped, with a warning, when the training
            split cannot support it).
        tokenizer: SentencePiece model type, ``bpe`` or ``unigram``.
        max_tokens: longest sentence in pieces, eos included; longer training sentences are
            skipped with a warning, longer user input is cut with a warning.
        dt: time between two token positions on the latent ODE's clock.
        lowercase: lowercase every sentence (and user input) before tokenizing.
    """

    splits = SPLITS
    supports = ("tokens",)  # known before the (lazy) corpus is read
    kind = "text"

    @odepipe.checked
    def __init__(
        self,
        seed: int = 0,
        vocab: Annotated[int, Range(ge=8, le=10**6)] = 1200,
        tokenizer: Literal["bpe", "unigram"] = "bpe",
        max_tokens: Annotated[int, Range(ge=2, le=10**5)] = 32,
        dt: Annotated[float, Range(gt=0, le=10**3)] = 0.1,
        lowercase: bool = False,
    ):
        self.seed, self.max_tokens, self.dt = seed, max_tokens, dt
        self.settings = {"vocab": vocab, "tokenizer": tokenizer, "lowercase": lowercase}
        self._codec: Optional[TextCodec] = None
        self._ids: Optional[Dict[str, List[List[int]]]] = None
        self._sentences: Dict[str, List[str]] = {}

    @abc.abstractmethod
    def corpus(self) -> Corpus:
        """Where this source's sentences come from (read only when the splits are needed)."""

    # -- lazy preparation ------------------------------------------------------------------------
    def _prepare(self) -> None:
        """Reads the corpus and encodes every split; trains the tokenizer unless one was
        restored (a restored tokenizer is the one the model learned, so it wins)."""
        texts = self.corpus().splits()
        quiet = self._codec is not None
        if self._codec is None:
            s = self.settings
            tokenizer = train_tokenizer(texts["train"], s["vocab"], s["tokenizer"], s["lowercase"])
            quiet = not tokenizer.fresh  # the skip warning is said once, when first trained
            self._codec = TextCodec(tokenizer, self.max_tokens, self.dt)
        ids = {}
        for split in SPLITS:
            ids[split], self._sentences[split] = self._codec.encode_split(
                split, texts[split], quiet=quiet
            )
        self._ids = ids

    @property
    def codec(self) -> TextCodec:
        if self._codec is None:
            self._prepare()
        assert self._codec is not None
        return self._codec

    @property
    def tokenizer(self) -> Any:
        return self.codec.tokenizer

    @property
    def sentences(self) -> Dict[str, List[str]]:
        """The sentences kept in each split (those that fit ``max_tokens``)."""
        if self._ids is None:
            self._prepare()
        return self._sentences

    # -- the DataSource contract -----------------------------------------------------------------
    def dims(self) -> Dict[str, int]:
        return {"vocab_size": self.codec.vocab_size}

    def dataset(self, split: str) -> Sequence[List[int]]:
        if split not in SPLITS:
            raise odepipe.DataError(
                f"data.type={self.kind} has no split {split!r}; splits: {', '.join(SPLITS)}"
            )
        if self._ids is None:
            self._prepare()
        assert self._ids is not None
        return self._ids[split]

    def collate(self, items: Sequence[List[int]]) -> Batch:
        return self.codec.collate(items)

    def item_lengths(self, split: str) -> List[int]:
        """Pieces per sentence (eos included), in the order of ``dataset(split)``."""
        return [len(ids) for ids in self.dataset(split)]

    def times(self, length: int) -> torch.Tensor:
        return self.codec.times(length)

    def state(self) -> Dict[str, Any]:
        """Written to summary.json: which tokenizer (a hash of the training text) the run was
        trained with, so a reloaded run can tell that its text changed since (``load_run``
        compares them)."""
        return {"tokenizer": self.codec.tokenizer.name, "vocab_size": self.codec.vocab_size}

    def save(self, folder: str) -> None:
        """The tokenizer's model file and the settings decoding needs (vocab size,
        max_tokens, dt, lowercase)."""
        self.codec.save(folder)

    def restore(self, folder: str) -> None:
        """Loads what :meth:`save` wrote, so that ``dims()``, encoding and decoding need no
        corpus. A folder without it (a run trained before runs kept their tokenizer) changes
        nothing: the corpus is read on first use, as it was."""
        if TextCodec.saved_in(folder):
            self._codec = TextCodec.load(folder)
            self.max_tokens, self.dt = self._codec.max_tokens, self._codec.dt

    @torch.no_grad()
    def evaluate(self, model: Any, batch: Batch) -> Dict[str, float]:
        """Reconstruction NLL per sentence at the posterior mean (summed over the batch)."""
        out = model(batch, sample=False)
        nll = -model.log_likelihood(out.dist, batch)  # (B,)
        return {"nll_per_sentence": float(nll.sum())}

    # -- the SentenceSource capability -----------------------------------------------------------
    def encode_sentences(self, sentences: Sequence[str]) -> Batch:
        return self.codec.encode_sentences(sentences)

    def decode_latents(self, model: Any, z0: torch.Tensor, beam: int = 1) -> List[str]:
        return generation.decode_latents(model, self.codec, z0, beam)

    def interpolate(
        self,
        model: Any,
        a: str,
        b: str,
        steps: int = 8,
        method: str = "linear",
        beam: int = 1,
        refine: int = 0,
    ) -> List[Dict[str, Any]]:
        return generation.interpolate(model, self.codec, a, b, steps, method, beam, refine)

    def sample(self, model: Any, n: int, out_dir: Optional[str] = None) -> List[str]:
        """Greedy sentences from ``n`` draws of z0 ~ N(0, I) (seeded by the data seed)."""
        return generation.sample_prior(model, self.codec, n, self.seed, out_dir)


class GrammarText(TextSource, odepipe.GrammaticalityJudge):
    """The embedded corpus: sentences of odepipe's own probabilistic English grammar, whose
    recognizer also judges any sentence."""

    kind = "grammar"

    def __init__(
        self,
        seed: int = 0,
        n_train: int = 20000,
        n_valid: int = 500,
        n_test: int = 1000,
        max_words: int = 20,
        vocab: int = 1200,
        tokenizer: Literal["bpe", "unigram"] = "bpe",
        max_tokens: int = 32,
        dt: float = 0.1,
        lowercase: bool = True,
    ):
        if min(n_train, n_valid, n_test) < 1 or max_words < 3:
            raise odepipe.DataError(
                "data.n_train, data.n_valid and data.n_test must be >= 1 and data.max_words >= 3"
            )
        super().__init__(seed, vocab, tokenizer, max_tokens, dt, lowercase)
        self.sizes = {"train": n_train, "valid": n_valid, "test": n_test}
        self.max_words = max_words

    def corpus(self) -> Corpus:
        return GrammarCorpus(self.seed, self.sizes, self.max_words)

    def grammatical(self, sentence: str) -> bool:
        from .grammar import accepts

        return accepts(sentence)


class TextFiles(TextSource):
    """Your own text, one sentence per line, read with the datasets library's "text" builder.

    Give ``path`` (split by ``valid_ratio`` / ``test_ratio``) or ``train_path`` with
    ``valid_path`` and ``test_path``. The files are read on first use, not here.
    """

    kind = "text"

    def __init__(
        self,
        seed: int = 0,
        path: Optional[str] = None,
        train_path: Optional[str] = None,
        valid_path: Optional[str] = None,
        test_path: Optional[str] = None,
        valid_ratio: float = 0.05,
        test_ratio: float = 0.05,
        vocab: int = 4000,
        tokenizer: Literal["bpe", "unigram"] = "bpe",
        max_tokens: int = 48,
        dt: float = 0.1,
        lowercase: bool = False,
    ):
        if path and train_path:
            raise odepipe.DataError("give data.path or data.train_path, not both")
        if not path and not train_path:
            raise odepipe.DataError(
                "data.type=text needs a file: data.path=FILE.txt (split by "
                "data.valid_ratio/test_ratio) or data.train_path=... with "
                "data.valid_path=... data.test_path=..."
            )
        super().__init__(seed, vocab, tokenizer, max_tokens, dt, lowercase)
        self.files = {
            "path": path,
            "train_path": train_path,
            "valid_path": valid_path,
            "test_path": test_path,
        }
        self.ratios = (valid_ratio, test_ratio)

    def corpus(self) -> Corpus:
        return FileCorpus(self.files, *self.ratios, self.seed)


class HubText(TextSource):
    """A text dataset from the Hugging Face hub by name, config, split and column (online)."""

    kind = "hf"

    def __init__(
        self,
        seed: int = 0,
        name: str = "",
        config: Optional[str] = None,
        split: str = "train",
        column: str = "text",
        valid_split: Optional[str] = None,
        test_split: Optional[str] = None,
        valid_ratio: float = 0.05,
        test_ratio: float = 0.05,
        max_sentences: Optional[int] = None,
        vocab: int = 4000,
        tokenizer: Literal["bpe", "unigram"] = "bpe",
        max_tokens: int = 48,
        dt: float = 0.1,
        lowercase: bool = False,
    ):
        if not name:
            raise odepipe.DataError(
                "data.type=hf needs data.name (a hub dataset such as "
                "data.name=wikitext data.config=wikitext-2-raw-v1)"
            )
        super().__init__(seed, vocab, tokenizer, max_tokens, dt, lowercase)
        self.spec = dict(
            name=name,
            config=config,
            split=split,
            column=column,
            valid_split=valid_split,
            test_split=test_split,
        )
        self.ratios, self.max_sentences = (valid_ratio, test_ratio), max_sentences

    def corpus(self) -> Corpus:
        return HubCorpus(self.spec, *self.ratios, self.max_sentences, self.seed)
