"""A token data source small enough for exact checks of text likelihoods: random sentences of
2..6 pieces with eos (id 3) last, padded by collate, with per-item word counts in extras
unless ``words=False``."""

from typing import Any, Dict, List, Sequence

import torch

from odepipe import Batch, DataSource


class Sentences(DataSource):
    def __init__(self, n: int = 24, vocab: int = 12, seed: int = 0, words: bool = True):
        gen = torch.Generator().manual_seed(seed)
        lengths = torch.randint(2, 7, (n,), generator=gen).tolist()
        self.items = [torch.randint(4, vocab, (k,), generator=gen).tolist() + [3] for k in lengths]
        self.vocab, self.words = vocab, words

    def dataset(self, split: str) -> List[List[int]]:
        return self.items

    def collate(self, items: Sequence[List[int]]) -> Batch:
        width = max(len(i) for i in items)
        tokens = torch.zeros(len(items), width, dtype=torch.long)
        mask = torch.zeros(len(items), width)
        for row, ids in enumerate(items):
            tokens[row, : len(ids)], mask[row, : len(ids)] = torch.tensor(ids), 1.0
        words = torch.tensor([max(1, (len(i) - 1) // 2) for i in items], dtype=torch.float64)
        return Batch(times=torch.arange(width) * 0.1, tokens=tokens, mask=mask,
                     extras={"words": words} if self.words else {})

    def dims(self) -> Dict[str, Any]:
        return {"vocab_size": self.vocab}
