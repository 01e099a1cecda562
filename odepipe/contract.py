"""The error every ``odepipe.testing`` check raises, in a module of its own so that both the
stage checks (:mod:`odepipe.testing`) and the whole-run check (:mod:`odepipe.end_to_end`) use
it without importing each other."""

from __future__ import annotations


class ContractError(AssertionError):
    """A component broke the contract of its stage; the message says how. An
    ``AssertionError``, so pytest shows it as a test failure."""
