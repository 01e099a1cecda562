"""Autoregressive text decoders conditioned on the latent path z(t_i).

At position i the recurrent cell reads the previous token's embedding next to z(t_i), the
latent ODE's state at that token position, and the output layer sees z(t_i) again (by default;
``latent_input`` and ``latent_output`` choose ways that keep a plain LM's widths). Feeding z at
every step (rather than only as the initial state, as Bowman et al. 2016 did) gives the decoder
no reason to ignore the latent code; word dropout (previous tokens replaced by unk during
training) takes away the shortcut of copying the prefix, the other cause of posterior collapse.
Token ids follow :mod:`odepipe_plugins.text.tokenizer`: pad 0, unk 1, bos 2, eos 3.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

import odepipe
from odepipe import Batch, Decoder, Depth, Range, Width

from .tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

Rate = Annotated[float, Range(ge=0, lt=1)]


class TokenDistribution(torch.distributions.Distribution):
    """Categorical over the vocabulary at every position, ``batch_shape (B, T)``.

    Same numbers as ``Categorical(logits=...)`` where the batch's mask is 1 (``selected``), with
    ``log_prob`` through the fused ``cross_entropy``; padded positions get log-probability 0
    and mode pad. The logits are either ``(B, T, V)``, at every position, or ``(N, V)``, at
    the N selected positions only: the decoder picks the dense layout when there is little
    padding (no gather of the largest tensor of the step) and the selected one when there is
    much (no logits computed at padding).
    """

    arg_constraints: dict = {}

    def __init__(self, logits: torch.Tensor, selected: torch.Tensor):
        self.logits = logits  # (B, T, V) or (N, V)
        self.selected = selected  # (B, T) bool
        super().__init__(batch_shape=selected.shape, validate_args=False)

    @property
    def selected_logits(self) -> torch.Tensor:
        """``(N, V)``: the logits at the selected positions, in row-major order."""
        return self.logits[self.selected] if self.logits.dim() == 3 else self.logits

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self.logits.dim() == 3:
            nll = F.cross_entropy(self.logits.flatten(0, 1), value.flatten(), reduction="none")
            return -nll.view(self.selected.shape).masked_fill(~self.selected, 0.0)  # (B, T)
        out = torch.zeros(self.selected.shape, dtype=self.logits.dtype, device=self.logits.device)
        out[self.selected] = -F.cross_entropy(self.logits, value[self.selected], reduction="none")
        return out  # (B, T)

    @property
    def mode(self) -> torch.Tensor:
        if self.logits.dim() == 3:
            return self.logits.argmax(-1).masked_fill(~self.selected, PAD_ID)  # (B, T)
        out = torch.full(self.selected.shape, PAD_ID, dtype=torch.long, device=self.logits.device)
        out[self.selected] = self.logits.argmax(-1)
        return out  # (B, T)

    @property
    def mean(self) -> torch.Tensor:  # the most likely token ids; what reconstruct() reports
        return self.mode


class RecurrentTextDecoder(Decoder, odepipe.BeamSearchDecoder):
    """Shared body; subclasses choose the recurrent cell. Decodes greedily or by beam search
    (the capabilities ``interpolate-sentences`` checks for).

    Args:
        latent_dim, vocab_size: supplied by odepipe.
        hidden_size, num_layers, embedding_dim: sizes of the recurrent network.
        word_dropout: probability that a previous-token input is replaced by unk in training.
        dropout: dropout on the recurrent outputs in training.
        latent: false builds the same network without any input from z (no z beside the
            embedding or before the output layer, initial state 0): a plain language model,
            for a recipe with ``encoder: {type: none}`` (recipes/text_lm.yaml).
        bow_weight: weight of the bag-of-words loss (Zhao et al. 2017), a training-only term:
            a linear map of z0 predicts every piece of the sentence, order-free, so that z0
            must hold which words the sentence has. 0 (the default): no such term or head.
        latent_output: how the output layer reads the latent. ``path`` (the default): z(t_i)
            beside the recurrent state at every position. ``start``: a linear map of z0 adds
            one bias over the vocabulary per sentence, so the largest matrix product of the
            step (state to vocabulary, at every position) keeps the width of a plain
            language model's. ``state``: a linear map of z0 is added to the recurrent state
            before the output layer, the same kind of per-sentence bias (restricted to what the
            output layer can write) at the state's width instead of the vocabulary's, the
            cheapest of the three. z(t_i) still enters the recurrent net at every position.
        latent_input: how z(t_i) enters the recurrent net. ``concat`` (the default): beside
            the previous piece's embedding. ``add``: through a linear map added to the
            embedding, so the net's input keeps a plain language model's width.
    """

    cell: type = nn.GRU
    supports = ("tokens",)

    @odepipe.checked
    def __init__(
        self,
        latent_dim: int,
        vocab_size: Optional[int] = None,
        hidden_size: Width = 256,
        num_layers: Depth = 1,
        embedding_dim: Width = 128,
        word_dropout: Rate = 0.25,
        dropout: Rate = 0.0,
        latent: bool = True,
        bow_weight: Annotated[float, Range(ge=0)] = 0.0,
        latent_output: Literal["path", "start", "state"] = "path",
        latent_input: Literal["concat", "add"] = "concat",
    ):
        super().__init__()
        if vocab_size is None:
            raise odepipe.ModelError(
                "this decoder writes tokens and needs a text data source "
                "(data.type=grammar, english, text or hf) to supply vocab_size"
            )
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.word_dropout = word_dropout
        self.z_dim = latent_dim if latent else 0  # width of z this decoder reads
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.init = nn.Linear(latent_dim, hidden_size * num_layers) if latent else None
        added = latent and latent_input == "add"
        self.in_z = nn.Linear(latent_dim, embedding_dim, bias=False) if added else None
        beside_input = self.z_dim if self.in_z is None else 0  # z's width beside the embedding
        self.rnn = self.cell(
            embedding_dim + beside_input, hidden_size, num_layers=num_layers, batch_first=True
        )
        self.drop = nn.Dropout(dropout)
        beside = self.z_dim if latent_output == "path" else 0  # z's width beside the state
        self.out = nn.Linear(hidden_size + beside, vocab_size)
        self.out_z = (
            nn.Linear(latent_dim, vocab_size, bias=False)
            if latent and latent_output == "start"
            else None
        )
        self.state_z = (
            nn.Linear(latent_dim, hidden_size, bias=False)
            if latent and latent_output == "state"
            else None
        )
        self.bow_weight = bow_weight
        self.bow = nn.Linear(latent_dim, vocab_size) if latent and bow_weight > 0 else None

    def initial_state(self, z0: torch.Tensor):
        if self.init is None:  # no latent: the usual language model's zero state
            h = z0.new_zeros(self.num_layers, z0.shape[0], self.hidden_size)
        else:
            h = torch.tanh(self.init(z0)).view(z0.shape[0], self.num_layers, self.hidden_size)
            h = h.transpose(0, 1).contiguous()  # (layers, B, H)
        return (h, torch.zeros_like(h)) if self.cell is nn.LSTM else h

    def _input(self, embedded: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The recurrent net's input from the previous pieces' embeddings and z(t_i). Every
        use of z passes through here first, so a z of another width is named here: a recipe
        mismatch."""
        self._check_width(z)
        return self._with_z(embedded, z) if self.in_z is None else embedded + self.in_z(z)

    def _features(self, h: torch.Tensor, z: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        """What the output layer reads at each position, except ``start``'s vocabulary bias:
        the state, with z(t_i) beside it (``path``) or a map of z0 ``(B, L)`` added
        (``state``)."""
        if self.state_z is not None:
            return h + self.state_z(z0).unsqueeze(1)  # the same at every position
        return self._with_z(h, z)

    def _with_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``x`` with z beside it on the last axis; ``x`` alone for a decoder without latent."""
        return x if self.z_dim == 0 else torch.cat([x, z], dim=-1)

    def _check_width(self, z: torch.Tensor) -> None:
        if z.shape[-1] != self.z_dim:
            if self.z_dim == 0:
                fix = (
                    "decoder.latent=false reads no latent, but the encoder gives z of width "
                    f"{z.shape[-1]}; use encoder.type=none (a plain language model) or "
                    "decoder.latent=true"
                )
            else:
                fix = (
                    f"the decoder reads z of width {self.z_dim} but got {z.shape[-1]}; with "
                    "encoder.type=none (no latent path) set decoder.latent=false"
                )
            raise odepipe.ModelError(fix)

    def forward(self, z: torch.Tensor, batch: Batch) -> torch.distributions.Distribution:
        """Teacher-forced logits for every position; ``z`` is ``(B, T, L)``."""
        tokens = batch.tokens  # (B, T)
        prev = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], dim=1)
        if self.training and self.word_dropout > 0:
            drop = torch.rand(prev.shape, device=prev.device) < self.word_dropout
            drop[:, 0] = False  # keep bos
            prev = torch.where(drop & (prev != PAD_ID), torch.full_like(prev, UNK_ID), prev)
        x = self._input(self.embedding(prev), z)  # (B, T, E [+ L])
        selected = (
            torch.ones_like(tokens, dtype=torch.bool) if batch.mask is None else batch.mask > 0
        )  # (B, T)
        dense = self._dense(selected)
        h = self.drop(self._recur(x, self.initial_state(z[:, 0]), selected, dense))  # (B, T, H)
        if self.out_z is None:
            features = self._features(h, z, z[:, 0])  # (B, T, H [+ L])
            logits = self.out(features if dense else features[selected])
        elif dense:  # every position of a sentence gets its sentence's bias, in place
            logits = self.out(h).add_(self.out_z(z[:, 0]).unsqueeze(1))  # (B, T, V)
        else:
            rows = torch.arange(len(h), device=h.device).repeat_interleave(selected.sum(1))
            logits = self.out(h[selected]) + self.out_z(z[:, 0])[rows]  # (N, V)
        return TokenDistribution(logits, selected)

    def auxiliary_loss(self, z: torch.Tensor, batch: Batch) -> Optional[torch.Tensor]:
        """The bag-of-words loss, ``bow_weight`` x the batch mean of -sum over the sentence's
        pieces of log softmax(bow(z0)); None without it. Added to the training loss only (the
        Pipeline keeps it out of log_lik and the ELBO)."""
        if self.bow is None:
            return None
        tokens = batch.tokens  # (B, T)
        real = (tokens != PAD_ID) if batch.mask is None else batch.mask > 0
        logp = torch.log_softmax(self.bow(z[:, 0]), dim=-1)  # (B, V)
        picked = logp.gather(1, tokens) * real.to(logp.dtype)  # (B, T)
        return -self.bow_weight * picked.sum(1).mean()

    #: the share of padded positions above which the step skips padding (packed recurrent
    #: net, logits at real positions only) instead of computing over the padded batch
    PACK_ABOVE = 0.25

    def _dense(self, selected: torch.Tensor) -> bool:
        """Whether to compute over the padded batch as it is: at most ``PACK_ABOVE`` of its
        positions are padding. On length-grouped batches (2% padding) skipping padding costs
        more than it saves: the packed GRU ran at 0.89x the tokens/s of the unpacked one on
        one CPU thread, and gathering the real positions' logits cost 5-8 ms of a 160 ms step
        (docs/text.md, "Faster training")."""
        return float(selected.sum()) >= (1.0 - self.PACK_ABOVE) * selected.numel()

    def _recur(
        self, x: torch.Tensor, state: Any, selected: torch.Tensor, dense: bool
    ) -> torch.Tensor:
        """The recurrent net over ``x (B, T, In)``. The net is causal, so its outputs at a
        sentence's own positions do not depend on the padding after them: ``dense`` runs it
        over the padded batch as it is (outputs at padding are never read); otherwise it runs
        packed (on CUDA, through cuDNN's packed kernels)."""
        if dense:
            return self.rnn(x, state)[0]
        lengths = selected.sum(1).clamp(min=1)  # (B,)
        T = selected.shape[1]
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = nn.utils.rnn.pad_packed_sequence(
            self.rnn(packed, state)[0], batch_first=True, total_length=T
        )
        return h

    def _step(
        self, prev: torch.Tensor, zi: torch.Tensor, z0: torch.Tensor, state: Any
    ) -> Tuple[torch.Tensor, Any]:
        """One decoding step: logits ``(B, V)`` of the next token given the previous one
        ``prev (B, 1)``, ``z(t_i)`` ``(B, 1, L)`` and z0 ``(B, L)``; pad and bos can never
        come next."""
        h, state = self.rnn(self._input(self.embedding(prev), zi), state)
        if self.out_z is None:
            logits = self.out(self._features(h, zi, z0))[:, 0]  # (B, V)
        else:
            logits = self.out(h[:, 0]) + self.out_z(z0)
        logits[:, [PAD_ID, BOS_ID]] = -float("inf")
        return logits, state

    @torch.no_grad()
    def greedy(self, z: torch.Tensor) -> torch.Tensor:
        """Most likely token at each step given the previous choices; ``z`` is ``(B, T, L)``,
        the latent path over the positions to fill. Returns ``(B, T)`` ids (pad after eos)."""
        B, T, _ = z.shape
        state = self.initial_state(z[:, 0])
        prev = torch.full((B, 1), BOS_ID, dtype=torch.long, device=z.device)
        done = torch.zeros(B, dtype=torch.bool, device=z.device)
        out = torch.full((B, T), PAD_ID, dtype=torch.long, device=z.device)
        for i in range(T):
            logits, state = self._step(prev, z[:, i : i + 1], z[:, 0], state)
            nxt = logits.argmax(-1)
            out[:, i] = torch.where(done, torch.full_like(nxt, PAD_ID), nxt)
            done |= nxt == EOS_ID
            if bool(done.all()):
                break
            prev = nxt.unsqueeze(1)
        return out

    @torch.no_grad()
    def beam(self, z: torch.Tensor, width: int) -> torch.Tensor:
        """Beam search: keeps the ``width`` prefixes of highest log-probability (summed over
        their pieces, eos included) at every step; a finished prefix stays in the beam at its
        score. ``z`` is ``(B, T, L)``; returns the best sequence ``(B, T)`` (pad after eos).
        Width 1 is greedy decoding."""
        B, T, _ = z.shape
        K = width
        zk = z.repeat_interleave(K, dim=0)  # (B*K, T, L), beams of one item side by side
        state = self.initial_state(zk[:, 0])
        prev = torch.full((B * K, 1), BOS_ID, dtype=torch.long, device=z.device)
        scores = torch.zeros(B, K, device=z.device)
        scores[:, 1:] = -float("inf")  # all beams start equal: expand only the first
        done = torch.zeros(B * K, dtype=torch.bool, device=z.device)
        seqs = torch.full((B * K, T), PAD_ID, dtype=torch.long, device=z.device)
        offset = (torch.arange(B, device=z.device) * K).unsqueeze(1)  # (B, 1)
        for i in range(T):
            logits, state = self._step(prev, zk[:, i : i + 1], zk[:, 0], state)
            logp = torch.log_softmax(logits, dim=-1)  # (B*K, V)
            logp[done] = -float("inf")
            logp[done, PAD_ID] = 0.0  # a finished prefix continues with pad, at no cost
            V = logp.shape[-1]
            top, index = (scores.reshape(-1, 1) + logp).view(B, K * V).topk(K, dim=-1)  # (B, K)
            source = (offset + torch.div(index, V, rounding_mode="floor")).view(-1)  # (B*K,)
            token = (index % V).view(-1)  # (B*K,)
            seqs = seqs[source]
            seqs[:, i] = token
            state = (
                tuple(s[:, source] for s in state) if isinstance(state, tuple) else state[:, source]
            )
            done = done[source] | (token == EOS_ID)
            scores, prev = top, token.unsqueeze(1)
            if bool(done.all()):
                break
        best = scores.argmax(-1)  # (B,)
        return seqs.view(B, K, T)[torch.arange(B, device=z.device), best]


class GRUTextDecoder(RecurrentTextDecoder):
    """Autoregressive GRU over tokens, fed the previous token and z(t_i); word dropout."""

    cell = nn.GRU


class LSTMTextDecoder(RecurrentTextDecoder):
    """Autoregressive LSTM over tokens, fed the previous token and z(t_i); word dropout."""

    cell = nn.LSTM
