"""Using a trained run: ``odepipe sample`` (draws from the prior) and ``odepipe evaluate``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Optional

import click

from ..errors import OdepipeError
from .group import cli
from .params import DEVICE, MAX_DRAWS, SEED, one_line

if TYPE_CHECKING:
    from ..host import PluginHost


@cli.command()
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A finished run folder (from odepipe run); its kept weights are used (best.pt "
    "with train.keep=best, else checkpoint.pt).",
)
@click.option(
    "-n",
    "n",
    default=5,
    show_default=True,
    type=click.IntRange(1, MAX_DRAWS),
    help=f"Number of draws from the prior (at most {MAX_DRAWS}: a draw of a 200-point "
    f"spiral takes about 40 KB while it is decoded, so 4 GB at the most).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Folder for files the data source writes (series: samples.csv, samples.png).",
)
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the draws.")
@click.option(
    "--device", default="cpu", show_default=True, type=DEVICE, help="cpu, cuda or cuda:N."
)
@click.pass_obj
def sample(
    host: "PluginHost", run_dir: str, n: int, out_dir: Optional[str], seed: int, device: str
) -> None:
    """Decode N draws z0 ~ N(0, I) of a trained run, one printed line per draw."""
    import torch

    from ..errors import CheckpointError
    from ..run.folder import load_run

    _, data, model = load_run(run_dir, device, host=host)
    torch.manual_seed(seed)
    try:
        lines = list(data.sample(model, n, out_dir))
    except OSError as exc:
        raise CheckpointError(
            f"cannot write the samples into {out_dir}: "
            f"{exc.strerror or exc}; choose a writable --out"
        ) from None
    except (MemoryError, RuntimeError) as exc:
        if not isinstance(exc, MemoryError) and "memory" not in str(exc):
            raise
        raise OdepipeError(
            f"-n {n}: the draws do not fit in memory ({one_line(exc)[:120]}); ask for fewer "
            f"draws, e.g. -n {max(1, n // 10)}"
        ) from None
    for line in lines:
        click.echo(line)


@cli.command("evaluate")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--split", default="test", show_default=True, help="The split to evaluate.")
@click.option(
    "--samples",
    "-k",
    default=100,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Posterior samples per item for the sampled ELBO and the importance-weighted bound.",
)
@click.option("--items", type=click.IntRange(min=1), help="Only the first N items of the split.")
@click.option(
    "--batch-size",
    default=100,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Items per evaluation batch (the mutual information's aggregate posterior "
    "is estimated within a batch).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=SEED,
    help="Seed of the posterior samples.",
)
@click.option(
    "--device", default="cpu", show_default=True, type=DEVICE, help="cpu, cuda or cuda:N."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def evaluate(
    host: "PluginHost",
    run_dir: str,
    split: str,
    samples: int,
    items: Optional[int],
    batch_size: int,
    seed: int,
    device: str,
    as_json: bool,
) -> None:
    """Evaluate the run in RUN_DIR on a split: bounds computed as bounds (the ELBO with z0
    sampled, the importance-weighted NLL with K samples), KL, mutual information, active units,
    the reconstruction at the posterior mean under its own name, perplexities from the bound
    for text, and the data source's own metrics (series: reconstruction and extrapolation).

    \b
    odepipe evaluate runs/text_vae-20261201-101500 --samples 100
    odepipe evaluate runs/spiral-20261201-101500 --json
    """
    import torch

    from ..errors import DataError
    from ..run.bounds import evaluate_bounds
    from ..run.evaluate import evaluate as at_posterior_mean
    from ..run.folder import load_run
    from ..run.memory import keep_memory_on

    recipe, data, model = load_run(run_dir, device, host=host, with_data=True)
    if split not in data.splits:
        raise DataError(
            f"--split {split}: the run's data source has the splits {', '.join(data.splits)}"
        )
    target = torch.device(device)
    # K samples per item build tensors K times a training batch's; keeping freed memory saves
    # their page faults as it does in training (docs/text.md, "Measured (round 6)").
    keep_memory_on(target, recipe.train.keep_memory)
    metrics = at_posterior_mean(model, data, target, batch_size, items, split=split)
    metrics.update(
        evaluate_bounds(
            model, data, target, batch_size, split=split, samples=samples, limit=items, seed=seed
        )
    )
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    width = max(len(k) for k in metrics)
    how = (
        "exact log-likelihood (no latent path)"
        if model.latent_free
        else f"{samples} posterior samples per item"
    )
    click.echo(f"{run_dir}: {split} split, {how}")
    for key, value in metrics.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        click.echo(f"  {key:<{width}}  {shown}")
