"""Typed configuration of the ``model`` and ``train`` recipe sections, and the type checker that
recipes use for every parameter (component parameters are checked against their annotations;
numeric ranges are declared with ``Annotated[..., Range(...)]`` and read by :mod:`.ranges`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import types
import typing
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple

from .ranges import Range, strip_ranges
from .shorten import short


def type_name(annotation: Any) -> str:
    """``int >= 1``, ``float > 0 | null``, ``'elu' | 'tanh'``: a type as a message says it."""
    base, ranges = strip_ranges(annotation)
    if ranges:
        return " ".join([type_name(base)] + [r.describe() for r in ranges])
    annotation = base
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin is typing.Union or origin is getattr(types, "UnionType", None):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin in (list, List):
        args = typing.get_args(annotation)
        return f"list of {type_name(args[0])}" if args else "list"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any) -> Tuple[bool, Any]:
    """Checks ``value`` against ``annotation``; returns (ok, value converted where harmless).

    Harmless conversions: an int where a float is wanted, and a string that spells a number
    (YAML reads ``1e-3`` without a dot as a string).
    """
    annotation, _ = strip_ranges(annotation)  # ranges are checked after the type (ranges.py)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True, value
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is getattr(types, "UnionType", None):
        for arg in typing.get_args(annotation):
            ok, converted = coerce(value, arg)
            if ok:
                return True, converted
        return False, value
    if origin is Literal:
        return value in typing.get_args(annotation), value
    if origin in (list, List, tuple, Tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        args = typing.get_args(annotation)
        if not args:
            return True, list(value)
        out = []
        for item in value:
            ok, converted = coerce(item, args[0])
            if not ok:
                return False, value
            out.append(converted)
        return True, out
    if origin in (dict, Dict):
        return isinstance(value, dict), value
    if annotation is type(None) or annotation is None:
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return True, float(value)
            except OverflowError:  # an int beyond any float: refused as not finite
                return True, math.inf if value > 0 else -math.inf
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return False, value
    if annotation is str:
        return isinstance(value, str), value
    if isinstance(annotation, type):
        return isinstance(value, annotation), value
    return True, value


#: the recipe's ``seed``: what both ``numpy.random.RandomState`` and ``torch.manual_seed`` take
Seed = Annotated[int, Range(ge=0, le=2**32 - 1)]
#: a count of optimizer steps (0: never / only at the end); a billion is weeks of training
Steps = Annotated[int, Range(ge=0, le=10**9)]
#: a non-negative float (weights, rates)
NonNegative = Annotated[float, Range(ge=0)]
#: items per batch: at least one, and a bound far above any batch that fits in memory
BatchSize = Annotated[int, Range(ge=1, le=10_000_000)]
#: torch CPU threads; the machine's own count is checked by TrainConfig.check
THREADS_PER_CPU = 4


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def cuda_device_count() -> int:
    """CUDA devices torch sees (0 without a CUDA build); torch is imported for it."""
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


@dataclasses.dataclass
class ModelConfig:
    """The ``model`` section.

    latent_dim: size of the latent state z.
    variational: true trains a VAE (sampled z0, KL term); false the same network as a plain
        deterministic autoencoder (z0 = encoder mean, no KL).
    """

    latent_dim: Annotated[int, Range(ge=1, le=16_384)] = 4
    variational: bool = True

    def check(self, machine: bool = True) -> List[str]:
        """Rules between fields that a declared Range cannot state (none here)."""
        return []


@dataclasses.dataclass
class TrainConfig:
    """The ``train`` section.

    steps: optimizer steps. batch_size: items per step (the global batch under torchrun); a
    batch_size above the number of training items uses all of them in every step.
    lr: Adam learning rate; lr_schedule: constant | cosine (to lr_min over the run) with
    warmup_steps of linear warm-up. weight_decay: Adam's. grad_clip: max gradient norm (null: off).
    beta: final KL weight; kl_schedule: constant | linear | logistic | cyclical over
    kl_anneal_steps (the period, for cyclical); free_bits: nats per latent dimension.
    device: auto | cpu | cuda | cuda:N (a CUDA device that exists here). threads: torch CPU
    threads (null: torch's default; at most 4 per usable CPU). keep_memory: on CPU, keep the
    memory a step frees in the process for the next step instead of returning it to the
    operating system, in training and in ``odepipe evaluate`` of the run (glibc only;
    :mod:`odepipe.run.memory` says why).
    log_every, eval_every, checkpoint_every: in steps (0: only at the end).
    eval_samples: posterior samples per item for the final evaluation's sampled ELBO and
    importance-weighted bound (``odepipe evaluate --samples`` for more).
    eval_batch_size: items per evaluation batch; eval_items: test items and valid items used
    by each periodic evaluation (null: all; the final evaluation always uses all). The periodic
    evaluation scores the test split and, when the data source has one, the valid split
    (``valid_*`` keys in metrics.jsonl). max_seconds: stop training after this much time
    (null: no limit); plot: draw plots at the end.
    keep: which weights the run's summary, plots and ``load_run`` use: ``last`` (the final
    step's) or ``best`` (the periodic evaluation on the valid split that scored best by
    ``select``, the run's last step included; saved as best.pt beside checkpoint.pt). The
    default is ``last``, so recipes written before ``keep`` existed report what they always
    did; ``best`` needs a valid split and ``eval_every`` > 0. select: the validation metric
    ``keep=best`` ranks by (``valid_extrap_mse`` or ``extrap_mse``; null: ``valid_extrap_mse``
    when the source reports it, else ``valid_elbo_at_mean``); whether lower or higher is better
    is read from its name (:func:`odepipe.run.keep.direction`). Ignored with ``keep=last``.

    Every numeric field declares its range (``Annotated[..., Range(...)]``); the validator
    reads them, and :meth:`check` holds what depends on the machine.
    """

    steps: Annotated[int, Range(ge=1, le=10**9)] = 2000
    batch_size: BatchSize = 128
    lr: Annotated[float, Range(gt=0)] = 1e-2
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_min: NonNegative = 0.0
    warmup_steps: Steps = 0
    weight_decay: NonNegative = 0.0
    grad_clip: Optional[Annotated[float, Range(gt=0, example=10.0)]] = None
    beta: NonNegative = 1.0
    kl_schedule: Literal["constant", "linear", "logistic", "cyclical"] = "constant"
    kl_anneal_steps: Steps = 0
    free_bits: NonNegative = 0.0
    device: str = "auto"
    threads: Optional[Annotated[int, Range(ge=1)]] = None
    keep_memory: bool = True
    log_every: Steps = 10
    eval_every: Steps = 0
    eval_batch_size: BatchSize = 256
    eval_items: Optional[Annotated[int, Range(ge=1, le=10**9)]] = None
    eval_samples: Annotated[int, Range(ge=1, le=10**5)] = 10
    checkpoint_every: Steps = 100
    max_seconds: Optional[Annotated[float, Range(gt=0, example=3600.0)]] = None
    plot: bool = True
    keep: Literal["last", "best"] = "last"
    select: Optional[str] = None

    def check(self, machine: bool = True) -> List[str]:
        """What a declared Range cannot state: ``select`` names a ranked validation metric,
        ``keep=best`` has evaluations to choose from, the device name's form and, with
        ``machine``, what depends on this machine (the device exists, the thread count fits its
        CPUs)."""
        from ..run.keep import check_select

        problems: List[str] = check_select(self.select)
        if self.keep == "best" and not self.eval_every:
            problems.append(
                "train.keep=best chooses among the periodic evaluations, but "
                "train.eval_every=0 runs none; set train.eval_every (e.g. "
                "train.eval_every=100) or use train.keep=last"
            )
        cpus = usable_cpus()
        if machine and self.threads is not None and self.threads > THREADS_PER_CPU * cpus:
            problems.append(
                f"train.threads={self.threads} is more than {THREADS_PER_CPU} per "
                f"CPU of the {cpus} this process may use; try train.threads={cpus} "
                f"or train.threads=null (torch's default)"
            )
        d = self.device
        index = d[5:] if d.startswith("cuda:") else ""
        if not (
            d in ("auto", "cpu", "cuda") or index.isascii() and index.isdigit() and len(index) < 6
        ):
            problems.append(f"train.device={short(d)} is not one of auto, cpu, cuda, cuda:N")
        elif machine and d.startswith("cuda"):
            count = cuda_device_count()
            if count == 0:
                problems.append(
                    f"train.device={d} but no CUDA device is available here; use "
                    f"train.device=auto or train.device=cpu"
                )
            elif index and int(index) >= count:
                problems.append(
                    f"train.device={d} names a device this machine does not have "
                    f"(it has {count}: cuda:0 to cuda:{count - 1}); use "
                    f"train.device=cuda:0 or train.device=auto"
                )
        return problems


SECTION_CONFIGS = {"model": ModelConfig, "train": TrainConfig}
