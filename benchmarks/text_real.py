"""Real English: a plain language model, the latent-ODE sentence VAE and the same network as an
autoencoder, trained with the same step budget on the same corpus, side by side.

The default budget, 2800 steps of 64 sentences (about 12 epochs), is what each model trains
in under the 600 s of issue 13's measurements on one core of the 2-core machine (about 8 min
each); steps rather than seconds, so that a run is deterministic by seed and a slow machine
changes only the timings.

The VAE is recipes/text_english.yaml (64 latent dimensions at free bits 0.15, no word
dropout, the ``text_conv`` encoder); the AE is the same recipe with
``model.variational=false``; the LM is recipes/text_lm.yaml given the VAE's decoder sizes
and data.

The corpus is the World English Bible's sentences (``data.type=english``, needs
``pip install 'odepipe[english]'``; see docs/text.md). The three models share the decoder
(sizes, tokenizer, data); the LM has no latent path, so its log p(x) is exact and every bound
is read against it. Printed for each, on the test split:

- NLL per sentence: the importance-weighted bound with K samples (exact for the LM), KL,
  mutual information I(x;z) and active units, all from ``odepipe evaluate``;
- endpoints: each of ``--recon`` test sentences of at most 15 words encoded to its posterior
  mean and decoded greedily; exact matches and bag-of-words F1 (lowercased words, punctuation
  dropped, multiset overlap); with ``--refine N`` also with each code fitted to its sentence
  by N gradient steps on log p(x|z0) (``Pipeline.refine``), paths included, in columns of
  their own;
- paths: ``--pairs`` random pairs of test sentences, 8 points strictly between their codes,
  decoded greedily (or ``--beam N``): distinct sentences per path and the fluency of those
  intermediates, nats per word under this run's LM (lower is more fluent);
- training tokens per second (tokens, eos included, of the training batches / training time).

    python benchmarks/text_real.py                       # 2800 steps each (~3 x 9 min)
    python benchmarks/text_real.py --quick               # smoke test on the grammar, < 30 s
    python benchmarks/text_real.py --lm-run D --vae-run D --ae-run D   # score trained runs
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import torch

#: the benchmark's VAE: sentences_default's data and decoder at the rate, word dropout and encoder
#: that keep its bound within 2% of the LM (the recipe's header gives the screening figures)
VAE_RECIPE = "recipes/text_english.yaml"
LM_RECIPE = "recipes/text_lm.yaml"
# The LM gets the VAE's decoder and data; only the latent path goes.
SHARED = [
    "decoder.hidden_size",
    "decoder.embedding_dim",
    "decoder.num_layers",
    "data.vocab",
    "data.max_tokens",
    "data.dt",
    "train.batch_size",
    "train.lr",
    "train.lr_schedule",
    "train.lr_min",
    "train.grad_clip",
    "seed",
]
QUICK = [
    "data=grammar",
    "data.n_train=200",
    "data.n_valid=30",
    "data.n_test=60",
    "data.vocab=120",
    "data.max_tokens=24",
    "decoder.hidden_size=16",
    "decoder.embedding_dim=8",
    "train.batch_size=16",
]
QUICK_LATENT = [  # what only the latent models have (and the KL warm-up, see main)
    "encoder.hidden_size=16",
    "encoder.embedding_dim=8",
    "model.latent_dim=4",
    "train.kl_anneal_steps=5",
]
_WORD = re.compile(r"[a-z0-9']+")


def words(sentence: str) -> List[str]:
    """Lowercased words, punctuation dropped: what bag-of-words F1 compares."""
    return _WORD.findall(sentence.lower())


def bow_f1(reference: str, decoded: str) -> float:
    """F1 of the multiset overlap between the words of two sentences (1.0 when identical)."""
    ref, dec = collections.Counter(words(reference)), collections.Counter(words(decoded))
    overlap = sum((ref & dec).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(dec.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def _recipe_value(recipe_path: str, dotted: str) -> Optional[object]:
    import yaml

    with open(recipe_path, encoding="utf-8") as f:
        node: object = yaml.safe_load(f)
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def train_run(recipe: str, out: str, overrides: Sequence[str]) -> str:
    """Trains ``recipe`` into ``out`` (skipped when ``out`` already holds a finished run)."""
    import odepipe

    if odepipe.Run(out).is_complete():
        return out
    parsed = odepipe.load_recipe(recipe, list(overrides))
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()
    odepipe.train(parsed, out, progress=sys.stderr.isatty())
    print(f"trained {recipe} in {time.perf_counter() - started:.0f} s -> {out}", file=sys.stderr)
    return out


def bounds(run_dir: str, samples: int, items: int) -> Dict[str, float]:
    """``odepipe evaluate RUN --json`` on the test split."""
    from click.testing import CliRunner

    from odepipe.cli import cli

    result = CliRunner().invoke(
        cli, ["evaluate", run_dir, "--samples", str(samples), "--items", str(items), "--json"]
    )
    if result.exit_code != 0:
        raise SystemExit(f"odepipe evaluate {run_dir} failed:\n{result.output}")
    text = result.stdout
    return json.loads(text[text.index("{") :])


class Judge:
    """Nats per word of any sentence under a trained LM run (exact: it has no latent)."""

    def __init__(self, lm_dir: str):
        import odepipe

        _, self.data, self.model = odepipe.load_run(lm_dir)
        self.model.eval()

    def scorable(self, sentences: Sequence[str]) -> List[str]:
        codec = self.data.codec
        return [
            s
            for s, ids in zip(sentences, codec.tokenizer.encode(list(sentences)))
            if words(s) and len(ids) < codec.max_tokens
        ]

    @torch.no_grad()
    def nats_per_word(self, sentences: Sequence[str]) -> float:
        """Mean NLL per word over the sentences the LM can score whole: empty ones and those
        longer than its ``max_tokens`` (a decode that never wrote eos) are left out; the
        callers report how many were (``unscored``)."""
        kept = self.scorable(sentences)
        if not kept:
            return float("nan")
        total_nll, total_words = 0.0, 0
        for i in range(0, len(kept), 100):
            chunk = kept[i : i + 100]
            batch = self.data.encode_sentences(chunk)
            out = self.model(batch, sample=False)
            total_nll -= float(self.model.log_likelihood(out.dist, batch).sum())
            total_words += sum(len(s.split()) for s in chunk)
        return total_nll / total_words


def tokens_per_second(run_dir: str) -> float:
    """Training tokens (eos included) per second of training: steps x batch size x the mean
    training sentence length, over the run's training seconds."""
    import odepipe

    summary = odepipe.Run(run_dir).read_summary()
    recipe, data, _ = odepipe.load_run(run_dir, with_data=True)
    train = data.dataset("train")
    mean_len = sum(len(ids) for ids in train) / len(train)
    return float(summary["steps"]) * recipe.train.batch_size * mean_len / float(summary["seconds"])


