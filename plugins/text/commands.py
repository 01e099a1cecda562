"""``odepipe interpolate-sentences``: walk between two sentences in a text VAE's latent space.

Imported for every command line, so nothing heavy at module top: torch and
the model code are imported inside the command. Without ``--run`` the command uses a default
model trained on the embedded English corpus, trained once on first use (with a progress bar)
and cached under ``$ODEPIPE_CACHE`` or ``~/.cache/odepipe``. What a run must offer is declared
(:class:`odepipe.SentenceSource`, :class:`odepipe.TokenDecoder`) and checked with isinstance.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Optional

import click

import odepipe

DEFAULT_RECIPE = "text_vae"
#: overrides applied to the default recipe (tests shrink it; part of the cache key)
DEFAULT_OVERRIDES: tuple = ()
MAX_CHARS = 2000


def default_model_dir() -> str:
    """Where the default model lives: keyed by odepipe's version, the shipped recipe's text and
    the grammar's rules and words, so an upgrade that changes any of them trains a fresh model
    instead of loading a stale one (whose tokenizer would no longer match the corpus)."""
    import importlib.resources

    recipes = importlib.resources.files("odepipe.recipes")
    text = recipes.joinpath(DEFAULT_RECIPE + ".yaml").read_text()
    from .cache import cache_root  # torch-free, like the grammar
    from .grammar import lexicon, rules  # a changed grammar is a changed corpus

    grammar = repr((sorted(lexicon().items()), rules()))
    key = hashlib.sha256(f"{odepipe.__version__}\n{text}\n{DEFAULT_OVERRIDES}\n{grammar}"
                         .encode()).hexdigest()[:12]
    return os.path.join(cache_root(), "models", f"{DEFAULT_RECIPE}-{key}")


def _is_run(path: str) -> bool:
    return odepipe.Run(path).is_complete()


def ensure_default_model(host: odepipe.PluginHost, progress: bool = True) -> str:
    """The default model's run folder, training it first if the cache has none. A lock file
    keeps two first calls from training twice; training goes to a temporary folder that is
    renamed into place only when complete, so an interrupted first call leaves no half model."""
    target = default_model_dir()
    if _is_run(target):
        return target
    import fcntl

    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_run(target):  # another process trained it while we waited
            return target
        recipe = odepipe.load_recipe(DEFAULT_RECIPE, list(DEFAULT_OVERRIDES), host=host)
        tmp = f"{target}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        click.echo(f"odepipe: training the default sentence model on the embedded English "
                   f"corpus (first use only, a few minutes); it will be cached in {target}",
                   err=True)
        try:
            odepipe.train(recipe, tmp, progress=progress)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def _check_text(name: str, text: str) -> None:
    if not text.strip():
        raise odepipe.DataError(f"sentence {name} is empty; give some words, e.g. "
                                f"odepipe interpolate-sentences \"the old man walked to the "
                                f"river\" \"a young girl sang in the garden\"")
    if len(text) > MAX_CHARS:
        raise odepipe.DataError(f"sentence {name} is {len(text)} characters long; give one "
                                f"sentence (at most {MAX_CHARS} characters)")


@click.command("interpolate-sentences")
@click.argument("a")
@click.argument("b")
@click.option("--steps", default=8, show_default=True, type=click.IntRange(1, 200),
              help="Points strictly between the two sentences.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="A text run folder (from odepipe run); default: the cached default model.")
@click.option("--method", type=click.Choice(["linear", "slerp"]), default="linear",
              show_default=True, help="Straight line or great-circle path between the codes.")
@click.option("--beam", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Beam width for decoding each point; 1 decodes greedily.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar when training the default.")
@click.pass_obj
def interpolate_sentences(host: odepipe.PluginHost, a: str, b: str, steps: int,
                          run_dir: Optional[str], method: str, beam: int, as_json: bool,
                          quiet: bool) -> None:
    """Decode the path between sentences A and B in a sentence VAE's latent space.

    Both sentences are encoded to their posterior means; STEPS points between them (and the two
    endpoints, i.e. the model's own reconstructions of A and B) are decoded through the latent
    ODE, greedily or with --beam N. A sentence longer than the model reads is cut, with a
    warning. With the default model, sentences the embedded grammar rejects are marked *.

    \b
    odepipe interpolate-sentences "the old man walked to the river" "a young girl sang in the garden"
    odepipe interpolate-sentences "..." "..." --run runs/text_vae-... --method slerp --beam 4 --json
    """
    _check_text("A", a)
    _check_text("B", b)
    if run_dir is None:
        run_dir = ensure_default_model(host, progress=not quiet)
    _, data, model = odepipe.load_run(run_dir, host=host)
    where = f"the run in {run_dir}"
    source = odepipe.require_capability(
        data, odepipe.SentenceSource, where=where, role="data source",
        command="interpolate-sentences", fix="give a run of the grammar, text or hf data sources")
    odepipe.require_capability(
        model.decoder, odepipe.BeamSearchDecoder if beam > 1 else odepipe.TokenDecoder,
        where=where, role="decoder",
        command="interpolate-sentences" + (f" --beam {beam}" if beam > 1 else ""),
        fix="give a run whose decoder.type is text_gru or text_lstm"
            + (", or use --beam 1" if beam > 1 else ""))
    path = source.interpolate(model, a, b, steps=steps, method=method, beam=beam)
    if isinstance(data, odepipe.GrammaticalityJudge):
        for point in path:
            point["grammatical"] = bool(data.grammatical(point["sentence"]))
    if as_json:
        click.echo(json.dumps({"a": a, "b": b, "method": method, "steps": steps, "beam": beam,
                               "run": os.path.abspath(run_dir), "path": path}, indent=2))
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

