"""A ResNet as a solver: Euler's method with a separate copy of the vector field per step.

``h_{k+1} = h_k + dt * f_k(t_k, h_k)`` for ``k = 0 .. K-1``: the same update as ``euler``, but
layer ``k`` has weights of its own. With every ``f_k`` equal it *is* ``euler`` at step ``dt``
(``tests/test_resnet.py`` checks this against torchdiffeq), so a recipe can put a ResNet and a
Neural ODE side by side by changing only ``solver.type``.

How the K layers meet the time grid:

- ``layers: K`` residual blocks spread evenly over the integration span. With ``span: null``
  (the default) the span is each call's own ``[times[0], times[-1]]`` and ``dt = span / K``:
  a call always runs exactly K layers, like a ResNet of depth K.
- With ``span: S`` the step is fixed, ``dt = S / K``; a call over a longer window (extrapolating
  past the training window) keeps stepping with the last layer's weights, a shorter one uses the
  first layers only.
- Outputs at the requested times are read off the layer grid by linear interpolation between
  neighbouring states, exactly as torchdiffeq's fixed-grid solvers do.

Memory grows with K twice over: the activations of every layer are kept for backprop, and the
parameters (with their gradients and Adam state) are K copies of the field. ``euler`` with
``adjoint: true`` is the O(1)-memory counterpart; ``benchmarks/resnet_vs_ode.py`` measures both.
"""

from __future__ import annotations

import copy
import math
from typing import Annotated, Any, Dict, List, Optional

import torch
from torch import nn

import odepipe
from odepipe import Dynamics, Range, Solver

#: layer steps one call may take (a span far below the data's time span asks for millions)
MAX_STEPS = 1_000_000


class ResNetSolver(Solver):
    """Residual network of ``layers`` blocks, each a copy of the dynamics with its own weights.

    Args:
        layers: K, the number of residual blocks (Euler steps with their own weights).
        span: time covered by the K blocks; null uses each call's own time span.
        independent_init: re-initialise every copy (a conventional ResNet); false (default)
            starts all copies equal to the recipe's field, i.e. from the Euler Neural ODE.
    """

    @odepipe.checked
    def __init__(
        self,
        layers: Annotated[int, Range(ge=1, le=100_000)] = 10,
        span: Optional[Annotated[float, Range(gt=0, le=1e6, example=1.0)]] = None,
        independent_init: bool = False,
    ):
        super().__init__()
        self.num_layers, self.span, self.independent_init = layers, span, independent_init
        self.weights = nn.ParameterDict()

    def prepare(self, dynamics: Dynamics) -> None:
        """Makes the K per-layer copies of the field's weights; they train and checkpoint.

        Each parameter of the field becomes one tensor of shape ``(K, *shape)`` (state-dict key
        ``solver.weights.<name with . as __>``), row k holding layer k's copy. Stacking keeps
        the optimizer and gradient clipping at the field's handful of tensors instead of K
        times as many, which on a CPU costs more than the layers themselves at K=1000. The
        layers run through one private copy of the field whose parameter slots are pointed at
        row k before layer k is called.
        """
        template = copy.deepcopy(dynamics)
        named = list(template.named_parameters())
        rows: Dict[str, List[torch.Tensor]] = {name: [] for name, _ in named}
        for _ in range(self.num_layers):
            layer = template
            if self.independent_init:
                layer = copy.deepcopy(template)
                for module in layer.modules():
                    if callable(getattr(module, "reset_parameters", None)):
                        module.reset_parameters()
            for name, p in layer.named_parameters():
                rows[name].append(p.detach().clone())
        self.weights = nn.ParameterDict(
            {name.replace(".", "__"): nn.Parameter(torch.stack(rows[name])) for name, _ in named}
        )
        slots = []
        for name, _ in named:
            owner, _, local = name.rpartition(".")
            module = template.get_submodule(owner)
            module._parameters[local] = None  # filled per layer in forward
            slots.append((name.replace(".", "__"), module, local))
        self.__dict__["_template"] = template  # not a submodule: its weights live in .weights
        self.__dict__["_slots"] = slots

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "ResNetSolver":
        """Moves the private field's buffers along with the weights (``.to``, ``.double``)."""
        if "_template" in self.__dict__:
            self._template._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True) -> "ResNetSolver":
        if "_template" in self.__dict__:
            self._template.train(mode)
        return super().train(mode)

    def grid(self, t0: float, t1: float) -> List[float]:
        """The layer boundaries from ``t0`` to ``t1``: K+1 points, or as many as ``span`` needs."""
        if t1 <= t0:
            return [t0]
        if self.span is None:
            n, dt = self.num_layers, (t1 - t0) / self.num_layers
        else:
            dt = self.span / self.num_layers
            steps = (t1 - t0) / dt
            if not steps <= MAX_STEPS:
                raise odepipe.SolverError(
                    f"solver.span={self.span} over solver.layers={self.num_layers} is a step of "
                    f"{dt:g}, and the {t1 - t0:g} time units asked for would take {steps:.3g} "
                    f"steps (at most {MAX_STEPS}); raise solver.span or lower solver.layers"
                )
            n = max(1, math.ceil(steps - 1e-9))
        points = [t0 + k * dt for k in range(n)]
        return points + [t1]

    def forward(self, dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        if "_template" not in self.__dict__:
            raise odepipe.ModelError(
                "the resnet solver was used before Pipeline.prepare made "
                "its layers; build it inside a Pipeline"
            )
        per_layer = [self.weights[key].unbind(0) for key, _, _ in self._slots]  # K views each
        field, slots = self._template, self._slots
        wanted = times.tolist()
        grid = self.grid(wanted[0], wanted[-1])
        grid_t = torch.tensor(grid, dtype=z0.dtype, device=z0.device)
        out: List[torch.Tensor] = [z0]  # the state at times[0]
        j, h = 1, z0
        last = self.num_layers - 1
        try:
            for k in range(len(grid) - 1):
                a, b = grid[k], grid[k + 1]
                layer = min(k, last)
                for (_, module, local), rows in zip(slots, per_layer):
                    module._parameters[local] = rows[layer]
                h_next = h + (b - a) * field(grid_t[k], h)  # (B, L)
                self.nfe_forward += 1
                while j < len(wanted) and wanted[j] <= b:
                    t = wanted[j]
                    if t == b:
                        out.append(h_next)
                    elif t == a:
                        out.append(h)
                    else:
                        out.append(h + (t - a) / (b - a) * (h_next - h))
                    j += 1
                h = h_next
        finally:  # drop the last layer's views, so no graph outlives the call
            for _, module, local in slots:
                module._parameters[local] = None
        while j < len(wanted):  # times equal to the last one (repeated end points)
            out.append(h)
            j += 1
        return torch.stack(out, dim=1)  # (B, T, L)
