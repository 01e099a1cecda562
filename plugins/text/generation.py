"""Latent codes -> sentences: decoding z0 through the latent ODE (greedy or beam search),
the path between two sentences' codes, and draws from the prior.

The decoder must declare that it writes tokens (:class:`odepipe.TokenDecoder`, and
:class:`odepipe.BeamSearchDecoder` for ``beam > 1``); the text decoders of this bundle do.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

import torch

import odepipe

from .encoding import TextCodec

_FIX = "train with decoder.type=text_gru or decoder.type=text_lstm"


def token_decoder(model: Any, beam: int = 1) -> Any:
    """The model's decoder, checked to offer greedy decoding (and beam search if ``beam > 1``)."""
    if beam < 1:
        raise odepipe.DataError(f"--beam must be >= 1, got {beam}")
    needed = odepipe.BeamSearchDecoder if beam > 1 else odepipe.TokenDecoder
    return odepipe.require_capability(
        model.decoder,
        needed,
        where="this model",
        role="decoder",
        command="decoding sentences" + (f" with --beam {beam}" if beam > 1 else ""),
        fix=_FIX,
    )


@torch.no_grad()
def decode_latents(
    model: Any, codec: TextCodec, z0: torch.Tensor, beam: int = 1, max_len: Optional[int] = None
) -> List[str]:
    """Sentences from initial latent states ``z0 (N, L)``: evolve z over the token positions,
    then decode one token at a time (greedy, or beam search of width ``beam``)."""
    decoder = token_decoder(model, beam)
    zt = model.evolve(z0, codec.times(max_len or codec.max_tokens).to(z0.device))  # (N, T, L)
    ids = decoder.greedy(zt) if beam == 1 else decoder.beam(zt, beam)  # (N, T)
    return codec.decode(ids)


def walk(a: torch.Tensor, b: torch.Tensor, t: float, method: str = "linear") -> torch.Tensor:
    """The point at fraction ``t`` from ``a`` to ``b``: straight line or slerp (great circle,
    norms interpolated linearly), which keeps intermediate points at typical prior radii."""
    if method == "linear":
        return (1 - t) * a + t * b
    if method != "slerp":
        raise odepipe.DataError(f"unknown interpolation method {method!r}; use linear or slerp")
    na, nb = a.norm(), b.norm()
    if na < 1e-8 or nb < 1e-8:
        return (1 - t) * a + t * b
    cos = torch.clamp((a / na) @ (b / nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(
        omega
    )
    return direction * ((1 - t) * na + t * nb)


@torch.no_grad()
def interpolate(
    model: Any,
    codec: TextCodec,
    a: str,
    b: str,
    steps: int = 8,
    method: str = "linear",
    beam: int = 1,
    refine: int = 0,
) -> List[Dict[str, Any]]:
    """``steps`` points strictly between the codes of ``a`` and ``b``, plus the two endpoints,
    each decoded. The codes are the posterior means, refined by ``refine`` gradient steps on
    log p(x|z0) (:meth:`odepipe.Pipeline.refine`). Returns dicts with alpha and sentence."""
    token_decoder(model, beam)  # refuse before encoding anything
    if refine < 0:
        raise odepipe.DataError(f"--refine must be >= 0, got {refine}")
    batch = codec.encode_sentences([a, b])
    device = next(model.parameters()).device
    codes = model.refine(batch.to(device), refine)  # (2, L)
    alphas = [i / (steps + 1) for i in range(steps + 2)]
    z0 = torch.stack([walk(codes[0], codes[1], t, method) for t in alphas])  # (S, L)
    sentences = decode_latents(model, codec, z0, beam)
    return [{"alpha": round(t, 4), "sentence": s} for t, s in zip(alphas, sentences)]


@torch.no_grad()
def sample_prior(
    model: Any, codec: TextCodec, n: int, seed: int, out_dir: Optional[str] = None
) -> List[str]:
    """Greedy sentences from ``n`` draws of z0 ~ N(0, I) (seeded); also written to
    ``out_dir/samples.txt`` when given."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n, model.latent_dim, generator=g).to(device)
    lines = decode_latents(model, codec, z0)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "samples.txt"), "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
    return lines
