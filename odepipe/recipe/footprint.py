"""The model's size, estimated before anything is allocated.

Each parameter has a declared upper bound, but bounds multiply: ``encoder.hidden_size=16384``
with ``encoder.num_layers=64`` is within both ranges and asks for about 10^11 weights, which
the operating system may grant lazily and then kill the process for while torch initialises
them. So validation builds the model's stages on torch's ``meta`` device (shapes only, no
memory), counts their parameters, and refuses a model beyond :data:`MAX_PARAMETERS`, naming
the sizes to lower. The data source's own sizes are its own check (it knows its shapes).
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Tuple

from .resolved import ResolvedComponent

#: parameters a recipe's model may hold: 2**28 float32 weights are 1 GiB, about 4 GiB to train
#: (weights, gradients and Adam's two moments)
MAX_PARAMETERS = 2**28
#: the bytes training holds per parameter (float32 weight, gradient, two Adam moments)
TRAIN_BYTES = 16
MODEL_SECTIONS = ("encoder", "dynamics", "solver", "decoder")


def _count(component: ResolvedComponent, supplied: Dict[str, int]) -> int:
    """Parameters of the stage built on the meta device; 0 when it cannot be built there (the
    build reports a constructor's refusal itself)."""
    import torch

    cls: Any = component.cls
    accepted = inspect.signature(cls.__init__).parameters
    extra = {k: v for k, v in supplied.items() if k in accepted}
    try:
        with torch.device("meta"):
            stage = cls(**component.params, **extra)
    except Exception:  # noqa: BLE001 - only sizes are estimated here
        return 0
    if not isinstance(stage, torch.nn.Module):
        return 0
    return sum(p.numel() for p in stage.parameters())


def _sizes(section: str, component: ResolvedComponent) -> List[str]:
    """The size-like settings of a section (integers above 1), to name in the fix."""
    return [
        f"{section}.{k}={v}"
        for k, v in component.params.items()
        if isinstance(v, int) and not isinstance(v, bool) and v > 1
    ]


def footprint_problems(components: Dict[str, ResolvedComponent], latent_dim: int) -> List[str]:
    """A problem when the model's stages hold more than :data:`MAX_PARAMETERS` parameters.

    The data's dimensions are not known before the data source is built, so ``obs_dim`` and
    ``vocab_size`` are small stand-ins: the estimate is a lower bound."""
    supplied = {"latent_dim": latent_dim, "obs_dim": 1, "vocab_size": 8}
    counts: List[Tuple[str, int]] = [
        (s, _count(components[s], supplied)) for s in MODEL_SECTIONS if s in components
    ]
    total = sum(n for _, n in counts)
    if total <= MAX_PARAMETERS:
        return []
    largest = max(counts, key=lambda c: c[1])[0]
    shown = ", ".join(f"{s} {n:.3g}" for s, n in counts if n)
    sizes = _sizes(largest, components[largest]) or [f"model.latent_dim={latent_dim}"]
    return [
        f"model: the stages would hold {total:.3g} parameters ({shown}), about "
        f"{total * TRAIN_BYTES / 2**30:.0f} GiB to train; the limit is {MAX_PARAMETERS:.3g}. "
        f"Lower {largest}'s sizes ({', '.join(sizes)})"
    ]
