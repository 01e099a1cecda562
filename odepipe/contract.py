"""The error every ``odepipe.testing`` check raises, in a module of its own so that both the
stage checks (:mod:`odepipe.testing`) and the whole-run check (:mod:`odepipe.end_to_end`) use
it without importing each other; and the data-source rule those checks share for the optional
``valid`` split (:func:`check_valid_split`)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

if TYPE_CHECKING:
    from .stages import DataSource


class ContractError(AssertionError):
    """A component broke the contract of its stage; the message says how. An
    ``AssertionError``, so pytest shows it as a test failure."""


def check_valid_split(
    source: "DataSource", again: Optional["DataSource"] = None, limit: int = 2000
) -> None:
    """When ``source.splits`` includes ``"valid"`` (``train.keep=best`` chooses weights on it):
    the split has items, none of which is also a test item (compared by content: the collated
    values or tokens, times and mask of each item alone), and, given ``again`` (a second
    source built with the same arguments and seed), it holds the same items in the same
    order. A source without a valid split passes. ``limit``: items of each split compared."""
    if "valid" not in source.splits:
        return
    name = type(source).__name__
    valid = _fingerprints(source, "valid", limit)
    if not valid:
        raise ContractError(f"{name}: split 'valid' is listed in splits but empty")
    if "test" in source.splits:
        shared = set(valid) & set(_fingerprints(source, "test", limit))
        if shared:
            raise ContractError(
                f"{name}: {len(shared)} item(s) of split 'valid' are also in split 'test'; "
                f"the valid split must be disjoint from test, or choosing weights on it "
                f"scores them on the test data"
            )
    if again is not None and _fingerprints(again, "valid", limit) != valid:
        raise ContractError(
            f"{name}: two sources built with the same arguments and seed give different "
            f"valid splits; draw the split from the seed alone"
        )


def _fingerprints(source: "DataSource", split: str, limit: int) -> List[str]:
    """One digest per item of ``split`` (up to ``limit``), of its collated tensors."""
    items: Sequence[Any] = source.dataset(split)
    out = []
    for i in range(min(limit, len(items))):
        batch = source.collate([items[i]])
        digest = hashlib.sha1()
        for tensor in (batch.data, batch.times, batch.mask):
            if tensor is not None:
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(tensor.detach().cpu().double().numpy().tobytes())
        out.append(digest.hexdigest())
    return out
