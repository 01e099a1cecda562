"""Turns a finished text run into the default model the package ships:
``python -m odepipe_plugins.text.ship RUN_DIR [DEST]``.

Why a copy and not the run itself: a run's checkpoint.pt also holds the optimizer's moments
and RNG states (three times the weights), needed to resume but not to decode. The shipped
folder keeps what loading needs (recipe.yaml, summary.json, the tokenizer in data/) and a
checkpoint.pt with the model's weights only, as float16 (``load_state_dict`` copies them into
the float32 parameters), which halves it again. It is still a run folder: ``odepipe.load_run``,
``interpolate-sentences --run``, ``sample --run`` and ``evaluate`` read it unchanged.
"""

from __future__ import annotations

import argparse
import os
import shutil
from typing import Dict

FILES = ("recipe.yaml", "summary.json")


def ship(run_dir: str, dest: str) -> Dict[str, int]:
    """Writes the slim copy of ``run_dir`` into ``dest`` (replaced); returns file sizes."""
    import torch

    import odepipe

    run = odepipe.Run(run_dir)
    if not run.is_complete():
        raise odepipe.CheckpointError(
            f"{run_dir} is not a finished run (recipe, checkpoint and summary.json are needed)"
        )
    recipe, _, model = odepipe.load_run(run_dir)  # checks the weights fit the recipe
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(os.path.join(dest, "data"))
    for name in FILES:
        shutil.copyfile(os.path.join(run_dir, name), os.path.join(dest, name))
    for name in os.listdir(os.path.join(run_dir, "data")):
        shutil.copyfile(os.path.join(run_dir, "data", name), os.path.join(dest, "data", name))
    weights = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(
        {"format": 1, "model": weights, "name": recipe.name}, os.path.join(dest, "checkpoint.pt")
    )
    odepipe.load_run(dest)  # the copy loads as a run
    sizes = {}
    for root, _, files in os.walk(dest):
        for f in files:
            path = os.path.join(root, f)
            sizes[os.path.relpath(path, dest)] = os.path.getsize(path)
    return sizes


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument(
        "dest", nargs="?", default=os.path.join(here, "pretrained", "sentences_default")
    )
    args = parser.parse_args()
    sizes = ship(args.run_dir, args.dest)
    for name, size in sorted(sizes.items()):
        print(f"{size / 1e6:8.2f} MB  {name}")
    print(f"{sum(sizes.values()) / 1e6:8.2f} MB  in {args.dest}")


if __name__ == "__main__":
    main()
