"""The ``odepipe`` command line (click): odepipe's own commands, plus the commands the plugin
host collected, attached by :func:`make_cli`. The only click module of the core. Torch and
friends are imported inside commands only.

One plugin host per process: :func:`main` builds it and hands it to every command as click's
context object (``ctx.obj``); a command invoked on the bare :data:`cli` group (as tests do)
gets one built for that invocation.

Any :class:`odepipe.OdepipeError` (a user's mistake) becomes a message on stderr and exit code
2, without a traceback; ``odepipe --traceback ...`` shows it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

import click

from .errors import OdepipeError

if TYPE_CHECKING:
    from .host import PluginHost


class OdepipeGroup(click.Group):
    """Turns user errors into exit code 2 with a message, unless --traceback was given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OdepipeError as exc:
            if ctx.meta.get("odepipe.traceback") or os.environ.get("ODEPIPE_TRACEBACK"):
                import traceback

                traceback.print_exc()  # the same exit code as without --traceback
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(getattr(exc, "exit_code", 2))
        except KeyboardInterrupt as exc:
            click.echo(f"\n{exc or 'interrupted'}", err=True)
            ctx.exit(130)


def _format_warning(message, category, filename, lineno, line=None):  # noqa: ANN001
    from .plugin_report import PluginWarning

    if issubclass(category, PluginWarning):
        return f"{message}\n"
    return _original_format(message, category, filename, lineno, line)


_original_format = warnings.formatwarning
warnings.formatwarning = _format_warning


@click.group(cls=OdepipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--traceback", is_flag=True, help="Show full tracebacks for errors.")
@click.option(
    "--allow-plugins",
    is_flag=True,
    help="Let a run folder you load (--run, --resume) import the local modules its "
    "recipe names under plugins: (only installed ones otherwise).",
)
@click.version_option(package_name="odepipe")
@click.pass_context
def cli(ctx: click.Context, traceback: bool, allow_plugins: bool) -> None:
    """odepipe: latent Neural ODE models from a recipe.

    \b
    odepipe run spiral                      train the shipped spiral recipe
    odepipe run my.yaml train.steps=100     a recipe file with an override
    odepipe ls                              list components and their plugins
    """
    ctx.meta["odepipe.traceback"] = traceback
    if ctx.obj is None:
        ctx.obj = new_host()
    ctx.obj.allow_local_plugins = allow_plugins
    if traceback and ctx.obj.skipped():  # where each skipped plugin failed, in its own code
        from .plugin_report import traceback_report

        click.echo(traceback_report(ctx.obj.skipped()), err=True, nl=False)


def new_host() -> "PluginHost":
    """The process's plugin host: built-ins and entry points, refusing plugin commands that
    would replace odepipe's own."""
    from .host import PluginHost

    return PluginHost(reserved_commands=tuple(cli.commands))


#: the most draws ``odepipe sample -n`` decodes in one call
MAX_DRAWS = 100_000
#: a seed torch and numpy accept (the recipe's ``seed`` range)
SEED = click.IntRange(0, 2**32 - 1)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class DeviceType(click.ParamType):
    """``cpu``, ``cuda`` or ``cuda:N``, checked against this machine before a run is loaded."""

    name = "device"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Any) -> str:
        text = str(value).strip()
        index = text[5:] if text.startswith("cuda:") else ""
        if not (text in ("cpu", "cuda") or index.isascii() and index.isdigit() and len(index) < 6):
            self.fail(f"{text!r} is not one of cpu, cuda, cuda:N", param, ctx)
        if text.startswith("cuda"):
            import torch

            count = torch.cuda.device_count()
            if count == 0:
                self.fail(f"{text}: no CUDA device is available here; use cpu", param, ctx)
            if index and int(index) >= count:
                self.fail(
                    f"{text}: this machine has {count} CUDA device(s), cuda:0 to "
                    f"cuda:{count - 1}; use cuda:0",
                    param,
                    ctx,
                )
        return text


DEVICE = DeviceType()


