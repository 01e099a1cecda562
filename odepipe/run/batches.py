"""Which training items each step sees. Kept apart from the training loop so the order can be
changed (e.g. grouped by length) without touching the loop; resume depends on it being a pure
function of (seed, step)."""

from __future__ import annotations

import warnings
from typing import List, Sized

import torch


class BatchPlan:
    """Which items step ``s`` trains on: epoch-wise permutations seeded by (seed, epoch)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if batch_size > n:
            warnings.warn(
                f"train.batch_size={batch_size} is larger than the {n} training "
                f"items; each step uses all {n}",
                stacklevel=2,
            )
        self.n, self.bs, self.seed = n, min(batch_size, n), seed
        self.per_epoch = max(1, n // self.bs)
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> List[int]:
        epoch, j = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[j * self.bs : (j + 1) * self.bs].tolist()


def plan_for(data: object, items: Sized, batch_size: int, seed: int) -> BatchPlan:
    """The batch plan for ``items`` of ``data``'s training split; the one place the training
    loop asks for it, so a data source's traits (e.g. item lengths) can shape the order."""
    return BatchPlan(len(items), batch_size, seed)
