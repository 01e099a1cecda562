"""The stage contracts: what one batch looks like at every boundary of the pipeline.

Every stage is batch-first. Encoders, dynamics, solvers and decoders are ``nn.Module``\\ s so that
their parameters travel with the model, its checkpoint and ``.to(device)``. A plugin component
subclasses one of these bases; the registry refuses anything else.

Each base declares ``supports = ("series", "tokens")``: the kinds of data (``Batch.values`` or
``Batch.tokens``) a component works on. A component made for one kind narrows it
(``supports = ("series",)``), so that a recipe pairing it with the other kind is refused with
a sentence naming the section, before anything is built (see :mod:`odepipe.supports`; a class
that keeps the default but requires ``obs_dim`` or ``vocab_size`` is taken to support that
kind only). For a DataSource, ``supports`` is the kind of batches it gives.

The full contract, with the lifecycle of a run, is docs/plugins.md.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

#: the default of every stage's ``supports``: both kinds of data
BOTH: Tuple[str, ...] = ("series", "tokens")


@dataclasses.dataclass
class Batch:
    """One minibatch.

    Attributes:
        values: ``(B, T, D)`` float observations of a series, or None for text.
        tokens: ``(B, T)`` long token ids for text, or None for series.
        times: ``(T,)`` time grid shared by the batch, or ``(B, T)`` per sample.
        mask: ``(B, T)`` or ``(B, T, D)``; 1 where an entry was observed, 0 for padding/missing.
        extras: anything else a data source needs for evaluation (clean trajectories, ids).
            :meth:`to` moves the tensors among them to the device (other values stay as they
            are); nothing in odepipe reads them, they travel to ``DataSource.evaluate/plot``.

    ``data`` and ``size`` are properties (``batch.size``, not ``batch.size()``). With per-sample
    times ``(B, T)``, z0 is the latent state at the earliest time of the whole batch
    (``times.min()``) for every sample, not at each sample's own first time: the pipeline solves
    once on the sorted union of all samples' times and gathers each sample's points back (see
    ``Pipeline.evolve``).
    """

    times: torch.Tensor
    values: Optional[torch.Tensor] = None
    tokens: Optional[torch.Tensor] = None
    mask: Optional[torch.Tensor] = None
    extras: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def data(self) -> torch.Tensor:
        """The observed tensor, whichever kind this batch carries (a property)."""
        data = self.values if self.values is not None else self.tokens
        assert data is not None, "a Batch carries values or tokens"
        return data

    @property
    def size(self) -> int:
        """B, the number of items (a property)."""
        return self.data.shape[0]

    def to(self, device: torch.device | str) -> "Batch":
        def move(x: Any) -> Any:
            return x.to(device) if isinstance(x, torch.Tensor) else x

        return Batch(
            times=move(self.times),
            values=move(self.values),
            tokens=move(self.tokens),
            mask=move(self.mask),
            extras={k: move(v) for k, v in self.extras.items()},
        )

    def prefix(self, length: int) -> "Batch":
        """The first ``length`` time points: the seed that extrapolation starts from."""

        def cut(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if x is None else x[:, :length]

        times = self.times[..., :length]
        return Batch(
            times=times,
            values=cut(self.values),
            tokens=cut(self.tokens),
            mask=cut(self.mask),
            extras=dict(self.extras),
        )


@dataclasses.dataclass
class Posterior:
    """A diagonal Gaussian q(z0|x): ``mean`` and ``logvar`` of shape ``(B, L)``."""

    mean: torch.Tensor
    logvar: torch.Tensor

    def sample(self, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Reparameterised sample, so gradients reach the encoder. ``noise`` (standard normal,
        ``(B, L)``) may be given to make the draw reproducible; otherwise it is drawn here."""
        noise = torch.randn_like(self.mean) if noise is None else noise.to(self.mean)
        return self.mean + noise * torch.exp(0.5 * self.logvar)

    def kl_per_dim(self) -> torch.Tensor:
        """KL(q || N(0, I)) for every latent dimension, ``(B, L)``."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) summed over latent dimensions, ``(B,)``."""
        return self.kl_per_dim().sum(-1)


