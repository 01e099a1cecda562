"""The one place the stages meet: encode -> sample z0 -> evolve -> decode, and the ELBO.

Two stages are declarations the Pipeline acts on rather than networks, so they live here:
:class:`NoLatent` (recipe ``encoder: {type: none}``) removes the latent path, which makes the
model a plain autoregressive language model whose log p(x) is exact; :class:`ZeroDynamics`
(``dynamics: {type: zero}``) keeps z(t) = z0 at every time, the ablation with the ODE off,
without running the solver.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
from torch import nn

from .errors import ModelError
from .stages import Batch, Decoder, Dynamics, Encoder, Posterior, Solver


class NoLatent(Encoder):
    """The encoder of a model without a latent path (recipe ``encoder: {type: none}``).

    A Pipeline given one never encodes, never solves and has no KL term: z is ``(B, T, 0)``, so
    the decoder must be built to read no latent (the text decoders: ``decoder.latent: false``)
    and the model is p(x) = prod_i p(x_i | x_<i). Its log-likelihood is exact, not a bound,
    and ``model.latent_dim`` is unused. ``forward`` returns the empty posterior ``(B, 0)``.
    """

    #: read by odepipe.testing.check_encoder: this encoder's posterior has 0 dimensions
    latent_free = True

    def forward(self, batch: Batch) -> Posterior:
        empty = torch.zeros(batch.size, 0, device=batch.data.device)
        return Posterior(empty, empty)


class ZeroDynamics(Dynamics):
    """dz/dt = 0 (recipe ``dynamics: {type: zero}``): z(t_i) = z0 at every time, the ablation
    that shows what the latent ODE adds. The Pipeline copies z0 over the times instead of
    calling the solver (no function evaluations); ``forward`` is the field itself, for
    anything that calls it directly."""

    def __init__(self, latent_dim: int = 0):
        super().__init__()

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return z * 0.0  # tied to z, so the adjoint's vector-Jacobian product (zero) exists


@dataclasses.dataclass
class Output:
    """Everything one forward pass produced."""

    dist: torch.distributions.Distribution  # over the data, batch shape (B, T[, D])
    posterior: Posterior  # q(z0|x), (B, L)
    z0: torch.Tensor  # (B, L)
    zt: torch.Tensor  # (B, T, L)


@dataclasses.dataclass
class Loss:
    """Per-sample means of the ELBO's parts; ``loss`` is what the optimizer minimises."""

    loss: torch.Tensor
    log_lik: torch.Tensor
    kl: torch.Tensor
    elbo: torch.Tensor
    output: Output


