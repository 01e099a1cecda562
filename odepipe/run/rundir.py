"""A run's folder: creation rules, metrics lines and the summary. Nothing is overwritten
unless the user says ``--overwrite``; resuming appends to what is there."""
from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any, Dict, List, Optional

from ..errors import CheckpointError
from .checkpoint import atomic_write

CHECKPOINT = "checkpoint.pt"
RECIPE = "recipe.yaml"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"


def default_dir(name: str, root: str = "runs") -> str:
    return os.path.join(root, f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def prepare(path: str, overwrite: bool = False) -> str:
    """Creates a fresh run folder; an existing non-empty one is an error without overwrite."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CheckpointError(f"--out {path} exists and is not a folder; choose another --out")
    if os.path.isdir(path) and os.listdir(path):
        if not overwrite:
            raise CheckpointError(f"run folder {path} already exists and is not empty; pass "
                                  f"--overwrite to replace it, --resume {path} to continue it, "
                                  f"or choose another --out")
        shutil.rmtree(path)
    try:
        os.makedirs(os.path.join(path, "plots"), exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.unlink(probe)
    except OSError as exc:
        raise CheckpointError(f"cannot write the run folder {path}: {exc.strerror or exc}; "
                              f"choose a writable --out") from exc
    return path


def remove_if_unused(path: str) -> None:
    """Removes a run folder that ``prepare`` made but nothing was written to (a run that
    stopped at a data or model error), so failed attempts leave no empty folders behind."""
    if not os.path.isdir(path):
        return
    for _, _, files in os.walk(path):
        if files:
            return
    shutil.rmtree(path, ignore_errors=True)


def write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def append_metrics(run_dir: str, record: Dict[str, Any]) -> None:
    try:
        with open(os.path.join(run_dir, METRICS), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise CheckpointError(f"cannot append to {run_dir}/{METRICS}: {exc.strerror or exc}") from exc


def read_metrics(run_dir: str, until_step: Optional[int] = None) -> List[Dict[str, Any]]:
    path = os.path.join(run_dir, METRICS)
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write
            if until_step is None or record.get("step", 0) <= until_step:
                records.append(record)
    return records


def truncate_metrics(run_dir: str, step: int) -> None:
    """On resume, drops lines logged after the checkpoint, so the log matches the model."""
    kept = read_metrics(run_dir, until_step=step)
    write_text(os.path.join(run_dir, METRICS), "".join(json.dumps(r) + "\n" for r in kept))


def write_summary(run_dir: str, summary: Dict[str, Any]) -> None:
    write_text(os.path.join(run_dir, SUMMARY), json.dumps(summary, indent=2) + "\n")