def paths_and_endpoints(
    run_dir: str, judge: Judge, pairs: int, recon: int, beam: int, seed: int, refine: int = 0
) -> Dict[str, object]:
    """Endpoint reconstruction and the fluency/diversity of interpolation paths; with
    ``refine`` the codes are fitted to each sentence by that many gradient steps first."""
    import odepipe

    _, data, model = odepipe.load_run(run_dir)
    model.eval()
    test = data.sentences["test"]
    short = [s for s in test if len(s.split()) <= 15][:recon]
    decoded: List[str] = []
    radius = 0.0
    for i in range(0, len(short), 50):
        codes = model.refine(data.encode_sentences(short[i : i + 50]), refine)
        radius += float(codes.norm(dim=-1).sum())
        decoded += data.decode_latents(model, codes, 1)
    exact = sum(d.strip() == s.strip() for d, s in zip(decoded, short)) / len(short)
    f1 = sum(bow_f1(s, d) for s, d in zip(short, decoded)) / len(short)
    rng = random.Random(seed)
    inner: List[str] = []
    distinct = 0
    examples = []
    for _ in range(pairs):
        a, b = rng.sample(short, 2)
        path = [
            p["sentence"]
            for p in data.interpolate(model, a, b, steps=8, beam=beam, refine=refine)
        ]
        inner += path[1:-1]
        distinct += len(set(path[1:-1]))
        if len(examples) < 2:
            examples.append([a, *path, b])
    return {
        "endpoint_exact": exact,
        "endpoint_bow_f1": f1,
        "endpoint_examples": list(zip(short[:3], decoded[:3])),
        "code_radius": radius / len(short),
        "distinct_per_path": distinct / pairs,
        "fluency_nats_per_word": judge.nats_per_word(inner),
        "unscored": len(inner) - len(judge.scorable(inner)),
        "examples": examples,
    }


