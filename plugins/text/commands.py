"""``odepipe interpolate-sentences`` (walk between two sentences in a text VAE's latent space)
and ``odepipe models`` (where the default sentence model is, and its state).

Imported for every command line, so nothing heavy at module top: torch and the model code are
imported inside the commands. Without ``--run`` interpolate-sentences uses the default model
shipped in the package, trained on real English (:mod:`.default_model`), so the first call
answers in seconds. What a run must offer is declared (:class:`odepipe.SentenceSource`,
:class:`odepipe.TokenDecoder`) and checked with isinstance.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Optional

import click

import odepipe

MAX_CHARS = 2000


def _check_text(name: str, text: str) -> None:
    if not text.strip():
        raise odepipe.DataError(
            f"sentence {name} is empty; give some words, e.g. "
            f'odepipe interpolate-sentences "the old man walked to the '
            f'river" "a young girl sang in the garden"'
        )
    if len(text) > MAX_CHARS:
        raise odepipe.DataError(
            f"sentence {name} is {len(text)} characters long; give one "
            f"sentence (at most {MAX_CHARS} characters)"
        )


@click.command("interpolate-sentences")
@click.argument("a")
@click.argument("b")
@click.option(
    "--steps",
    default=8,
    show_default=True,
    type=click.IntRange(1, 200),
    help="Points strictly between the two sentences.",
)
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False),
    help="A text run folder (from odepipe run); default: the shipped default model "
    "(see odepipe models).",
)
@click.option(
    "--method",
    type=click.Choice(["linear", "slerp"]),
    default="linear",
    show_default=True,
    help="Straight line or great-circle path between the codes.",
)
@click.option(
    "--beam",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Beam width for decoding each point; 1 decodes greedily.",
)
@click.option(
    "--refine",
    default=0,
    show_default=True,
    type=click.IntRange(0, 10_000),
    help="Gradient steps that fit each sentence's code to it before the walk (endpoints "
    "that come back; each step runs the decoder forward and backward once, so 100 cost "
    "seconds on a CPU); 0 walks between the posterior means.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def interpolate_sentences(
    host: odepipe.PluginHost,
    a: str,
    b: str,
    steps: int,
    run_dir: Optional[str],
    method: str,
    beam: int,
    refine: int,
    as_json: bool,
) -> None:
    """Decode the path between sentences A and B in a sentence VAE's latent space.

    Both sentences are encoded to their posterior means (with --refine N, then fitted to the
    sentences by N gradient steps on log p(x|z0)); STEPS points between them (and the two
    endpoints, i.e. the model's own reconstructions of A and B) are decoded through the latent
    ODE, greedily or with --beam N. A sentence longer than the model reads is cut, with a
    warning. Without --run the default model shipped with odepipe (real English, see odepipe
    models) is used; with a run of the embedded grammar, sentences it rejects are marked *.

    \b
    odepipe interpolate-sentences "the old man walked to the river" "a young girl sang"
    odepipe interpolate-sentences "..." "..." --run runs/text_vae-... --method slerp --beam 4 --json
    odepipe interpolate-sentences "The king went up to the city." "She wept." --refine 100
    """
    _check_text("A", a)
    _check_text("B", b)
    if run_dir is None:
        from . import default_model

        run_dir = default_model.require()
    _, data, model = odepipe.load_run(run_dir, host=host)
    where = f"the run in {run_dir}"
    source = odepipe.require_capability(
        data,
        odepipe.SentenceSource,
        where=where,
        role="data source",
        command="interpolate-sentences",
        fix="give a run of the grammar, text or hf data sources",
    )
    odepipe.require_capability(
        model.decoder,
        odepipe.BeamSearchDecoder if beam > 1 else odepipe.TokenDecoder,
        where=where,
        role="decoder",
        command="interpolate-sentences" + (f" --beam {beam}" if beam > 1 else ""),
        fix="give a run whose decoder.type is text_gru or text_lstm"
        + (", or use --beam 1" if beam > 1 else ""),
    )
    extra = {}
    if refine:
        if "refine" not in inspect.signature(source.interpolate).parameters:
            raise odepipe.DataError(
                f"--refine: {type(data).__name__}.interpolate of {where} takes no refine "
                f"argument; use --refine 0 (or add refine: int = 0 to it)"
            )
        extra["refine"] = refine
    path = source.interpolate(model, a, b, steps=steps, method=method, beam=beam, **extra)
    if isinstance(data, odepipe.GrammaticalityJudge):
        for point in path:
            point["grammatical"] = bool(data.grammatical(point["sentence"]))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "a": a,
                    "b": b,
                    "method": method,
                    "steps": steps,
                    "beam": beam,
                    "refine": refine,
                    "run": os.path.abspath(run_dir),
                    "path": path,
                },
                indent=2,
            )
        )
        return
    width = len(str(len(path) - 1))
    click.echo(f"{'':>{width}}  A: {a.strip()}")
    for i, point in enumerate(path):
        end = " (A)" if i == 0 else " (B)" if i == len(path) - 1 else "    "
        star = "*" if point.get("grammatical") is False else " "
        click.echo(f"{i:>{width}}{end} {star}{point['sentence']}")
    click.echo(f"{'':>{width}}  B: {b.strip()}")
    if any(p.get("grammatical") is False for p in path):
        click.echo("(* = not accepted by the embedded grammar)", err=True)


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--path", "path_only", is_flag=True, help="Print only the default model's folder.")
def models(as_json: bool, path_only: bool) -> None:
    """Where the default sentence model is and its state: shipped (inside the package),
    user-trained (in the cache, used first) or missing. Any command that takes a run folder
    accepts it:

    \b
    odepipe sample --run "$(odepipe models --path)" -n 5
    odepipe evaluate "$(odepipe models --path)"      # reads the corpus: odepipe[english]
    odepipe run sentences_default --out ~/.cache/odepipe/models/sentences_default  # retrain
    """
    from . import default_model

    info = default_model.describe()
    if path_only:
        click.echo(info["path"])
        return
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{info['name']}  ({info['kind']})")
    click.echo(f"  state:   {info['state']}")
    click.echo(f"  folder:  {info['path']}")
    click.echo(f"  recipe:  {info['recipe']} (odepipe run {info['recipe']} reproduces it)")
    if info["state"] != "user-trained":
        click.echo(f"  a model trained into {info['user_path']} replaces it")
    for key, value in info["figures"].items():
        click.echo(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    if info["state"] == "missing":
        click.echo(
            "  train it: pip install 'odepipe[english]' && odepipe run sentences_default "
            f"--out {info['user_path']}"
        )
    else:
        click.echo(f'  use it:  odepipe sample --run "{info["path"]}" -n 5')
