"""Keeps README.md's generated parts equal to the files they describe.

README.md marks each generated part with a pair of comments::

    <!-- synced: recipe recipes/spiral.yaml -->  ...  <!-- /synced -->
    <!-- synced: components -->                  ...  <!-- /synced -->

``recipe PATH`` is that shipped recipe's settings verbatim (its leading comment block, the
tuning notes, left out); ``components`` is the table of the components the built-in plugins
register, as ``odepipe ls`` lists them. Run ``python scripts/sync_readme.py`` after changing a
shipped recipe or a built-in plugin's registrations; ``--check`` only reports drift (exit 1).
``tests/test_readme_sync.py`` fails while README.md and the files disagree.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- synced: (?P<what>[^>]*?) -->\n)(?P<body>.*?)(<!-- /synced -->)", re.S)


def recipe_settings(path: str) -> str:
    """The recipe at ``path`` (relative to the repository) without its leading comment block,
    as a yaml code block."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    return "```yaml\n" + "\n".join(lines).rstrip() + "\n```\n"


def builtin_components() -> Dict[str, Dict[str, List[str]]]:
    """kind -> plugin -> names, for the built-in plugins (installed third-party plugins and the
    test suite's example plugin are not odepipe's own)."""
    from odepipe.host import PluginHost
    from odepipe.registry import KINDS

    host = PluginHost(entry_points=False)
    table: Dict[str, Dict[str, List[str]]] = {}
    for kind in KINDS:
        for component in host.registries[kind]:
            if component.plugin.startswith("odepipe_plugins."):
                table.setdefault(kind, {}).setdefault(component.plugin, []).append(component.name)
    return table


def components_table() -> str:
    from odepipe.registry import KINDS

    rows = ["| kind (`odepipe ls KIND`) | recipe section | names, by built-in plugin |",
            "| --- | --- | --- |"]
    for kind, plugins in builtin_components().items():
        names = "; ".join(
            f"{', '.join(f'`{n}`' for n in sorted(found))} ({plugin.split('.', 1)[1]})"
            for plugin, found in sorted(plugins.items())
        )
        rows.append(f"| {kind} | `{KINDS[kind][1]}` | {names} |")
    return "\n".join(rows) + "\n"


def generated(what: str) -> str:
    """The body a ``<!-- synced: WHAT -->`` block must hold."""
    kind, _, arg = what.strip().partition(" ")
    makers: Dict[str, Callable[[], str]] = {
        "recipe": lambda: recipe_settings(arg.strip()),
        "components": components_table,
    }
    if kind not in makers:
        raise SystemExit(f"README.md: unknown synced block {what!r}; known: {', '.join(makers)}")
    return makers[kind]()


def synced(text: str) -> str:
    """``text`` with every synced block regenerated."""
    return BLOCK.sub(lambda m: m.group(1) + generated(m.group("what")) + m.group(4), text)


def blocks(text: str) -> List[str]:
    """The ``what`` of every synced block, in order."""
    return [m.group("what").strip() for m in BLOCK.finditer(text)]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift, change nothing")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = synced(text)
    if new == text:
        print(f"README.md is in sync ({', '.join(blocks(text))})")
        return 0
    if args.check:
        print("README.md is out of date: run python scripts/sync_readme.py")
        return 1
    README.write_text(new, encoding="utf-8")
    print(f"README.md updated ({', '.join(blocks(text))})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
