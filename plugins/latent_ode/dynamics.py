"""MLP vector fields for the latent ODE."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import nn

import odepipe
from odepipe import Dynamics, Range

ACTIVATIONS = {"elu": nn.ELU, "tanh": nn.Tanh, "softplus": nn.Softplus, "relu": nn.ReLU}


class MLPDynamics(Dynamics):
    """MLP field f(z) or f(t, z): width, depth, activation, time-invariant or time-dependent."""

    @odepipe.checked
    def __init__(
        self,
        latent_dim: int,
        hidden_size: Annotated[int, Range(ge=1, le=16_384)] = 20,
        num_layers: Annotated[int, Range(ge=0, le=64)] = 2,
        activation: Literal["elu", "tanh", "softplus", "relu"] = "elu",
        time_dependent: bool = False,
    ):
        super().__init__()
        self.time_dependent = time_dependent
        layers, width = [], latent_dim + int(time_dependent)
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), ACTIVATIONS[activation]()]
            width = hidden_size
        layers.append(nn.Linear(width, latent_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.time_dependent:
            z = torch.cat([z, t.reshape(1, 1).to(z).expand(z.shape[0], 1)], dim=-1)
        return self.net(z)
