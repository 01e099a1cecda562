"""What is installed: ``odepipe ls`` (components, recipes), ``plugins``, ``cp`` (a recipe)."""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING, List, Optional

import click

from ..errors import OdepipeError
from .group import cli
from .params import ListsRecipes

if TYPE_CHECKING:
    from ..host import PluginHost


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
    from ..registry import KINDS, did_you_mean

    if kind == "recipes":
        from ..recipe import shipped_recipes

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
        from ..describe import describe

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

    from ..errors import RecipeError
    from ..recipe import shipped_recipes
    from ..registry import did_you_mean

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
