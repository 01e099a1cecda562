"""Matplotlib for files, never a window: odepipe's plots are written into run folders, often on
machines with no display, so the Agg backend is chosen before pyplot is first imported."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend (imported on first use, so
    that commands which draw nothing never import matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