class Pipeline(nn.Module):
    """A latent ODE model built from four registered stages.

    Args:
        encoder, dynamics, solver, decoder: the stages.
        latent_dim: size of z; checked against the stages by :meth:`check`. With a
            :class:`NoLatent` encoder the model has no latent and ``self.latent_dim`` is 0.
        variational: sample z0 from q(z0|x) in training (a VAE); False uses the mean and drops
            the KL term (a plain autoencoder of the same network).

    ``latent_free`` is true for a :class:`NoLatent` encoder (a plain language model).
    """

    def __init__(
        self,
        encoder: Encoder,
        dynamics: Dynamics,
        solver: Solver,
        decoder: Decoder,
        latent_dim: int,
        variational: bool = True,
    ):
        super().__init__()
        self.encoder, self.dynamics, self.solver, self.decoder = encoder, dynamics, solver, decoder
        self.latent_free = isinstance(encoder, NoLatent)
        self.latent_dim = 0 if self.latent_free else latent_dim
        self.variational = variational
        solver.prepare(dynamics)

    # -- the four steps ------------------------------------------------------------------------
    def encode(self, batch: Batch) -> Posterior:
        return self.encoder(batch)

    def evolve(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Solves from z0 to every time; ``times`` is ``(T,)`` or per-sample ``(B, T)``.

        Per-sample grids are solved once on their sorted union and gathered back, so every
        solver works unchanged (as in Rubanova et al. 2019). Without a latent or with
        :class:`ZeroDynamics`, z0 is repeated over the times and no solver runs.
        """
        if self.latent_free or isinstance(self.dynamics, ZeroDynamics):
            steps = times.shape[-1]
            return z0.unsqueeze(1).expand(z0.shape[0], steps, z0.shape[-1])  # (B, T, L)
        if times.dim() == 1:
            return self.solver(self.dynamics, z0, times)  # (B, T, L)
        union, inverse = torch.unique(times, sorted=True, return_inverse=True)  # (U,), (B, T)
        z_union = self.solver(self.dynamics, z0, union)  # (B, U, L)
        index = inverse.unsqueeze(-1).expand(-1, -1, z_union.shape[-1])
        return torch.gather(z_union, 1, index)  # (B, T, L)

    def decode(self, zt: torch.Tensor, batch: Batch) -> torch.distributions.Distribution:
        return self.decoder(zt, batch)

    def forward(
        self, batch: Batch, sample: Optional[bool] = None, noise: Optional[torch.Tensor] = None
    ) -> Output:
        """``sample`` defaults to sampling z0 in training mode for a VAE; ``noise`` fixes the
        standard-normal draw (the trainer derives it from the seed and step)."""
        posterior = self.encode(batch)
        sample = self.variational and self.training if sample is None else sample
        z0 = posterior.sample(noise) if sample else posterior.mean  # (B, L)
        zt = self.evolve(z0, batch.times)  # (B, T, L)
        return Output(self.decode(zt, batch), posterior, z0, zt)

    # -- objectives ----------------------------------------------------------------------------
    def log_likelihood(self, dist: torch.distributions.Distribution, batch: Batch) -> torch.Tensor:
        """log p(x|z) summed over observed entries, ``(B,)``."""
        lp = dist.log_prob(batch.data)  # (B, T[, D])
        if batch.mask is not None:
            mask = batch.mask.to(lp.dtype)
            while mask.dim() < lp.dim():
                mask = mask.unsqueeze(-1)
            lp = lp * mask
        return lp.flatten(1).sum(1)

    def elbo(
        self,
        batch: Batch,
        beta: float = 1.0,
        free_bits: float = 0.0,
        sample: Optional[bool] = None,
        noise: Optional[torch.Tensor] = None,
    ) -> Loss:
        """ELBO = log p(x|z) - beta * KL(q(z0|x) || N(0, I)), averaged over the batch.

        ``free_bits`` (nats per latent dimension, batch-averaged) keeps the KL term from pushing
        a dimension below that floor, a guard against posterior collapse. In training mode the
        decoder's ``auxiliary_loss`` (if any) is added to ``loss`` only.
        """
        out = self(batch, sample=sample, noise=noise)
        log_lik = self.log_likelihood(out.dist, batch).mean()
        kl_dims = out.posterior.kl_per_dim().mean(0)  # (L,)
        kl = kl_dims.sum()
        kl_term = kl_dims.clamp(min=free_bits).sum() if free_bits > 0 else kl
        weight = beta if self.variational else 0.0
        loss = -(log_lik - weight * kl_term)
        if self.training:
            extra = self.decoder.auxiliary_loss(out.zt, batch)
            if extra is not None:
                loss = loss + extra
        return Loss(loss=loss, log_lik=log_lik, kl=kl, elbo=log_lik - kl, output=out)

    # -- using a trained model -----------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, batch: Batch) -> torch.Tensor:
        """The decoded mean from the posterior mean (MAP), ``(B, T, D)``."""
        return self(batch, sample=False).dist.mean

    def refine(self, batch: Batch, steps: int, lr: float = 0.1) -> torch.Tensor:
        """The posterior mean of each item, then ``steps`` Adam steps on log p(x|z0) alone:
        codes the decoder reconstructs better than the encoder's guess, ``(B, L)``.

        Why: on items it has not seen, an amortized encoder misses the code its decoder would
        need (the amortization gap, Cremer et al. 2018; refined by gradient as in Kim et al.'s
        semi-amortized VAE, 2018). Only z0 moves: the weights are not touched, and each item's
        code is found independently of the others in the batch. The refined codes are fitted to
        x, not drawn from q(z0|x) or the prior: they can leave the prior's typical radius, and
        nothing computed from them is a bound. ``steps=0`` returns the posterior mean.
        """
        with torch.no_grad():
            z0 = self.encode(batch).mean.detach().clone()
        if steps <= 0:
            return z0
        if self.latent_free:
            raise ModelError(
                "a model without a latent path (encoder type none) has no code to refine; "
                "use --refine 0"
            )
        z0.requires_grad_(True)
        optimizer = torch.optim.Adam([z0], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                dist = self.decode(self.evolve(z0, batch.times), batch)
                loss = -self.log_likelihood(dist, batch).sum()
                (z0.grad,) = torch.autograd.grad(loss, [z0])
                optimizer.step()
        return z0.detach()

    @torch.no_grad()
    def extrapolate(self, seed: Batch, times: torch.Tensor) -> torch.Tensor:
        """Encodes a seed prefix and decodes the posterior mean over ``times``, which may run
        past the seed's window: the ODE-VAE's ``generate_with_seed``. Returns ``(B, T', D)``."""
        z0 = self.encode(seed).mean
        zt = self.evolve(z0, times.to(z0.device))
        target = dataclasses.replace(seed, times=times)
        return self.decode(zt, target).mean

    @torch.no_grad()
    def check(self, batch: Batch) -> None:
        """Runs two items through every stage and names the recipe key behind any mismatch."""
        small = batch
        post = self.encode(small)
        if post.mean.shape[-1] != self.latent_dim or post.logvar.shape != post.mean.shape:
            raise ModelError(
                f"the encoder returned a posterior of shape {tuple(post.mean.shape)}, but "
                f"model.latent_dim={self.latent_dim}; fix the encoder's output size or "
                f"model.latent_dim"
            )
        z0 = post.mean
        dz = z0 if self.latent_free else self.dynamics(small.times.reshape(-1)[0], z0)
        if dz.shape != z0.shape:
            raise ModelError(
                f"the dynamics returned dz/dt of shape {tuple(dz.shape)} for z of "
                f"shape {tuple(z0.shape)}; check dynamics.type and its latent_dim"
            )
        zt = self.evolve(z0, small.times)
        expected = (small.size, small.data.shape[1], self.latent_dim)
        if tuple(zt.shape) != expected:
            raise ModelError(
                f"the solver returned {tuple(zt.shape)}, expected {expected} "
                f"(batch, time, latent); check solver.type"
            )
        lp = self.decode(zt, small).log_prob(small.data)
        if tuple(lp.shape) != tuple(small.data.shape):
            raise ModelError(
                f"the decoder's log_prob has shape {tuple(lp.shape)} but the data "
                f"has shape {tuple(small.data.shape)}; check decoder.type against "
                f"data.type"
            )