class Encoder(nn.Module, abc.ABC):
    """Reads a batch (in reverse time, as the ODE-VAE does) into q(z0|x)."""

    supports: ClassVar[Tuple[str, ...]] = BOTH

    @abc.abstractmethod
    def forward(self, batch: Batch) -> Posterior:
        """Returns a Posterior with mean and logvar of shape ``(B, latent_dim)``."""


class Dynamics(nn.Module, abc.ABC):
    """The vector field dz/dt = f(t, z) of the latent ODE.

    With ``solver.adjoint: true`` the forward solve runs under ``torch.no_grad()`` (the adjoint
    recomputes what it needs on the way back): a field that uses autograd inside ``forward``
    (a Hamiltonian field taking ``dH/dz``) must enable it itself, with
    ``torch.enable_grad()`` and ``z.requires_grad_(True)`` on a detached copy when needed.
    """

    supports: ClassVar[Tuple[str, ...]] = BOTH

    @abc.abstractmethod
    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``t`` is a scalar tensor, ``z`` is ``(B, L)``; returns dz/dt of shape ``(B, L)``."""


class Solver(nn.Module, abc.ABC):
    """Integrates a Dynamics field from z0 over a time grid; counts function evaluations.

    A solver is a module so that one with weights of its own (a ResNet's per-layer copies of the
    field) checkpoints like every other stage.

    ``nfe_forward`` counts evaluations of the field in the forward solve, ``nfe_backward`` those
    made while backpropagating: with the adjoint method the evaluations of its backward solve;
    without it, 0 (autograd differentiates through the recorded forward evaluations and calls
    the field no more). The trainer calls :meth:`reset_nfe` before every training step and reads
    both counters after ``backward()``; a solver only increments them.
    """

    supports: ClassVar[Tuple[str, ...]] = BOTH

    def __init__(self) -> None:
        super().__init__()
        self.nfe_forward = 0
        self.nfe_backward = 0

    def prepare(self, dynamics: Dynamics) -> None:
        """Called once when the pipeline is built; a solver may copy or wrap the field here."""

    def reset_nfe(self) -> None:
        self.nfe_forward = 0
        self.nfe_backward = 0

    @abc.abstractmethod
    def forward(self, dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """``z0`` is ``(B, L)``, ``times`` is ``(T,)`` increasing; returns ``(B, T, L)``."""


class Decoder(nn.Module, abc.ABC):
    """Maps latent states back to a distribution over the data."""

    supports: ClassVar[Tuple[str, ...]] = BOTH

    @abc.abstractmethod
    def forward(self, z: torch.Tensor, batch: Batch) -> torch.distributions.Distribution:
        """``z`` is ``(B, T, L)``; returns a distribution whose ``log_prob`` of the batch's data
        is ``(B, T, D)`` for series or ``(B, T)`` for tokens."""

    def auxiliary_loss(self, z: torch.Tensor, batch: Batch) -> Optional[torch.Tensor]:
        """An optional training-only term (a scalar) added to the loss but not to log_lik, kl
        or elbo, so the logged ELBO stays the ELBO: e.g. a bag-of-words loss that makes z hold
        a sentence's words (Zhao et al. 2017). ``z`` is ``(B, T, L)``. None: no term."""
        return None


