"""``odepipe run`` and ``odepipe validate``: a recipe trained into a run folder, or checked."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

import click

from ..errors import OdepipeError
from .group import cli
from .params import ListsRecipes

if TYPE_CHECKING:
    from ..host import PluginHost


@cli.command(cls=ListsRecipes, context_settings={"ignore_unknown_options": True})
@click.argument("recipe", required=False)
@click.argument("overrides", nargs=-1)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    help="Run folder (default runs/<recipe>[-<changed components>]-<time>).",
)
@click.option("--device", help="Shorthand for train.device=... (auto, cpu, cuda).")
@click.option(
    "--resume",
    "resume",
    type=click.Path(file_okay=False),
    help="Continue the run in this folder from its checkpoint (train.* overrides "
    "allowed; they are recorded in its recipe.yaml).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing run folder at --out (never a folder holding other "
    "files; the old run is deleted once the new one has its first checkpoint).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
def run(
    host: "PluginHost",
    recipe: Optional[str],
    overrides: Sequence[str],
    out: Optional[str],
    device: Optional[str],
    resume: Optional[str],
    overwrite: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Train, evaluate and save a run of RECIPE (a path or a shipped recipe's name).

    OVERRIDES are KEY=VALUE pairs such as train.steps=100 solver.adjoint=true, or encoder=lstm
    to switch a component's type. With --resume DIR the recipe defaults to DIR/recipe.yaml.
    Ends with a short summary (--json: the whole summary.json).
    """
    from ..recipe import load_recipe
    from ..run import distributed
    from ..run.create import missing_folders, remove_if_empty
    from ..run.folder import Run
    from ..run.report import describe, stop_reason
    from ..run.train import pick_device, train

    overrides = list(overrides)
    if recipe and "=" in recipe:  # `odepipe run --resume DIR train.steps=10`
        overrides.insert(0, recipe)
        recipe = None
    if resume:
        if not Run(resume).has_checkpoint():
            raise click.UsageError(f"--resume {resume}: no {Run.CHECKPOINT} in that folder")
        recipe = recipe or Run(resume).recipe_path
    if not recipe:
        raise click.UsageError("give a RECIPE (a path or a shipped name), or --resume DIR")
    if device:
        overrides.append(f"train.device={device}")
    untrusted = [resume, os.getcwd()] if resume else None  # a run folder's own plugins: list
    parsed = load_recipe(recipe, overrides, host=host, untrusted=untrusted)
    # under torchrun, rank 0 alone creates the folder and tells the others its name
    distributed.setup(distributed.local_device(pick_device(parsed.train.device)))
    try:
        target = out or Run.default_path(parsed.name, _changed_components(overrides))
        made = [] if resume else missing_folders(target)
        try:
            folder = _run_folder(target, resume, overwrite)
        except OdepipeError:
            remove_if_empty(made)
            raise
        if distributed.is_main():
            click.echo(f"odepipe: run folder {folder.path}", err=True)
        try:
            summary = train(parsed, folder, resume=bool(resume), progress=not quiet)
        except BaseException:  # a failed new run leaves no empty folder, and keeps a replaced one
            if not resume and distributed.is_main():
                folder.discard_if_unused()
                remove_if_empty(made)  # and runs/ when this run made it
            raise
        main_rank = distributed.is_main()
    finally:
        distributed.teardown()
    if not main_rank:
        return
    if as_json:
        if summary.get("stopped_because") == "max_seconds":
            click.echo(
                f"odepipe: {stop_reason(summary, parsed.train.max_seconds)} at step "
                f"{summary['steps']} of {summary['steps_planned']}",
                err=True,
            )
        click.echo(json.dumps(summary, indent=2))
        return
    for line in describe(summary, folder, parsed.train.max_seconds):
        click.echo(line)


def _changed_components(overrides: Sequence[str]) -> List[str]:
    """The component types switched by ``section=type`` overrides, for the default run name."""
    from ..recipe import COMPONENT_SECTIONS

    changed = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() in COMPONENT_SECTIONS and value.strip():
            changed.append(value.strip())
    return changed


def _run_folder(target: str, resume: Optional[str], overwrite: bool) -> Any:
    """The run's folder: rank 0 creates it (or opens the resumed one) and tells the others its
    path, or the error that every rank then raises."""
    from ..errors import CheckpointError
    from ..run import distributed
    from ..run.folder import Run

    if resume:
        return Run(resume)
    folder, error = None, None
    if distributed.is_main():
        try:
            folder = Run.create(target, overwrite)
        except OdepipeError as exc:
            error = str(exc)
    path, error = distributed.broadcast_object((folder.path if folder else None, error))
    if error:
        raise CheckpointError(error)
    return folder if folder is not None else Run(path)


@cli.command()
@click.argument("recipe")
@click.argument("overrides", nargs=-1)
@click.pass_obj
def validate(host: "PluginHost", recipe: str, overrides: Sequence[str]) -> None:
    """Check RECIPE (and OVERRIDES) without training: every problem at once, exit 2 if any."""
    from ..recipe import load_recipe
    from ..run.build import build

    parsed = load_recipe(recipe, list(overrides), host=host)
    build(parsed)
    click.echo(f"{parsed.source}: ok")