def _fmt(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(results: Dict[str, Dict[str, object]], samples: int) -> str:
    rows = [
        (f"NLL/sentence, nats (IW k={samples}; LM exact)", "nll", 2),
        ("KL, nats", "kl", 2),
        ("mutual information, nats", "mi", 2),
        ("active units", "au", 0),
        ("endpoints exact (<= 15 words)", "endpoint_exact", 2),
        ("endpoints bag-of-words F1", "endpoint_bow_f1", 3),
        ("intermediates, LM nats/word", "fluency_nats_per_word", 2),
        ("distinct of 8 per path", "distinct_per_path", 2),
        ("endpoint codes, mean norm", "code_radius", 2),
        ("intermediates unscored (empty or no eos)", "unscored", 0),
        ("training tokens/s", "tokens_per_s", 0),
        ("training seconds", "seconds", 0),
        ("steps", "steps", 0),
    ]
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, key, digits in rows:
        cells = []
        for n in names:
            v = results[n].get(key)
            cells.append(_fmt(int(v) if digits == 0 and isinstance(v, (int, float)) else v, digits))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pick(ev: Dict[str, float], samples: int) -> Dict[str, object]:
    nll = ev.get(f"test_nll_iw{samples}", ev.get("test_nll_exact"))
    return {
        "nll": nll,
        "kl": ev.get("test_kl"),
        "mi": ev.get("test_mi"),
        "au": ev.get("test_active_units"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny smoke test on the embedded grammar (< 30 s)"
    )
    parser.add_argument("--steps", type=int, default=2800, help="training steps, every model")
    parser.add_argument("--samples", type=int, default=20, help="K of the IW bound")
    parser.add_argument("--items", type=int, default=500, help="test sentences for the bounds")
    parser.add_argument("--recon", type=int, default=100, help="endpoint test sentences")
    parser.add_argument("--pairs", type=int, default=20, help="interpolation pairs")
    parser.add_argument("--beam", type=int, default=1, help="beam width for the paths")
    parser.add_argument(
        "--refine",
        type=int,
        default=200,
        help="also score the VAE and AE with codes refined by N gradient steps on log p(x|z0) "
        "(columns 'VAE refine N', 'AE refine N'; 0: only the posterior means)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for all three models (e.g. --set data.max_words=15)",
    )
    parser.add_argument(
        "--vae-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for the VAE only (e.g. --vae-set train.free_bits=0.5)",
    )
    parser.add_argument("--lm-run"), parser.add_argument("--vae-run")
    parser.add_argument("--ae-run")
    parser.add_argument("--out", help="folder for the runs (default: a temporary one)")
    parser.add_argument("--json", dest="json_out", help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.steps, args.samples, args.items = 12, 3, 40
        args.recon, args.pairs, args.refine = 20, 3, min(args.refine, 5)
    work = args.out or tempfile.mkdtemp(prefix="text_real-")
    common = (QUICK if args.quick else []) + [
        f"train.steps={args.steps}",
        f"train.checkpoint_every={args.steps}",
        "train.max_seconds=null",
        *args.set,
    ]
    shared = [
        f"{k}={v}"
        for k in SHARED
        if (v := _recipe_value(VAE_RECIPE, k)) is not None and not isinstance(v, dict)
    ]
    lm_extra = ["data=grammar"] if args.quick else ["data=english"]
    # the KL warm-up over the first half of the budget, whatever the budget
    latent = QUICK_LATENT if args.quick else [f"train.kl_anneal_steps={args.steps // 2}"]
    runs = {
        "LM": args.lm_run
        or train_run(LM_RECIPE, os.path.join(work, "lm"), [*lm_extra, *shared, *common]),
        "VAE": args.vae_run
        or train_run(VAE_RECIPE, os.path.join(work, "vae"), [*common, *latent, *args.vae_set]),
        "AE": args.ae_run
        or train_run(
            VAE_RECIPE, os.path.join(work, "ae"), [*common, *latent, "model.variational=false"]
        ),
    }
    import odepipe

    judge = Judge(runs["LM"])
    results: Dict[str, Dict[str, object]] = {}
    for name, run_dir in runs.items():
        summary = odepipe.Run(run_dir).read_summary()
        row: Dict[str, object] = {
            "run": run_dir,
            "steps": summary.get("steps"),
            "seconds": summary.get("seconds"),
            "tokens_per_s": tokens_per_second(run_dir),
        }
        picked = _pick(bounds(run_dir, args.samples, args.items), args.samples)
        if name == "AE":  # no KL in its loss, q's variance untrained: no bound to read
            picked = {"au": picked["au"]}
        row.update(picked)
        if name != "LM":
            row.update(
                paths_and_endpoints(run_dir, judge, args.pairs, args.recon, args.beam, args.seed)
            )
        results[name] = row
        if name != "LM" and args.refine > 0:
            results[f"{name} refine {args.refine}"] = paths_and_endpoints(
                run_dir, judge, args.pairs, args.recon, args.beam, args.seed, args.refine
            )
    print(table(results, args.samples))
    lm_nll, vae_nll = results["LM"]["nll"], results["VAE"]["nll"]
    if isinstance(lm_nll, float) and isinstance(vae_nll, float):
        print(f"VAE IW NLL / LM NLL = {vae_nll / lm_nll:.4f}")
    for name in ("VAE", "AE"):
        for ex in results[name].get("examples", [])[:1]:  # type: ignore[union-attr]
            print(f"\n{name} path:\n  " + "\n  ".join(ex))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=str)


if __name__ == "__main__":
    main()
