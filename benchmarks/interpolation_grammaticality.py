"""Are the sentences between two encodings grammatical? VAE versus plain autoencoder.

Reproduces the interpolation experiment of Bowman et al. (2016) on odepipe's embedded English
grammar, where grammaticality can be decided exactly by the grammar's own recognizer. Trains
recipes/text_vae.yaml and recipes/text_ae.yaml (the same network with model.variational=false)
with the same step budget, then walks between 100 random pairs of held-out test sentences
with 8 intermediate points each and prints, side by side:

- the share of intermediate sentences the grammar accepts,
- the mean number of distinct sentences among the 8 intermediate points of a path,
- test perplexity per token and the test KL per sentence.

    python benchmarks/interpolation_grammaticality.py                 # trains both (~6 min)
    python benchmarks/interpolation_grammaticality.py --vae-run DIR --ae-run DIR   # reuse runs
    python benchmarks/interpolation_grammaticality.py --vae-run DIR --ae-run DIR --beam 4
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time

import torch


def train_run(recipe: str, out: str, overrides) -> str:
    import odepipe

    # the same step budget for both, whatever the machine's load: no wall-clock cut-off
    parsed = odepipe.load_recipe(recipe, ["train.max_seconds=null", *overrides])
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()
    odepipe.train(parsed, out, progress=sys.stderr.isatty())
    print(f"trained {recipe} in {time.perf_counter() - started:.0f} s -> {out}", file=sys.stderr)
    return out


def score(run_dir: str, pairs: int, steps: int, seed: int, method: str, beam: int) -> dict:
    import odepipe
    from odepipe_plugins.text.grammar import default_grammar

    # load_run refuses a run whose tokenizer is not the one recorded in its summary.json
    _, data, model = odepipe.load_run(run_dir)
    summary = odepipe.Run(run_dir).read_summary()
    grammar = default_grammar()
    test = data.sentences["test"]
    rng = random.Random(seed)
    accepted = total = distinct = 0
    exact_ends = 0
    examples = []
    for _ in range(pairs):
        a, b = rng.sample(test, 2)
        path = data.interpolate(model, a, b, steps=steps, method=method, beam=beam)
        inner = [p["sentence"] for p in path[1:-1]]
        accepted += sum(grammar.accepts(s) for s in inner)
        total += len(inner)
        distinct += len(set(inner))
        exact_ends += (path[0]["sentence"] == a) + (path[-1]["sentence"] == b)
        if len(examples) < 2:
            examples.append([a] + [p["sentence"] for p in path] + [b])
    return {"grammatical": accepted / total, "distinct_per_path": distinct / pairs,
            "endpoint_exact": exact_ends / (2 * pairs),
            "test_perplexity": summary.get("test_perplexity"),
            "test_kl": summary.get("test_kl"), "test_nll_per_sentence":
                summary.get("test_nll_per_sentence"),
            "test_active_units": summary.get("test_active_units"),
            "train_seconds": summary.get("seconds"), "steps": summary.get("steps"),
            "examples": examples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae-run", help="reuse a trained text_vae run folder")
    parser.add_argument("--ae-run", help="reuse a trained text_ae run folder")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--method", default="linear", choices=["linear", "slerp"])
    parser.add_argument("--beam", type=int, default=1, help="beam width (1: greedy decoding)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("overrides", nargs="*", help="recipe overrides for both, e.g. train.steps=500")
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = tempfile.mkdtemp(prefix="odepipe-interp-")
    vae = args.vae_run or train_run("recipes/text_vae.yaml", os.path.join(work, "vae"),
                                    args.overrides)
    ae = args.ae_run or train_run("recipes/text_ae.yaml", os.path.join(work, "ae"),
                                  args.overrides)
    results = {name: score(run, args.pairs, args.steps, args.seed, args.method, args.beam)
               for name, run in (("vae", vae), ("ae", ae))}
    rows = [("grammatical intermediate sentences", "grammatical", "{:.1%}"),
            ("distinct sentences per path (of 8)", "distinct_per_path", "{:.2f}"),
            ("endpoints reconstructed exactly", "endpoint_exact", "{:.1%}"),
            ("test perplexity per token", "test_perplexity", "{:.3f}"),
            ("test NLL per sentence (nats)", "test_nll_per_sentence", "{:.2f}"),
            ("test KL per sentence (nats)", "test_kl", "{:.2f}"),
            ("active units", "test_active_units", "{}"),
            ("training steps / seconds", None, None)]
    decoding = "greedy" if args.beam == 1 else f"beam {args.beam}"
    print(f"{args.pairs} pairs of test sentences x {args.steps} intermediate points "
          f"({args.method}, {decoding})")
    print(f"{'':38}{'VAE':>12}{'AE':>12}")
    for label, key, fmt in rows:
        if key is None:
            cells = [f"{r['steps']} / {r['train_seconds']:.0f}" for r in results.values()]
        else:
            cells = [fmt.format(r[key]) if r[key] is not None else "-" for r in results.values()]
        print(f"{label:38}{cells[0]:>12}{cells[1]:>12}")
    for name, r in results.items():
        print(f"\n{name.upper()} example path:")
        for line in r["examples"][0]:
            print(f"  {line}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
