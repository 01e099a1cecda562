"""Deprecated: use :func:`odepipe.load_run` or :class:`odepipe.Run`. Kept only while
tests/test_text.py and benchmarks/interpolation_grammaticality.py import it from here."""
from .folder import load_run

__all__ = ["load_run"]
