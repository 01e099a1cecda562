"""Text training speed: odepipe's training step against a plain hand-written GRU language model.

Three trainers, torch pinned to one thread, on the same batches (the same items per step, in
odepipe's own batch order):

- ``vae``: odepipe's training step (``Training.one_step``: collate, ELBO, backward, clip,
  Adam) on recipes/text_vae.yaml;
- ``lm``: the same step on recipes/text_lm.yaml, odepipe's language-model baseline (the same
  decoder without latent path);
- ``hand``: a plain loop written here: embedding -> GRU -> linear over every position,
  ``cross_entropy(ignore_index=pad)``, backward, clip, Adam; the decoder's sizes, no encoder.

Each figure is tokens per second, counting real tokens (eos included, padding not). To be fair
to all of them on a shared machine, they run in interleaved rounds (a few steps of each in
turn, the order rotated from round to round so that no trainer always follows the same one)
after a warm-up. Printed: the ratio of the totals, and the median and quartiles of the ratio
within each round, which a change in the machine's load between rounds does not move. Also
printed: padded positions per real token in the batches of a plain random order and of the
length-grouped order training uses.

odepipe's training keeps the memory a step frees for the next step (``train.keep_memory``,
:mod:`odepipe.run.memory`), a setting of the whole process: with the default ``--allocator
keep`` the hand loops run with it too, so the ratio compares the steps' own work under one
allocator; ``--allocator system`` runs every trainer with glibc's default thresholds.

    python benchmarks/text_throughput.py            # text_vae's sizes, 20000 sentences
    python benchmarks/text_throughput.py --vae sentences_default   # real English, its sizes
    python benchmarks/text_throughput.py --quick    # a smoke test: tiny sizes, a few steps

With ``--vae RECIPE`` the VAE is that recipe and the LM is recipes/text_lm.yaml given the
VAE's data section and decoder sizes (what benchmarks/text_real.py does), so all four trainers
have the same decoder and batches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

QUICK = [  # on the embedded grammar, whichever VAE recipe is timed
    "data=grammar",
    "data.n_train=400",
    "data.n_valid=20",
    "data.n_test=20",
    "data.vocab=200",
    "encoder.hidden_size=16",
    "encoder.embedding_dim=8",
    "dynamics.hidden_size=8",
    "decoder.hidden_size=16",
    "decoder.embedding_dim=8",
    "model.latent_dim=4",
]


class HandLM(nn.Module):
    """The plain GRU language model a user would write: no latent, logits everywhere."""

    def __init__(self, vocab: int, embedding_dim: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding_dim, padding_idx=0)
        self.rnn = nn.GRU(embedding_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab)

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        from odepipe_plugins.text.tokenizer import BOS_ID, PAD_ID

        prev = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], dim=1)
        h, _ = self.rnn(self.embedding(prev))  # (B, T, H)
        logits = self.out(h)  # (B, T, V)
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            tokens.reshape(-1),
            ignore_index=PAD_ID,
            reduction="sum",
        )
        return nll / tokens.shape[0]  # per sentence, like the ELBO's log-likelihood term


class Trainer:
    """One of the three; ``run(steps)`` trains that many steps and adds to its totals."""

    def __init__(self, name: str, step: Any, tokens_at: Any):
        self.name, self._step, self._tokens_at = name, step, tokens_at
        self.position, self.seconds, self.tokens = 0, 0.0, 0
        self.rounds: List[float] = []  # tokens/s of each counted run

    def run(self, steps: int, count: bool = True) -> None:
        seconds, tokens = 0.0, 0
        for _ in range(steps):
            real = self._tokens_at(self.position)
            started = time.perf_counter()
            self._step(self.position)
            seconds += time.perf_counter() - started
            tokens += real
            self.position += 1
        if count:
            self.seconds += seconds
            self.tokens += tokens
            self.rounds.append(tokens / seconds)

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def odepipe_trainer(name: str, recipe_path: str, overrides: List[str], folder: str) -> Any:
    import odepipe
    from odepipe.run.train import Training

    recipe = odepipe.load_recipe(recipe_path, overrides)
    training = Training(recipe, odepipe.Run(os.path.join(folder, name)), progress=False)
    training.set_up(resume=False)
    training.model.train()

    def step(position: int) -> None:
        training.step = position
        training.one_step()

    return training, step


#: what the LM takes from the VAE's recipe besides its data section
SHARED = ("hidden_size", "embedding_dim", "num_layers")


def lm_overrides(vae_recipe: Any) -> List[str]:
    """recipes/text_lm.yaml given ``vae_recipe``'s data source and decoder sizes."""
    data = vae_recipe.components["data"]
    decoder = vae_recipe.components["decoder"].params

    def text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    out = [f"data={data.type}"] + [
        f"data.{k}={text(v)}" for k, v in data.params.items() if not isinstance(v, (dict, list))
    ]
    return out + [f"decoder.{k}={text(decoder[k])}" for k in SHARED if k in decoder]