class DataSource(abc.ABC):
    """Provides datasets for the splits, a collate function, and dimensions for the model.

    Subclasses take their parameters as keyword arguments (bound from the recipe) plus ``seed``.

    Lifecycle in a run: the constructor (once, reading or generating the data), ``dims()``
    (the stages are built with it), ``dataset("train")`` and ``collate`` of two items (the
    pipeline's shape check), then ``collate`` for every step's batch; ``evaluate`` for every
    evaluation batch of every split but train (periodically with ``train.eval_every`` and at the
    end); ``state()`` at the end (into summary.json); ``plot`` once at the end on up to 8 test
    items (with ``train.plot``). ``sample`` is called by ``odepipe sample`` on a finished run.
    ``supports`` is the kind of batches this source gives (both: known from ``dims()``).

    ``splits`` names the splits ``dataset`` serves: ``train`` always, ``test`` for the final
    evaluation, and optionally ``valid``, a held-out split the run evaluates periodically
    (``valid_*`` keys in metrics.jsonl) and on which ``train.keep: best`` chooses the weights
    it keeps. A ``valid`` split must be disjoint from ``test`` (no item of one is an item of the
    other) and deterministic by ``seed`` (the same arguments give the same items in the same
    order); :func:`odepipe.contract.check_valid_split` checks both. A source may set
    ``splits`` per instance (e.g. no valid split when ``n_valid=0``).
    """

    splits: Sequence[str] = ("train", "test")
    supports: ClassVar[Tuple[str, ...]] = BOTH

    @abc.abstractmethod
    def dataset(self, split: str) -> Sequence[Any]:
        """The items of one split; ``collate`` turns a list of them into a Batch."""

    @abc.abstractmethod
    def collate(self, items: Sequence[Any]) -> Batch:
        """Stacks dataset items into one Batch."""

    @abc.abstractmethod
    def dims(self) -> Dict[str, int]:
        """Sizes other stages are built with: ``{"obs_dim": 2}`` or ``{"vocab_size": 8000}``."""

    def evaluate(self, model: Any, batch: Batch) -> Dict[str, float]:
        """Data-specific metrics on one evaluation batch (already on the device), under
        ``torch.no_grad()`` with the model in eval mode. Return sums over the batch's items:
        the evaluator adds them over batches (and processes) and divides by the number of items,
        then prefixes every key with the split (``extrap_mse`` -> ``test_extrap_mse``).
        ``model`` is the :class:`odepipe.Pipeline` (``reconstruct``, ``extrapolate``). The
        default adds nothing to the generic ELBO metrics."""
        return {}

    def plot(self, model: Any, batch: Batch, out_dir: str) -> None:
        """Optional: draw figures of the model (the Pipeline, eval mode) on a batch of up to 8
        test items (on the device) into ``out_dir`` (the run's ``plots/``, existing). Called
        once at the end of a run with ``train.plot: true``; matplotlib is already set to Agg.
        Returns nothing."""

    def state(self) -> Dict[str, Any]:
        """Preprocessing fitted to the data (normalization statistics, a tokenizer's identity),
        written to the run's summary.json under ``data`` so that commands using the run can
        check that they see the same data. Empty by default."""
        return {}

    def save(self, folder: str) -> None:
        """Writes what inference needs besides the weights (a fitted tokenizer's model file,
        normalization statistics) into ``folder``, a directory inside the run folder that the
        trainer creates and calls this once with. Nothing by default."""

    def restore(self, folder: str) -> None:
        """Called instead of reading the data when a finished run is opened for use
        (``load_run``), right after construction and before ``dims()``: reads what
        :meth:`save` wrote, so that e.g. a text source gets its tokenizer back without
        regenerating or re-reading its corpus. A source that needs its data for inference
        keeps this default and reads it as usual."""

    def sample(self, model: Any, n: int, out_dir: Optional[str] = None) -> Sequence[str]:
        """Decodes ``n`` draws of z0 from the prior N(0, I) into data this source understands;
        returns one printable line per draw and may write files (CSV, plots) into ``out_dir``.
        Used by ``odepipe sample``; sources that cannot sample keep this default."""
        from .errors import DataError

        raise DataError(f"data source {type(self).__name__} does not support sampling")


__all__ = ["Batch", "Posterior", "Encoder", "Dynamics", "Solver", "Decoder", "DataSource"]
