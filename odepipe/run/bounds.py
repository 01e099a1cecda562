"""Honest bounds on log p(x) for a trained Pipeline, and the diagnostics read beside them.

Why this module: the ELBO with z0 at the posterior mean, log p(x|mu) - KL, replaces the
expectation over q(z0|x) by its value at one point near the mode of log p(x|z); it is not a
bound and can exceed log p(x) (tests/test_bounds.py shows it on a model whose log p(x) is known).
Here z0 is sampled: the mean over K draws of log p(x|z_k) - KL is an unbiased estimate of the
ELBO, and the importance-weighted estimate of Burda et al. (2016) is a tighter lower bound (in
expectation) that approaches log p(x) as K grows. Everything here is a pure function of a model,
a batch and a ``torch.Generator``: the same generator state gives the same numbers. The noise is
drawn on the generator's device, so a CPU generator gives the same draws whatever the model's
device. Log-densities are float64 from where per-item terms are combined onwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Dict, Iterator, Optional

import torch

from ..errors import DataError, OdepipeError
from ..pipeline import Pipeline
from ..stages import Batch, DataSource, Posterior
from . import distributed

LOG_2PI = math.log(2.0 * math.pi)


@contextlib.contextmanager
def _evaluating(model: Pipeline) -> Iterator[None]:
    """Eval mode (no word dropout, no dropout) and no autograd, restoring the mode after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp()).sum(-1)


def _noise(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=generator.device)


@dataclasses.dataclass
class SampleTerms:
    """The log-densities of K draws z_k ~ q(z0|x) for every item: ``(K, B)`` float64, and the
    analytic KL(q(z0|x) || N(0, I)) ``(B,)``."""

    log_lik: torch.Tensor  # log p(x | z_k)
    log_prior: torch.Tensor  # log N(z_k; 0, I)
    log_q: torch.Tensor  # log q(z_k | x)
    kl: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """Sampled ELBO per item, ``(B,)``: mean_k log p(x|z_k) - KL. With the KL analytic only
        the reconstruction term is estimated, so its variance is smaller than that of the
        all-sampled form; its expectation is the ELBO, a lower bound on log p(x)."""
        return self.log_lik.mean(0) - self.kl

    @property
    def iw(self) -> torch.Tensor:
        """log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) per item, ``(B,)``: by Jensen its
        expectation is below log p(x) and rises monotonically to it with K (Burda et al. 2016,
        Theorem 1). logsumexp keeps the huge ratios of a long sentence finite."""
        w = self.log_lik + self.log_prior - self.log_q
        return torch.logsumexp(w, 0) - math.log(w.shape[0])


def sample_terms(
    model: Pipeline,
    batch: Batch,
    samples: int,
    generator: torch.Generator,
    posterior: Optional[Posterior] = None,
) -> SampleTerms:
    """Encodes the batch (unless ``posterior`` is given), draws ``samples`` z0 per item and
    decodes each; one pass through the ODE and decoder per draw, so memory stays that of one
    evaluation batch whatever K is."""
    if samples < 1:
        raise OdepipeError(
            f"the number of samples z0 ~ q per item must be >= 1, got "
            f"{samples}; pass e.g. --samples 10"
        )
    with _evaluating(model):
        post = model.encode(batch) if posterior is None else posterior
        noise = _noise(torch.Size((samples, *post.mean.shape)), generator)
        mean, logvar = post.mean.double(), post.logvar.double()
        log_lik, log_prior, log_q = [], [], []
        for k in range(samples):
            z0 = post.sample(noise[k])  # (B, L)
            dist = model.decode(model.evolve(z0, batch.times), batch)
            log_lik.append(model.log_likelihood(dist, batch).double())
            z = z0.double()
            log_prior.append(_log_normal(z, torch.zeros_like(z), torch.zeros_like(z)))
            log_q.append(_log_normal(z, mean, logvar))
        kl = Posterior(mean, logvar).kl()
    return SampleTerms(torch.stack(log_lik), torch.stack(log_prior), torch.stack(log_q), kl)


def sampled_elbo(
    model: Pipeline, batch: Batch, samples: int, generator: torch.Generator
) -> torch.Tensor:
    """Per item, mean over ``samples`` draws z0 ~ q of log p(x|z0), minus the analytic KL:
    an unbiased estimate of the ELBO, a lower bound on log p(x). ``(B,)`` float64."""
    return sample_terms(model, batch, samples, generator).elbo


