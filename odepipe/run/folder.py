"""A run folder and everything in it: :class:`Run` is the one place that knows its file names.

::

    runs/spiral-20261201-101500/
      recipe.yaml     the resolved recipe (rewritten on --resume with what it was resumed with)
      checkpoint.pt   model, optimizer, step, RNG states, recipe, name (atomic writes)
      best.pt         with train.keep=best: the weights of the best validation evaluation,
                      its step, metric and value (atomic writes; checkpoint.pt holds a copy
                      of the choice, so a resume continues it)
      metrics.jsonl   one JSON line per logged step, evaluation and the final evaluation
      summary.json    the final evaluation (strict JSON) and how the run ended
      plots/          figures of the final model
      data/           what the data source needs for inference (``DataSource.save``)
      .lock           held (fcntl) while a process trains into the folder
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

from ..errors import CheckpointError, DataError
from . import create
from .files import TEMP_PREFIX, strict_json, write_text
from .lock import RunLock

if TYPE_CHECKING:
    import torch

    from ..host import PluginHost
    from ..pipeline import Pipeline
    from ..recipe import Recipe
    from ..stages import DataSource


class Run:
    """A run folder: its paths, its files, its lock, and the trained model for use."""

    RECIPE = "recipe.yaml"
    CHECKPOINT = "checkpoint.pt"
    BEST = "best.pt"
    METRICS = "metrics.jsonl"
    SUMMARY = "summary.json"
    PLOTS = "plots"
    DATA = "data"
    LOCK = ".lock"
    #: odepipe extrapolate's default output folder
    EXTRAPOLATIONS = "extrapolations"
    #: what odepipe writes into a run folder; a folder holding anything else is not replaced
    ENTRIES = (RECIPE, CHECKPOINT, BEST, METRICS, SUMMARY, PLOTS, DATA, LOCK, EXTRAPOLATIONS)

    def __init__(self, path: str):
        self.path = str(path)
        #: where ``create`` moved the run this one replaces, until its first checkpoint
        self.replaced: Optional[str] = None

    def __repr__(self) -> str:
        return f"Run({self.path!r})"

    # -- paths ---------------------------------------------------------------------------------
    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def recipe_path(self) -> str:
        return self.file(self.RECIPE)

    @property
    def checkpoint_path(self) -> str:
        return self.file(self.CHECKPOINT)

    @property
    def best_path(self) -> str:
        return self.file(self.BEST)

    @property
    def metrics_path(self) -> str:
        return self.file(self.METRICS)

    @property
    def summary_path(self) -> str:
        return self.file(self.SUMMARY)

    @property
    def plots_dir(self) -> str:
        return self.file(self.PLOTS)

    @property
    def data_dir(self) -> str:
        return self.file(self.DATA)

    @property
    def extrapolations_dir(self) -> str:
        return self.file(self.EXTRAPOLATIONS)

    def plots(self) -> List[str]:
        """Paths of the figures in plots/, sorted."""
        if not os.path.isdir(self.plots_dir):
            return []
        return sorted(
            os.path.join(self.plots_dir, f)
            for f in os.listdir(self.plots_dir)
            if not f.startswith(".")
        )

    # -- creating and opening ------------------------------------------------------------------
    @staticmethod
    def default_path(name: str, changed: Iterable[str] = (), root: str = "runs") -> str:
        """``runs/<name>[-<changed component>...]-<time>``, e.g. ``runs/spiral-rk4-2026...``."""
        parts = [name] + [re.sub(r"[^A-Za-z0-9_.]+", "_", c) for c in changed if c]
        return os.path.join(root, f"{'-'.join(parts)}-{time.strftime('%Y%m%d-%H%M%S')}")

    @classmethod
    def create(cls, path: str, overwrite: bool = False) -> "Run":
        """A fresh run folder at ``path`` (see :func:`odepipe.run.create.prepare` for the
        rules); a run it replaces is kept aside until the new run's first checkpoint."""
        run = cls(path)
        run.replaced = create.prepare(path, cls.ENTRIES, cls.CHECKPOINT, cls.LOCK, overwrite)
        try:
            create.make_writable(path, [cls.PLOTS])
        except CheckpointError:
            run.discard_if_unused()
            raise
        return run

    @classmethod
    def open(cls, path: str) -> "Run":
        """An existing run; CheckpointError naming the folder when it is not one."""
        run = cls(path)
        if not run.is_run():
            raise CheckpointError(
                f"{path} is not an odepipe run folder (it needs {cls.RECIPE} "
                f"and {cls.CHECKPOINT}); train one with `odepipe run RECIPE`"
            )
        return run

    def is_run(self) -> bool:
        return os.path.isfile(self.recipe_path) and self.has_checkpoint()

    def is_complete(self) -> bool:
        """A run that finished: recipe, checkpoint and the final summary are all there."""
        return self.is_run() and os.path.isfile(self.summary_path)

    def has_checkpoint(self) -> bool:
        return os.path.isfile(self.checkpoint_path)

    def lock(self) -> RunLock:
        """``with run.lock():`` while training into the folder; a second process is refused."""
        return RunLock(self.path, self.file(self.LOCK))

    def remove_temporary(self) -> None:
        """Deletes ``.tmp-*`` files that a kill in the middle of an atomic write left."""
        for entry in os.listdir(self.path):
            if entry.startswith(TEMP_PREFIX):
                try:
                    os.unlink(self.file(entry))
                except OSError:
                    pass

    def discard_if_unused(self) -> None:
        """After a new run failed before its first checkpoint: puts back the run it replaced,
        or removes the folder when nothing but empty folders was written to it."""
        if self.replaced is not None and not self.has_checkpoint():
            create.restore_replaced(self.path, self.replaced)
            self.replaced = None
            return
        if not os.path.isdir(self.path):
            return
        for _, _, files in os.walk(self.path):
            if [f for f in files if f != self.LOCK]:
                return
        shutil.rmtree(self.path, ignore_errors=True)

    # -- files -----------------------------------------------------------------------------------
    def write_recipe(self, recipe: "Recipe") -> None:
        write_text(self.recipe_path, recipe.to_yaml())

    def save_checkpoint(self, state: Dict[str, Any]) -> None:
        """Writes the checkpoint; the first one of a run that replaced another deletes it."""
        from .checkpoint import save_checkpoint

        save_checkpoint(self.checkpoint_path, state)
        if self.replaced is not None:
            shutil.rmtree(self.replaced, ignore_errors=True)
            self.replaced = None

    def load_checkpoint(self) -> Dict[str, Any]:
        from .checkpoint import load_checkpoint

        return load_checkpoint(self.checkpoint_path)

    def save_best(self, state: Dict[str, Any]) -> None:
        """Writes best.pt (train.keep=best) with the checkpoint's atomic writer."""
        from .checkpoint import save_checkpoint

        save_checkpoint(self.best_path, state)

    def kept_path(self, keep: str) -> str:
        """The weights the run keeps: best.pt with ``train.keep=best`` once one was chosen,
        else checkpoint.pt (the last step's)."""
        if keep == "best" and os.path.isfile(self.best_path):
            return self.best_path
        return self.checkpoint_path

    def read_summary(self) -> Optional[Dict[str, Any]]:
        if not os.path.isfile(self.summary_path):
            return None
        try:
            with open(self.summary_path, encoding="utf-8") as f:
                summary = json.load(f)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {self.summary_path}: {exc}") from None
        return summary if isinstance(summary, dict) else None

    def write_summary(self, summary: Dict[str, Any]) -> Dict[str, Any]:
        """Writes summary.json as strict JSON (non-finite figures become null, with a warning)
        and returns what was written."""
        clean = strict_json(summary, self.summary_path)
        write_text(self.summary_path, json.dumps(clean, indent=2, allow_nan=False) + "\n")
        return clean

    def append_metrics(self, record: Dict[str, Any]) -> None:
        line = json.dumps(strict_json(record, self.metrics_path), allow_nan=False)
        try:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            raise CheckpointError(
                f"cannot append to {self.metrics_path}: "
                f"{exc.strerror or exc}; free some disk space or choose "
                f"another --out (the last checkpoint is kept)"
            ) from exc

    def read_metrics(self, until_step: Optional[int] = None) -> List[Dict[str, Any]]:
        if not os.path.exists(self.metrics_path):
            return []
        records = []
        try:
            with open(self.metrics_path, encoding="utf-8") as f:
                lines = f.readlines()
        except OSError as exc:
            raise CheckpointError(
                f"cannot read {self.metrics_path}: {exc.strerror or exc}; move it aside "
                f"(the run resumes without its earlier log lines) or fix its permissions"
            ) from None
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write
            if until_step is None or record.get("step", 0) <= until_step:
                records.append(record)
        return records

    def truncate_metrics(self, step: int) -> None:
        """On resume, drops lines logged after the checkpoint, so the log matches the model."""
        kept = self.read_metrics(until_step=step)
        write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    # -- the trained model -----------------------------------------------------------------------
    def check_data_state(self, data: "DataSource") -> None:
        """Refuses a run whose data changed since training (its normalization or tokenizer would
        differ from the one the model learned)."""
        recorded = (self.read_summary() or {}).get("data")
        now = data.state()
        if recorded is not None and {k: recorded.get(k) for k in now} != now:
            raise DataError(
                f"the run in {self.path} was trained with data preprocessing {recorded}, but its "
                f"data now gives {now}: the data file or training text changed after training. "
                f"Restore it, or train again"
            )

    def name(self, default: str) -> str:
        """The recipe name the run was started under (kept across resumes)."""
        summary = self.read_summary() if os.path.isfile(self.summary_path) else None
        return str((summary or {}).get("recipe") or default)

    def load(
        self,
        device: Optional[str] = None,
        host: Optional["PluginHost"] = None,
        with_data: bool = False,
    ) -> Tuple["Recipe", "DataSource", "Pipeline"]:
        """The run's resolved recipe, its data source (restored from data/ when the run has
        one, so its corpus is not read or generated again; ``with_data`` reads the data as
        training did, for commands that evaluate on a split) and its model with the weights
        the run kept (:meth:`kept_path`: best.pt for ``train.keep=best``, else the last
        checkpoint; summary.json's ``kept_step`` says which step), in eval mode. ``host``: the
        process's plugin host (a fresh one when None). The machine checks of training
        (``train.device``, ``train.threads``) do not apply: the model goes to ``device``,
        whatever it was trained on."""
        import torch

        from ..recipe import load_recipe
        from .build import build
        from .checkpoint import load_checkpoint

        self.open(self.path)
        recipe = load_recipe(
            self.recipe_path, host=host, machine=False, untrusted=[self.path, os.getcwd()]
        )
        restore = self.data_dir if os.path.isdir(self.data_dir) and not with_data else None
        data, model = build(recipe, restore=restore)
        state = load_checkpoint(self.kept_path(recipe.train.keep))
        recipe = dataclasses.replace(recipe, name=str(state.get("name") or self.name(recipe.name)))
        if not isinstance(state.get("model"), dict):
            raise CheckpointError(
                f"{self.kept_path(recipe.train.keep)} holds no model weights; train the run "
                f"again (odepipe run {self.recipe_path} --out {self.path} --overwrite)"
            )
        try:
            model.load_state_dict(state["model"])
        except (RuntimeError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"the weights in {self.kept_path(recipe.train.keep)} do not fit its recipe: "
                f"{str(exc).splitlines()[0] if str(exc) else exc!r}"
            ) from None
        self.check_data_state(data)
        target: torch.device = torch.device(device) if device else torch.device("cpu")
        return recipe, data, model.to(target).eval()


def load_run(
    run_dir: str,
    device: Optional[str] = None,
    host: Optional["PluginHost"] = None,
    with_data: bool = False,
) -> Tuple["Recipe", "DataSource", "Pipeline"]:
    """``Run.open(run_dir).load(...)``: recipe, data source and model of a run, with the weights
    it kept (best.pt for a ``train.keep=best`` run, else checkpoint.pt)."""
    return Run.open(run_dir).load(device, host=host, with_data=with_data)
