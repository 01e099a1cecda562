"""Deprecated: use :class:`odepipe.Run`. Kept only while tests/test_irregular.py,
tests/test_csv.py and benchmarks/irregular_spirals.py still call these; delete it then."""
from __future__ import annotations

import shutil
from typing import Any, Dict, List, Optional

from .folder import Run


def prepare(path: str, overwrite: bool = False) -> str:
    run = Run.create(path, overwrite)
    if run.replaced:  # the old immediate replacement
        shutil.rmtree(run.replaced, ignore_errors=True)
    return run.path


def read_metrics(run_dir: str, until_step: Optional[int] = None) -> List[Dict[str, Any]]:
    return Run(run_dir).read_metrics(until_step)
