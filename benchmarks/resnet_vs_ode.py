"""ResNet vs Neural ODE: time per training step and peak memory against depth K.

    nice -n 5 python benchmarks/resnet_vs_ode.py                      # K = 10 30 100 300 1000
    nice -n 5 python benchmarks/resnet_vs_ode.py --layers 10,100 --steps 2

Same as ``odepipe compare``. Each (method, K) gets a fresh process for its memory figure; the
three methods at one K are timed in one process, stepping in turn, one torch thread. The
measurement itself lives in ``odepipe_plugins/depth/compare.py`` (its docstring says how memory
is measured and why).
"""
from __future__ import annotations

import argparse
import json
import os

from odepipe_plugins.depth.compare import DEFAULT_LAYERS, METHODS, compare, plot, table

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default=",".join(map(str, DEFAULT_LAYERS)),
                        help="comma-separated K values")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per method and K")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--plot", default=os.path.join(HERE, "results", "resnet_vs_ode.png"))
    parser.add_argument("--json", default=os.path.join(HERE, "results", "resnet_vs_ode.json"))
    args = parser.parse_args()
    rows = compare([int(k) for k in args.layers.split(",")], args.methods.split(","),
                   steps=args.steps, batch_size=args.batch_size, latent_dim=args.latent_dim,
                   hidden_size=args.hidden_size)
    print(table(rows))
    print(f"plot: {plot(rows, args.plot)}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=1)
    print(f"rows: {args.json}")


if __name__ == "__main__":
    main()