def main(argv: Sequence[str] = ()) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few steps")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=10, help="steps per trainer per round")
    parser.add_argument("--warmup", type=int, default=3, help="steps per trainer, not timed")
    parser.add_argument("--vae", default="text_vae", help="the VAE recipe (default text_vae)")
    parser.add_argument(
        "--allocator",
        choices=("keep", "system"),
        default="keep",
        help="keep: odepipe's default, freed memory kept for the next step (train.keep_memory, "
        "process-wide, so the hand loops run with it too); system: glibc's own thresholds",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for the VAE recipe",
    )
    args = parser.parse_args(list(argv) or None)
    torch.set_num_threads(1)
    overrides = ["train.threads=1", "train.device=cpu", "train.max_seconds=null"]
    overrides.append(f"train.keep_memory={str(args.allocator == 'keep').lower()}")
    if args.quick:
        overrides += QUICK
        args.rounds, args.steps, args.warmup = 2, 2, 1
    total = args.warmup + args.rounds * args.steps
    overrides.append(f"train.steps={total}")
    with tempfile.TemporaryDirectory() as folder:
        vae, vae_step = odepipe_trainer("vae", args.vae, [*overrides, *args.set], folder)
        for_lm = [o for o in overrides if not o.startswith(("encoder.", "dynamics.", "model."))]
        lm, lm_step = odepipe_trainer("lm", "text_lm", lm_overrides(vae.recipe) + for_lm, folder)
        data, plan, items = vae.data, vae.plan, vae.train_items
        lengths = [len(ids) for ids in items]
        from odepipe.run.batches import BatchPlan, padding_per_token

        plain = BatchPlan(len(items), vae.cfg.batch_size, vae.recipe.seed)
        pad_plain = padding_per_token(lengths, plain, plan.per_epoch)
        pad_grouped = padding_per_token(lengths, plan, plan.per_epoch)
        decoder = vae.recipe.components["decoder"].params
        vocab = data.dims()["vocab_size"]
        sizes = (decoder.get("embedding_dim", 128), decoder.get("hidden_size", 256))

        def hand_trainer(name: str, order: Any) -> Trainer:
            torch.manual_seed(0)
            hand = HandLM(vocab, *sizes)
            optimizer = torch.optim.Adam(hand.parameters(), lr=vae.cfg.lr, foreach=True)

            def step(position: int) -> None:
                batch = data.collate([items[i] for i in order.indices(position)])
                loss = hand.loss(batch.tokens)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(hand.parameters(), vae.cfg.grad_clip or 1e9)
                optimizer.step()

            return Trainer(name, step, lambda p: sum(lengths[i] for i in order.indices(p)))

        def tokens_at(position: int) -> int:
            return sum(lengths[i] for i in plan.indices(position))

        trainers = [
            Trainer("vae", vae_step, tokens_at),
            Trainer("lm", lm_step, tokens_at),
            hand_trainer("hand", plan),
            hand_trainer("hand_random", plain),
        ]
        for trainer in trainers:
            trainer.run(args.warmup, count=False)
        for r in range(args.rounds):
            for trainer in trainers[r % len(trainers) :] + trainers[: r % len(trainers)]:
                trainer.run(args.steps)
    rates = {t.name: t.rate for t in trainers}
    shown = (
        f"{args.vae} {' '.join(args.set)}, batch {vae.cfg.batch_size}, "
        f"{len(items)} training sentences, decoder "
        f"hidden {sizes[1]}, embedding {sizes[0]}, vocabulary {vocab}"
    )
    print(
        f"text training throughput, 1 thread, {shown}; {args.rounds} interleaved rounds of "
        f"{args.steps} steps each after {args.warmup} warm-up steps; allocator {args.allocator}"
    )
    print(
        f"padded positions per real token: {pad_plain:.3f} in random batches, "
        f"{pad_grouped:.3f} length-grouped (the order training uses)"
    )
    for name, label in (
        ("hand", "plain GRU LM loop, same batches"),
        ("hand_random", "plain GRU LM loop, random batches"),
        ("lm", "odepipe text_lm (LM baseline)"),
        ("vae", f"odepipe {args.vae} (latent ODE VAE)"),
    ):
        print(f"  {label:<36} {rates[name]:>10.0f} tokens/s")
    for other in ("hand", "hand_random"):
        print(
            f"ratio to the {other} loop: vae {rates['vae'] / rates[other]:.3f}x, "
            f"lm {rates['lm'] / rates[other]:.3f}x"
        )
    by_name = {t.name: t for t in trainers}
    within = {}
    for name in ("vae", "lm"):
        q1, median, q3 = quartiles(by_name[name].rounds, by_name["hand"].rounds)
        within[f"{name}_over_hand_median"] = median
        print(
            f"{name} / hand loop within each round: median {median:.3f}x "
            f"(quartiles {q1:.3f}-{q3:.3f}, {args.rounds} rounds)"
        )
    return {**rates, **within, "pad_plain": pad_plain, "pad_grouped": pad_grouped}


def quartiles(rates: Sequence[float], base: Sequence[float]) -> Tuple[float, float, float]:
    """First quartile, median and third quartile of ``rates[r] / base[r]`` over the rounds."""
    q = statistics.quantiles([a / b for a, b in zip(rates, base)], n=4, method="inclusive")
    return q[0], q[1], q[2]


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main(sys.argv[1:])