def iw_log_likelihood(
    model: Pipeline, batch: Batch, samples: int, generator: torch.Generator
) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) with q(z0|x) as proposal (Burda et al. 2016),
    ``(B,)`` float64; its negation is the NLL bound to report."""
    return sample_terms(model, batch, samples, generator).iw


def mutual_information(posterior: Posterior, generator: torch.Generator) -> float:
    """I(x; z) under q, estimated as Hoffman & Johnson (2016) define it and He et al. (2019,
    ``calc_mi``) compute it: E_x[E_q log q(z|x)] - E[log q(z)], the first term analytic (minus
    the entropy of a Gaussian), the second with one draw per item and the aggregate posterior
    q(z) = (1/B) sum_j q(z|x_j) over the B items of this batch. The estimate is at most log B,
    and near 0 for an encoder that ignores x (every q(z|x_j) the same). MC noise can push it
    slightly below 0."""
    mean, logvar = posterior.mean.double(), posterior.logvar.double()
    B, L = mean.shape
    neg_entropy = (-0.5 * (L * LOG_2PI + (1.0 + logvar).sum(-1))).mean()
    z = mean + _noise(mean.shape, generator).to(mean) * torch.exp(0.5 * logvar)  # (B, L)
    log_density = _log_normal(z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))  # (B, B)
    log_qz = torch.logsumexp(log_density, 1) - math.log(B)
    return float(neg_entropy - log_qz.mean())


def active_units(
    first: torch.Tensor, second: torch.Tensor, n: float, threshold: float = 0.01
) -> int:
    """Latent dimensions whose posterior mean varies across the data by more than
    ``threshold`` (Burda et al. 2016), from the sums over n items of the means and of their
    squares (sums, so that ranks can add them). evaluate.py reports it through this function
    too, so the figures are the same."""
    variance = second.double() / n - (first.double() / n) ** 2
    return int((variance > threshold).sum())


def recon_nll_at_mean(
    model: Pipeline, batch: Batch, posterior: Optional[Posterior] = None
) -> torch.Tensor:
    """-log p(x | z0 = posterior mean) per item, ``(B,)`` float64: how well the code
    reconstructs; it is neither a bound nor comparable with an NLL."""
    with _evaluating(model):
        post = model.encode(batch) if posterior is None else posterior
        dist = model.decode(model.evolve(post.mean, batch.times), batch)
        return -model.log_likelihood(dist, batch).double()


def perplexity(nll: float, count: float) -> float:
    """exp(total NLL / count of tokens or words): from an upper bound on the NLL, an upper
    bound on the perplexity. Capped at exp(50) so a diverged model still writes valid JSON."""
    return math.exp(min(nll / count, 50.0))


def token_counts(batch: Batch) -> Optional[torch.Tensor]:
    """Positions scored per item for token data (the mask sums, eos included), else None."""
    if batch.tokens is None:
        return None
    if batch.mask is None:
        return torch.full((batch.size,), float(batch.tokens.shape[1]), dtype=torch.float64)
    return batch.mask.double().flatten(1).sum(1).cpu()


def evaluate_bounds(
    model: Pipeline,
    data: DataSource,
    device: torch.device,
    batch_size: int,
    split: str = "test",
    samples: int = 10,
    limit: Optional[int] = None,
    seed: int = 0,
) -> Dict[str, float]:
    """Bounds and diagnostics over one split, per-item averages, as a flat dict (K = samples):

    ``{split}_elbo_sampled``, ``_log_lik_sampled`` (its reconstruction term), ``_kl``,
    ``_nll_iw{K}``, ``_mi``, ``_active_units``, ``_recon_nll_at_mean``; for token data also
    ``_nll_per_token_iw{K}``, ``_ppl_token_iw{K}``, ``_ppl_token_elbo_sampled``, and where every
    batch carries ``extras["words"]`` (per-item word counts) ``_ppl_word_iw{K}`` and
    ``_ppl_word_elbo_sampled``.

    A model without a latent path (``model.latent_free``, a plain language model) has an exact
    log p(x): :func:`exact_likelihood` reports it, under ``_exact`` keys, instead of bounds.

    Items are sharded across ranks under torchrun and the sums reduced. The draws come from a
    generator seeded with ``seed + rank``, so a run is reproducible for a given world size. MI
    uses each batch's items as the aggregate posterior (as He et al. 2019 do), on each rank
    separately: with several ranks it is the same estimator over that rank's batches.
    """
    if model.latent_free:
        return exact_likelihood(model, data, device, batch_size, split, limit)
    generator = torch.Generator().manual_seed(seed + distributed.rank())
    items = distributed.shard(list(data.dataset(split))[:limit])
    totals: Dict[str, float] = {
        "items": 0.0,
        "tokens": 0.0,
        "words": 0.0,
        "word_items": 0.0,
        "elbo": 0.0,
        "log_lik": 0.0,
        "kl": 0.0,
        "iw": 0.0,
        "mi": 0.0,
        "recon_nll": 0.0,
    }
    first = torch.zeros(model.latent_dim, dtype=torch.float64)
    second = torch.zeros(model.latent_dim, dtype=torch.float64)
    with _evaluating(model):
        for start in range(0, len(items), batch_size):
            batch = data.collate(items[start : start + batch_size]).to(device)
            post = model.encode(batch)
            terms = sample_terms(model, batch, samples, generator, posterior=post)
            n: float = batch.size
            totals["items"] += n
            totals["elbo"] += float(terms.elbo.sum())
            totals["log_lik"] += float(terms.log_lik.mean(0).sum())
            totals["kl"] += float(terms.kl.sum())
            totals["iw"] += float(terms.iw.sum())
            totals["mi"] += mutual_information(post, generator) * n
            totals["recon_nll"] += float(recon_nll_at_mean(model, batch, post).sum())
            _count_units(totals, batch)
            means = post.mean.double().cpu()
            first += means.sum(0)
            second += means.pow(2).sum(0)
    for i in range(model.latent_dim):
        totals[f"_mean{i}"], totals[f"_square{i}"] = float(first[i]), float(second[i])
    totals = _summed(totals, split)
    n = totals["items"]
    first = torch.tensor([totals[f"_mean{i}"] for i in range(model.latent_dim)])
    second = torch.tensor([totals[f"_square{i}"] for i in range(model.latent_dim)])
    s, iw_key = split, f"iw{samples}"
    out = {
        f"{s}_elbo_sampled": totals["elbo"] / n,
        f"{s}_log_lik_sampled": totals["log_lik"] / n,
        f"{s}_kl": totals["kl"] / n,
        f"{s}_nll_{iw_key}": -totals["iw"] / n,
        f"{s}_mi": totals["mi"] / n,
        f"{s}_active_units": active_units(first, second, n),
        f"{s}_recon_nll_at_mean": totals["recon_nll"] / n,
    }
    counts = {"token": totals["tokens"]}
    if totals["word_items"] == n:
        counts["word"] = totals["words"]
    for unit, count in counts.items():
        if count > 0:
            out[f"{s}_ppl_{unit}_{iw_key}"] = perplexity(-totals["iw"], count)
            out[f"{s}_ppl_{unit}_elbo_sampled"] = perplexity(-totals["elbo"], count)
    if totals["tokens"] > 0:
        out[f"{s}_nll_per_token_{iw_key}"] = -totals["iw"] / totals["tokens"]
    return out


def exact_likelihood(
    model: Pipeline,
    data: DataSource,
    device: torch.device,
    batch_size: int,
    split: str = "test",
    limit: Optional[int] = None,
) -> Dict[str, float]:
    """log p(x) of a model without a latent path (recipes/text_lm.yaml), where there is nothing
    to bound: p(x) = prod_i p(x_i | x_<i) is computed exactly, once per item (no draws).

    Returns ``{split}_nll_exact`` per item and, for token data, ``_nll_per_token_exact``,
    ``_ppl_token_exact`` and (with word counts) ``_ppl_word_exact``: the same stems as the
    bounds of :func:`evaluate_bounds` (``_nll_iw{K}``, ...), so a table sets them side by side,
    with a suffix that says these are exact.
    """
    items = distributed.shard(list(data.dataset(split))[:limit])
    totals = {"items": 0.0, "tokens": 0.0, "words": 0.0, "word_items": 0.0, "nll": 0.0}
    with _evaluating(model):
        for start in range(0, len(items), batch_size):
            batch = data.collate(items[start : start + batch_size]).to(device)
            out = model(batch, sample=False)
            totals["nll"] -= float(model.log_likelihood(out.dist, batch).double().sum())
            totals["items"] += batch.size
            _count_units(totals, batch)
    totals = _summed(totals, split)
    n = totals["items"]
    out = {f"{split}_nll_exact": totals["nll"] / n}
    if totals["tokens"] > 0:
        out[f"{split}_nll_per_token_exact"] = totals["nll"] / totals["tokens"]
        out[f"{split}_ppl_token_exact"] = perplexity(totals["nll"], totals["tokens"])
    if totals["word_items"] == n and totals["words"] > 0:
        out[f"{split}_ppl_word_exact"] = perplexity(totals["nll"], totals["words"])
    return out


def _count_units(totals: Dict[str, float], batch: Batch) -> None:
    """Adds the batch's tokens and words (where it carries word counts) to ``totals``: the
    denominators of per-token and per-word figures."""
    tokens = token_counts(batch)
    if tokens is not None:
        totals["tokens"] += float(tokens.sum())
    words = batch.extras.get("words")
    if words is not None:
        totals["words"] += float(torch.as_tensor(words, dtype=torch.float64).sum())
        totals["word_items"] += batch.size


def _summed(totals: Dict[str, float], split: str) -> Dict[str, float]:
    """The totals summed over processes; an error when the split gave nothing to average."""
    totals = distributed.sum_dict(totals)
    if totals["items"] == 0:
        raise DataError(
            f"split {split!r} has no items to evaluate; pick another --split or "
            f"raise the item limit"
        )
    return totals
