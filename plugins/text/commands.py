"""``odepipe interpolate-sentences``: walk between two sentences in a text VAE's latent space.

Imported for every command line, so nothing heavy at module top: torch and
the model code are imported inside the command. Without ``--run`` the command uses a default
model trained on the embedded English corpus, trained once on first use (with a progress bar)
and cached under ``$ODEPIPE_CACHE`` or ``~/.cache/odepipe``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any, Optional

import click

import odepipe

DEFAULT_RECIPE = "text_vae"
#: overrides applied to the default recipe (tests shrink it; part of the cache key)
DEFAULT_OVERRIDES: tuple = ()
MAX_CHARS = 2000


def _cache_root() -> str:
    return os.environ.get("ODEPIPE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                           "odepipe")


def default_model_dir() -> str:
    """Where the default model lives: keyed by odepipe's version, the shipped recipe's text and
    the grammar's rules and words, so an upgrade that changes any of them trains a fresh model
    instead of loading a stale one (whose tokenizer would no longer match the corpus)."""
    import importlib.resources

    text = importlib.resources.files("odepipe.recipes").joinpath(DEFAULT_RECIPE + ".yaml").read_text()
    from .grammar import lexicon, rules  # torch-free; a changed grammar is a changed corpus

    grammar = repr((sorted(lexicon().items()), rules()))
    key = hashlib.sha256(f"{odepipe.__version__}\n{text}\n{DEFAULT_OVERRIDES}\n{grammar}"
                         .encode()).hexdigest()[:12]
    return os.path.join(_cache_root(), "models", f"{DEFAULT_RECIPE}-{key}")


def _is_run(path: str) -> bool:
    return all(os.path.isfile(os.path.join(path, f))
               for f in ("recipe.yaml", "checkpoint.pt", "summary.json"))


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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar when training the default.")
@click.pass_obj
def interpolate_sentences(host: odepipe.PluginHost, a: str, b: str, steps: int, run_dir: Optional[str], method: str,
                          as_json: bool, quiet: bool) -> None:
    """Decode the path between sentences A and B in a sentence VAE's latent space.

    Both sentences are encoded to their posterior means; STEPS points between them (and the two
    endpoints, i.e. the model's own reconstructions of A and B) are decoded greedily through
    the latent ODE. With the default model, sentences the embedded grammar rejects are marked *.

    \b
    odepipe interpolate-sentences "the old man walked to the river" "a young girl sang in the garden"
    odepipe interpolate-sentences "..." "..." --run runs/text_vae-... --method slerp --json
    """
    _check_text("A", a)
    _check_text("B", b)
    if run_dir is None:
        run_dir = ensure_default_model(host, progress=not quiet)
    _, data, model = odepipe.load_run(run_dir, host=host)
    if not callable(getattr(data, "interpolate", None)):
        raise odepipe.DataError(f"the run in {run_dir} uses data source {type(data).__name__}, "
                                f"which is not text; interpolate-sentences needs a run of the "
                                f"grammar, text or hf data sources")
    path = data.interpolate(model, a, b, steps=steps, method=method)
    judge: Any = getattr(data, "grammatical", None)
    for point in path:
        if callable(judge):
            point["grammatical"] = bool(judge(point["sentence"]))
    if as_json:
        click.echo(json.dumps({"a": a, "b": b, "method": method, "steps": steps,
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

