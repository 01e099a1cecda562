"""Evaluation of a model on one split: ELBO parts, active units, perplexity, data metrics.

Items are sharded across ranks under torchrun and the sums reduced, so every rank returns the
same numbers as one process would.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from ..pipeline import Pipeline
from ..stages import DataSource
from . import distributed
from .bounds import active_units


@torch.no_grad()
def evaluate(
    model: Pipeline,
    data: DataSource,
    device: torch.device,
    batch_size: int,
    limit: Optional[int] = None,
    split: str = "test",
) -> Dict[str, float]:
    """Per-item averages over the split, at the posterior mean (deterministic).

    Returns ``{split}_log_lik`` (the reconstruction term with z0 at the posterior mean), ``_kl``,
    ``_elbo_at_mean`` (that reconstruction minus the KL: not a bound on log p(x), because z0 is
    not sampled; :mod:`.bounds` computes the bounds), ``_active_units`` (latent dimensions whose
    posterior mean varies across the data by more than 0.01, Burda et al. 2016), for token data
    ``_nll_per_token`` and ``_perplexity`` (of the reconstruction term at the posterior mean),
    and whatever ``data.evaluate`` adds.
    """
    was_training = model.training
    model.eval()
    items = distributed.shard(list(data.dataset(split))[:limit])
    totals: Dict[str, float] = {"items": 0.0, "tokens": 0.0}
    mean_sum = torch.zeros(model.latent_dim, dtype=torch.float64)
    square_sum = torch.zeros(model.latent_dim, dtype=torch.float64)
    source_totals: Optional[Dict[str, float]] = {}  # None once the source's hook failed
    for start in range(0, len(items), batch_size):
        batch = data.collate(items[start : start + batch_size]).to(device)
        parts = model.elbo(batch, sample=False)
        n: float = batch.size
        values = {
            "log_lik": parts.log_lik.item() * n,
            "kl": parts.kl.item() * n,
            "elbo_at_mean": parts.elbo.item() * n,
            "items": n,
        }
        if source_totals is not None:
            try:
                for k, v in data.evaluate(model, batch).items():
                    source_totals[k] = source_totals.get(k, 0.0) + float(v)
            except Exception as exc:  # an optional plugin hook must not cost the run
                from .plots import optional_hook_failed

                optional_hook_failed(data, "evaluate", exc, "its own metrics are left out")
                source_totals = None
        if batch.tokens is not None:
            values["tokens"] = (
                float(batch.mask.sum()) if batch.mask is not None else float(batch.tokens.numel())
            )
        for k, v in values.items():
            totals[k] = totals.get(k, 0.0) + float(v)
        means = parts.output.posterior.mean.double().cpu()
        mean_sum += means.sum(0)
        square_sum += means.pow(2).sum(0)
    totals.update(source_totals or {})
    model.train(was_training)
    for i in range(model.latent_dim):
        totals[f"_mean{i}"], totals[f"_square{i}"] = float(mean_sum[i]), float(square_sum[i])
    totals = distributed.sum_dict(totals)
    n, tokens = totals.pop("items"), totals.pop("tokens")
    first, second = [], []
    for i in range(model.latent_dim):
        first.append(totals.pop(f"_mean{i}"))
        second.append(totals.pop(f"_square{i}"))
    out = {f"{split}_{k}": v / max(1.0, n) for k, v in totals.items()}
    if n > 1:
        out[f"{split}_active_units"] = active_units(torch.tensor(first), torch.tensor(second), n)
    if tokens:
        # the reconstruction term alone; the bound's perplexities come from .bounds
        nll_token = -totals["log_lik"] / tokens
        out[f"{split}_nll_per_token"] = nll_token
        out[f"{split}_perplexity"] = math.exp(min(nll_token, 50.0))
    return out