class ListsRecipes(click.Command):
    """A command whose help ends with the shipped recipes' names (read when help is shown)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from .recipe import shipped_recipes

        formatter.write_paragraph()
        formatter.write_text(f"Shipped recipes: {', '.join(shipped_recipes())}.")
        super().format_epilog(ctx, formatter)


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
    from .recipe import load_recipe
    from .run import distributed
    from .run.create import missing_folders, remove_if_empty
    from .run.folder import Run
    from .run.report import describe, stop_reason
    from .run.train import pick_device, train

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
    from .recipe import COMPONENT_SECTIONS

    changed = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() in COMPONENT_SECTIONS and value.strip():
            changed.append(value.strip())
    return changed


def _run_folder(target: str, resume: Optional[str], overwrite: bool) -> Any:
    """The run's folder: rank 0 creates it (or opens the resumed one) and tells the others its
    path, or the error that every rank then raises."""
    from .errors import CheckpointError
    from .run import distributed
    from .run.folder import Run

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
    from .recipe import load_recipe
    from .run.build import build

    parsed = load_recipe(recipe, list(overrides), host=host)
    build(parsed)
    click.echo(f"{parsed.source}: ok")


@cli.command("ls")
@click.argument("kind", required=False)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def ls(host: "PluginHost", kind: Optional[str], name: Optional[str], as_json: bool) -> None:
    """List registered components (of one KIND) with the plugin that gave each; with NAME, that
    component's parameters (types, defaults, docs); `ls recipes`, the recipes you can run.

    KIND is one of encoders, dynamics, solvers, decoders, data_sources (or a recipe section:
    encoder, dynamics, solver, decoder, data), or recipes.
    """
    from .registry import KINDS, did_you_mean

    if kind == "recipes":
        from .recipe import shipped_recipes

        rows = [(n, "shipped") for n in shipped_recipes()]
        rows += [(n, f"plugin {p}") for n, p in sorted(host.recipes().items())]
        if as_json:
            click.echo(json.dumps([{"name": n, "from": f} for n, f in rows], indent=2))
            return
        width = max(len(n) for n, _ in rows)
        for n, origin in rows:
            click.echo(f"  {n:<{width}}  {origin}")
        return
    aliases = {section: k for k, (_, section) in KINDS.items()}
    if kind is not None:
        kind = aliases.get(kind, kind)
        if kind not in KINDS:
            valid = list(KINDS) + list(aliases)
            raise click.BadParameter(
                f"unknown kind {kind!r}{did_you_mean(kind, valid)}; valid: {', '.join(KINDS)}",
                param_hint="KIND",
            )
    if kind is not None and name is not None:
        from .describe import describe

        click.echo(describe(host.registries[kind].get(name, key=f"{KINDS[kind][1]}.type")))
        return
    kinds = [kind] if kind else list(KINDS)
    if as_json:
        click.echo(
            json.dumps(
                {
                    k: [
                        {
                            "name": c.name,
                            "plugin": c.plugin,
                            "help": c.help,
                            "from": host.infos[c.plugin].origin(),
                        }
                        for c in host.registries[k]
                    ]
                    for k in kinds
                },
                indent=2,
            )
        )
        return
    for k in kinds:
        click.echo(f"{k}:")
        listed = [(c.name, host.plugin_of(c), c.help) for c in host.registries[k]]
        widths = [max([len(r[i]) for r in listed] + [0]) for i in range(2)]
        for name, plugin, help_ in listed:
            click.echo(f"  {name:<{widths[0]}}  {plugin:<{widths[1]}}  {help_}".rstrip())


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.pass_obj
def plugins(host: "PluginHost", as_json: bool, show_all: bool) -> None:
    """List plugins: name, distribution, version, hooks, components, load error."""
    import dataclasses

    infos = [i for i in host.infos.values() if show_all or not i.builtin]
    if as_json:
        click.echo(
            json.dumps([{**dataclasses.asdict(i), "status": i.status} for i in infos], indent=2)
        )
        return
    if not infos:
        click.echo("no third-party plugins installed (odepipe plugins --all lists the built-ins)")
        return
    import textwrap

    def provided(components: List[str]) -> str:  # "dynamics: a, b; commands: c"
        by_kind: dict = {}
        for item in components:
            kind, _, name = item.partition(":")
            by_kind.setdefault(kind, []).append(name)
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in by_kind.items()) or "-"

    head = ("NAME", "DISTRIBUTION", "VERSION", "HOOKS", "COMPONENTS", "STATUS")
    rows = [
        (
            i.name,
            "built-in" if i.builtin else (i.distribution or "-"),
            i.version or "-",
            ", ".join(h.replace("odepipe_register_", "") for h in i.hooks) or "-",
            textwrap.wrap(provided(i.components), 48) or ["-"],
            i.status,
        )
        for i in infos
    ]
    widths = [max(len(r[c]) for r in [head] + rows) for c in range(4)]
    widths.append(max([len(line) for r in rows for line in r[4]] + [len(head[4])]))
    for name, dist, version, hooks, components, status in [head[:4] + ([head[4]], head[5])] + rows:
        lines = components if isinstance(components, list) else [components]
        first = (name, dist, version, hooks, lines[0])
        click.echo("  ".join(f"{v:<{w}}" for v, w in zip(first, widths)) + "  " + status)
        for more in lines[1:]:
            click.echo(" " * (sum(widths[:4]) + 8) + more)


@cli.command(cls=ListsRecipes)
@click.argument("name")
@click.argument("dest", type=click.Path())
@click.pass_obj
def cp(host: "PluginHost", name: str, dest: str) -> None:
    """Copy the shipped (or plugin-shipped) recipe NAME to DEST, to edit it."""
    import importlib.resources

    from .errors import RecipeError
    from .recipe import shipped_recipes
    from .registry import did_you_mean

    names = shipped_recipes()
    stem = name[:-5] if name.endswith(".yaml") else name
    plugin_recipe = None if stem in names else host.recipe_text(stem)
    if stem not in names and plugin_recipe is None:
        known = names + sorted(host.recipes())
        raise RecipeError(
            [f"no shipped recipe {name!r}{did_you_mean(stem, known)}; shipped: {', '.join(known)}"]
        )
    target = os.path.join(dest, stem + ".yaml") if os.path.isdir(dest) else dest
    if os.path.exists(target):
        raise click.UsageError(f"{target} exists; remove it or choose another DEST")
    source = importlib.resources.files("odepipe.recipes") / f"{stem}.yaml"
    try:
        if plugin_recipe is not None:
            with open(target, "w", encoding="utf-8") as f:
                f.write(plugin_recipe[0])
        else:
            with importlib.resources.as_file(source) as src:
                shutil.copyfile(src, target)
    except OSError as exc:
        raise OdepipeError(
            f"cannot write {target}: {exc.strerror or exc}; give a DEST in an "
            f"existing, writable folder"
        ) from None
    click.echo(f"copied {stem} to {target}")


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

    from .errors import CheckpointError
    from .run.folder import load_run

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

    from .errors import DataError
    from .run.bounds import evaluate_bounds
    from .run.evaluate import evaluate as at_posterior_mean
    from .run.folder import load_run

    _, data, model = load_run(run_dir, device, host=host, with_data=True)
    if split not in data.splits:
        raise DataError(
            f"--split {split}: the run's data source has the splits {', '.join(data.splits)}"
        )
    target = torch.device(device)
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


def make_cli(host: "PluginHost") -> click.Group:
    """A command line with odepipe's commands and those ``host`` collected from plugins (the
    host has already refused any that would replace one of odepipe's)."""
    group = OdepipeGroup(
        name=cli.name,
        callback=cli.callback,
        params=cli.params,
        help=cli.help,
        context_settings=cli.context_settings,
        commands=dict(cli.commands),
    )
    for name, (_, command) in host.commands.items():
        group.add_command(command, name)
    return group


def main(argv: Optional[List[str]] = None) -> None:
    """The console script: one plugin host for the process, passed to every command. A
    strict-mode plugin failure exits 2 with its message, like any user error."""
    try:
        host = new_host()
    except OdepipeError as exc:
        args = sys.argv[1:] if argv is None else argv
        info = getattr(exc, "info", None)
        if "--traceback" in args and info is not None and info.traceback:
            click.echo(info.traceback, err=True, nl=False)
        click.echo(f"Error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    make_cli(host).main(args=argv, prog_name="odepipe", obj=host)
