"""YAML for recipes: PyYAML's safe loader with limits a hostile or mistaken file cannot pass.

``yaml.safe_load`` builds no objects but plain data, yet it still accepts what makes a recipe
wrong or odepipe slow: a key given twice (the last silently wins: a whole section can vanish),
an "anchor bomb" (a few lines of ``&a``/``*a`` aliases that expand to billions of values, which
any later walk or ``repr`` pays for), nesting thousands deep (``RecursionError`` in PyYAML's
recursive composer) and integers of thousands of digits (``ValueError`` from ``int``). The
:class:`RecipeLoader` refuses each one while it reads, at the line where it happens, and
stops reading as soon as a limit is passed, so a bad file costs milliseconds, not minutes.
The same loader reads command-line override values.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Set, Tuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .shorten import clip, name

#: the largest recipe file (and override value) read, in bytes
MAX_BYTES = 1 << 20
#: nested mappings and lists, counting the ones aliases bring in
MAX_DEPTH = 32
#: values in the whole document, every alias counted as the values it repeats
MAX_VALUES = 10_000
#: digits of an integer (a seed needs 10; Python refuses str() of ints past 4300)
MAX_INT_CHARS = 100

_MERGE = "tag:yaml.org,2002:merge"


class RecipeYAMLError(yaml.YAMLError):
    """A limit of :class:`RecipeLoader` was passed; ``mark`` says where."""

    def __init__(self, message: str, mark: Optional[yaml.Mark] = None):
        super().__init__(message)
        self.message, self.mark = message, mark

    def __str__(self) -> str:
        return f"line {self.mark.line + 1}: {self.message}" if self.mark else self.message


class RecipeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys and bounds depth, size and digits."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._depth = 0
        self._values = 0
        self._sizes: Dict[int, Tuple[int, int]] = {}  # id(node) -> (values, depth) expanded
        self._open: Set[str] = set()  # anchors of the nodes being composed

    # -- composing: count values and depth while the document is read ---------------------
    def compose_node(self, parent: Optional[Node], index: Any) -> Optional[Node]:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise RecipeYAMLError(
                    f"the alias *{name(event.anchor)} refers to a value that "
                    f"contains it (a recursive structure); a recipe cannot "
                    f"hold one",
                    event.start_mark,
                )
            node = super().compose_node(parent, index)
            values, depth = self._expanded(node)
            self._add(values, event.start_mark)
            if self._depth + depth > MAX_DEPTH:
                raise RecipeYAMLError(
                    f"the alias *{name(event.anchor)} nests values deeper than "
                    f"{MAX_DEPTH} levels; a recipe needs a few",
                    event.start_mark,
                )
            return node
        if self._depth >= MAX_DEPTH:
            raise RecipeYAMLError(
                f"values nested deeper than {MAX_DEPTH} levels; a recipe "
                f"needs a few (section: key: value)",
                event.start_mark,
            )
        self._add(1, event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)  # an alias to it before it is complete would be a cycle
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open.discard(anchor)

    def _add(self, values: int, mark: yaml.Mark) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise RecipeYAMLError(
                f"the recipe holds more than {MAX_VALUES} values (YAML "
                f"aliases *name count as every value they repeat); a recipe "
                f"needs far fewer",
                mark,
            )

    def _expanded(self, node: Node) -> Tuple[int, int]:
        """(values, depth) of ``node`` with every alias inside it expanded, memoised per node,
        so the cost is that of the distinct nodes however often they are repeated (aliases
        to an open node are refused before, so the nodes form no cycle)."""
        key = id(node)
        if key not in self._sizes:
            values, depth = 1, 1
            if isinstance(node, SequenceNode):
                children = list(node.value)
            elif isinstance(node, MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            for child in children:
                v, d = self._expanded(child)
                values, depth = values + v, max(depth, d + 1)
            self._sizes[key] = (values, depth)
        return self._sizes[key]

    # -- constructing: duplicate keys and long integers -------------------------------------
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> Dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: Dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, ScalarNode):
                    continue  # merged keys may be overridden; complex keys: PyYAML refuses
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise RecipeYAMLError(
                        f"duplicate key {name(key)!r} (first at line {seen[key].line + 1}); "
                        f"the later one would silently replace it: keep one",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        if len(node.value) > MAX_INT_CHARS:
            raise RecipeYAMLError(
                f"an integer of {len(node.value)} characters; no recipe "
                f"value needs more than {MAX_INT_CHARS}",
                node.start_mark,
            )
        return super().construct_yaml_int(node)


RecipeLoader.add_constructor("tag:yaml.org,2002:int", RecipeLoader.construct_yaml_int)


def too_big(text: str) -> Optional[str]:
    """Why ``text`` is too large to read as a recipe (or override value), or None."""
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) * 4 > MAX_BYTES else len(text)
    if size > MAX_BYTES:
        return (
            f"{size} bytes is more than the {MAX_BYTES} bytes (1 MiB) a recipe may hold; "
            f"a recipe names components and settings, data belongs in files it names"
        )
    return None


def load(text: str) -> Any:
    """Parses one YAML document with :class:`RecipeLoader` (raises ``yaml.YAMLError``)."""
    reason = too_big(text)
    if reason:
        raise RecipeYAMLError(reason)
    try:
        return yaml.load(text, Loader=RecipeLoader)  # noqa: S506 - a SafeLoader subclass
    except (ValueError, OverflowError) as exc:  # e.g. a date 2026-13-45 (datetime refuses it)
        raise RecipeYAMLError(f"a value YAML cannot read: {clip(str(exc))}") from None
