"""``describe(component)``: the parameters ``odepipe ls KIND NAME`` prints."""
from __future__ import annotations

from typing import Literal, Optional

import odepipe
from odepipe.describe import describe, param_docs
from odepipe.registry import Registry


class Field(odepipe.Dynamics):
    """A test field.

    Args:
        latent_dim: supplied by odepipe.
        width, depth: size of the hidden layers,
            and how many there are.
        kind: the activation.
    """

    def __init__(self, latent_dim: int, width: int, depth: int = 2,
                 kind: Literal["tanh", "relu"] = "tanh", scale: Optional[float] = None):
        super().__init__()

    def forward(self, t, z):
        return -z


class Inline(Field):
    def __init__(self, latent_dim: int, rate: float = 1.0, width: int = 3):
        """Args: rate: decay rate (per unit time). width: overrides the parent's doc."""
        super().__init__(latent_dim, width)


def _component(cls, name="field"):
    registry = Registry("dynamics")
    return registry.check(name, cls, "test-plugin", "")


def test_describe_lists_types_defaults_required_and_docs():
    text = describe(_component(Field))
    lines = text.splitlines()
    assert lines[0].startswith("dynamics field  (plugin test-plugin; class ")
    assert lines[1] == "  A test field."
    rows = {line.split()[0]: line for line in lines if line.startswith("  dynamics.")}
    assert list(rows) == ["dynamics.width", "dynamics.depth", "dynamics.kind", "dynamics.scale"]
    assert "int, required" in rows["dynamics.width"]
    assert rows["dynamics.width"].endswith("size of the hidden layers, and how many there are.")
    assert "int, default 2" in rows["dynamics.depth"]
    assert "'tanh' | 'relu', default 'tanh'  the activation." in rows["dynamics.kind"]
    assert rows["dynamics.scale"].rstrip().endswith("float | null, default None")
    assert lines[-1] == "supplied by odepipe: latent_dim"


def test_inline_args_and_the_nearest_doc_win():
    docs = param_docs(Inline)
    assert docs["rate"] == "decay rate (per unit time)."
    assert docs["width"] == "overrides the parent's doc."
    assert docs["kind"] == "the activation."  # from the parent class


def test_builtin_solver_parameters_are_documented(host):
    text = describe(host.registries["solvers"].get("dopri5"))
    assert "solver.rtol" in text and "float, default 0.001" in text
    assert "tolerances of the adaptive methods." in text
