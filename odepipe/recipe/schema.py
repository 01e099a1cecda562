"""Typed configuration of the ``model`` and ``train`` recipe sections, and the type checker that
recipes use for every parameter (component parameters are checked against their annotations).
"""
from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any, Dict, List, Literal, Optional, Tuple


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin is typing.Union:
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin in (list, List):
        return f"list of {type_name(typing.get_args(annotation)[0])}" if typing.get_args(annotation) else "list"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any) -> Tuple[bool, Any]:
    """Checks ``value`` against ``annotation``; returns (ok, value converted where harmless).

    Harmless conversions: an int where a float is wanted, and a string that spells a number
    (YAML reads ``1e-3`` without a dot as a string).
    """
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
            return True, float(value)
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


@dataclasses.dataclass
class ModelConfig:
    """The ``model`` section.

    latent_dim: size of the latent state z.
    variational: true trains a VAE (sampled z0, KL term); false the same network as a plain
        deterministic autoencoder (z0 = encoder mean, no KL).
    """

    latent_dim: int = 4
    variational: bool = True

    def check(self) -> List[str]:
        return [] if self.latent_dim >= 1 else [f"model.latent_dim must be >= 1, got {self.latent_dim}"]


@dataclasses.dataclass
class TrainConfig:
    """The ``train`` section.

    steps: optimizer steps. batch_size: items per step (the global batch under torchrun).
    lr: Adam learning rate; lr_schedule: constant | cosine (to lr_min over the run) with
    warmup_steps of linear warm-up. weight_decay: Adam's. grad_clip: max gradient norm (null: off).
    beta: final KL weight; kl_schedule: constant | linear | logistic | cyclical over
    kl_anneal_steps (the period, for cyclical); free_bits: nats per latent dimension.
    device: auto | cpu | cuda | cuda:N. threads: torch CPU threads (null: torch's default).
    log_every, eval_every, checkpoint_every: in steps (0: only at the end).
    eval_batch_size: items per evaluation batch; eval_items: test items used by the periodic
    evaluation (null: all; the final evaluation always uses all). max_seconds: stop training
    after this much time (null: no limit); plot: draw plots at the end.
    """

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-2
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_min: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: Optional[float] = None
    beta: float = 1.0
    kl_schedule: Literal["constant", "linear", "logistic", "cyclical"] = "constant"
    kl_anneal_steps: int = 0
    free_bits: float = 0.0
    device: str = "auto"
    threads: Optional[int] = None
    log_every: int = 10
    eval_every: int = 0
    eval_batch_size: int = 256
    eval_items: Optional[int] = None
    checkpoint_every: int = 100
    max_seconds: Optional[float] = None
    plot: bool = True

    def check(self) -> List[str]:
        problems = []
        for name in ("steps", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("log_every", "eval_every", "checkpoint_every", "warmup_steps",
                     "kl_anneal_steps"):
            if getattr(self, name) < 0:
                problems.append(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            problems.append(f"train.lr must be > 0, got {self.lr}; try train.lr=1e-3")
        for name in ("lr_min", "weight_decay", "beta", "free_bits"):
            if getattr(self, name) < 0:
                problems.append(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            problems.append(f"train.grad_clip must be > 0 or null, got {self.grad_clip}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"train.threads must be >= 1 or null, got {self.threads}")
        if self.eval_items is not None and self.eval_items < 1:
            problems.append(f"train.eval_items must be >= 1 or null, got {self.eval_items}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            problems.append(f"train.max_seconds must be > 0 or null, got {self.max_seconds}")
        d = self.device
        if not (d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit())):
            problems.append(f"train.device={d!r} is not one of auto, cpu, cuda, cuda:N")
        return problems


SECTION_CONFIGS = {"model": ModelConfig, "train": TrainConfig}
