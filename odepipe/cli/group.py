"""The ``odepipe`` group: user errors become exit code 2, one plugin host per process, and the
command line :func:`main` assembles from odepipe's commands and the plugins'."""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, List, Optional

import click

from ..errors import OdepipeError

if TYPE_CHECKING:
    from ..host import PluginHost


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
    from ..plugin_report import PluginWarning

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
        from ..plugin_report import traceback_report

        click.echo(traceback_report(ctx.obj.skipped()), err=True, nl=False)


def new_host() -> "PluginHost":
    """The process's plugin host: built-ins and entry points, refusing plugin commands that
    would replace odepipe's own."""
    from ..host import PluginHost

    return PluginHost(reserved_commands=tuple(cli.commands))


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
