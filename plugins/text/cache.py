"""Where the text bundle keeps what it can rebuild: tokenizers, default models, the datasets
library's Arrow files. One place, so that ``$ODEPIPE_CACHE`` moves all of them together.

Torch-free and import-free: ``commands.py`` (imported on every command line) uses it.
"""

from __future__ import annotations

import os


def cache_root() -> str:
    """``$ODEPIPE_CACHE`` or ``~/.cache/odepipe``."""
    return os.environ.get("ODEPIPE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "odepipe"
    )
