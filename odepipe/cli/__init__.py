"""The ``odepipe`` command line (click): odepipe's own commands, plus the commands the plugin
host collected, attached by :func:`make_cli`. The only part of the core that imports click;
one module per group of commands (running, catalog, using). Torch and
friends are imported inside commands only.

One plugin host per process: :func:`main` builds it and hands it to every command as click's
context object (``ctx.obj``); a command invoked on the bare :data:`cli` group (as tests do)
gets one built for that invocation.

Any :class:`odepipe.OdepipeError` (a user's mistake) becomes a message on stderr and exit code
2, without a traceback; ``odepipe --traceback ...`` shows it.
"""

from __future__ import annotations

from . import catalog, running, using  # noqa: F401  (each registers its commands on cli)
from .group import OdepipeGroup, cli, main, make_cli, new_host

__all__ = ["OdepipeGroup", "cli", "main", "make_cli", "new_host"]
