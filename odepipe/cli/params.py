"""Option types and help shared by the commands: seeds, devices, the recipe list in help."""

from __future__ import annotations

from typing import Any, Optional

import click

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
        from ..recipe import shipped_recipes

        formatter.write_paragraph()
        formatter.write_text(f"Shipped recipes: {', '.join(shipped_recipes())}.")
        super().format_epilog(ctx, formatter)
