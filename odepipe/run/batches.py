"""Which training items each step sees. Kept apart from the training loop so the order can be
changed (here: grouped by length) without touching the loop; resume depends on it being a pure
function of (seed, step).

Two plans:

- :class:`BatchPlan`, for every source: epoch-wise random permutations, cut into batches.
- :class:`LengthGroupedPlan`, for a source that declares :class:`ItemLengths` (the text
  sources do): the same permutation of the epoch, cut into pools of :data:`POOL_BATCHES`
  consecutive batches; each pool is sorted by item length and cut into batches, and the
  epoch's batches are shuffled. A batch then holds sentences of similar length, so padding
  almost vanishes (1.19 padded positions per real token -> 0.025 on text_vae's grammar
  corpus, measured by benchmarks/text_throughput.py), while every item is still seen once per epoch
  and which items meet in a batch still changes from epoch to epoch.

Both are pure functions of (seed, epoch) per epoch, so step ``s`` gets the same batch however
the run got there (a resumed run included).
"""

from __future__ import annotations

import abc
import warnings
from typing import List, Sequence, Sized

import torch

from ..capabilities import Capability
from ..errors import DataError

#: batches per pool of a length-grouped plan: sorting within 50 batches' worth of items
#: leaves little padding, while the pool is small enough that batch composition stays random
POOL_BATCHES = 50


class ItemLengths(Capability):
    """A data source whose training items have a length that sets their cost (tokens of a
    sentence): training groups items of similar length into batches (:func:`plan_for`).
    A source without it keeps the plain random order."""

    offers = "item lengths for length-grouped batches"

    @abc.abstractmethod
    def item_lengths(self, split: str) -> Sequence[int]:
        """The length of every item of ``split``, in the order of ``dataset(split)``."""


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

    def permutation(self, epoch: int) -> torch.Tensor:
        """The order of the items in ``epoch``, ``(n,)``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def order(self, epoch: int) -> torch.Tensor:
        """The items of ``epoch`` in the order the steps take them; batch ``j`` is the slice
        ``[j * bs, (j + 1) * bs)``."""
        return self.permutation(epoch)

    def indices(self, step: int) -> List[int]:
        epoch, j = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, self.order(epoch)
        return self._perm[j * self.bs : (j + 1) * self.bs].tolist()


class LengthGroupedPlan(BatchPlan):
    """Batches of items of similar length (see the module docstring); ``lengths[i]`` is item
    ``i``'s length. The items an epoch uses are those :class:`BatchPlan` would use."""

    def __init__(
        self, lengths: Sequence[int], batch_size: int, seed: int, pool_batches: int = POOL_BATCHES
    ):
        super().__init__(len(lengths), batch_size, seed)
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.pool = max(1, pool_batches) * self.bs

    def order(self, epoch: int) -> torch.Tensor:
        used = self.permutation(epoch)[: self.per_epoch * self.bs]
        pools = []
        for start in range(0, len(used), self.pool):
            pool = used[start : start + self.pool]
            pools.append(pool[torch.sort(self.lengths[pool], stable=True).indices])
        batches = torch.cat(pools).view(self.per_epoch, self.bs)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 500_009)
        return batches[torch.randperm(self.per_epoch, generator=g)].reshape(-1)


def plan_for(data: object, items: Sized, batch_size: int, seed: int) -> BatchPlan:
    """The batch plan for ``items`` of ``data``'s training split; the one place the training
    loop asks for it. A source that declares :class:`ItemLengths` gets length-grouped batches;
    any other keeps the plain random order, unchanged."""
    if isinstance(data, ItemLengths):
        lengths = data.item_lengths("train")
        if len(lengths) != len(items):
            raise DataError(
                f"{type(data).__name__}.item_lengths('train') gave {len(lengths)} lengths "
                f"for {len(items)} training items; it must give one per item of "
                f"dataset('train')"
            )
        return LengthGroupedPlan(lengths, batch_size, seed)
    return BatchPlan(len(items), batch_size, seed)


def padding_per_token(lengths: Sequence[int], plan: BatchPlan, steps: int) -> float:
    """Padded positions per real token over the first ``steps`` batches of ``plan``, for items
    of these ``lengths``: what a length-grouped order saves (benchmarks/text_throughput.py)."""
    pad = real = 0
    for step in range(steps):
        batch = [lengths[i] for i in plan.indices(step)]
        pad += len(batch) * max(batch) - sum(batch)
        real += sum(batch)
    return pad / real
