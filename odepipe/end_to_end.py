"""``odepipe.testing.check_run``: a whole run of a recipe in-process, for plugin authors.

The contract checks of :mod:`odepipe.testing` run one stage on a random batch; this runs what a
user's ``odepipe run`` would, on the plugin's real components: train a few steps, the final
evaluation, ``plot``, ``sample``, extrapolation, ``state``, reopening the run, and a resume.
Every method of every component is called through a wrapper that names it, so a failure reads
"DampedOscillator.plot raised ValueError: ..." instead of ending in a traceback from the
trainer's inside.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
from typing import Any, Callable, Dict, List, Mapping, Sequence, Union

from .contract import ContractError
from .errors import DataError, OdepipeError, RecipeError

#: the methods of each section's component that a run calls, wrapped to name themselves
HOOKED = {
    "data": (
        "dims",
        "dataset",
        "collate",
        "evaluate",
        "plot",
        "sample",
        "state",
        "save",
        "restore",
    ),
    "encoder": ("forward",),
    "dynamics": ("forward",),
    "solver": ("prepare", "forward"),
    "decoder": ("forward",),
}


def _named_failure(owner: str, method: str, exc: BaseException) -> Exception:
    text = " ".join(str(exc).split())
    return ContractError(f"{owner}.{method} raised {type(exc).__name__}: {text}")


def _wrap(cls: type, method: str) -> Callable[..., Any]:
    original = getattr(cls, method)

    @functools.wraps(original)
    def named(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except AssertionError:  # a ContractError from a nested call names its method already
            raise
        except Exception as exc:
            raise _named_failure(cls.__name__, method, exc) from exc

    return named


def traced(cls: type, methods: Sequence[str]) -> type:
    """A subclass of ``cls`` (same name) whose ``methods`` name themselves when they raise."""
    namespace: Dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    for method in methods:
        if inspect.isfunction(inspect.getattr_static(cls, method, None)):
            namespace[method] = _wrap(cls, method)
    return type(cls.__name__, (cls,), namespace)


def call(obj: Any, method: str, *args: Any) -> Any:
    """``obj.method(*args)``; any exception becomes a ContractError naming ``Class.method``."""
    try:
        return getattr(obj, method)(*args)
    except AssertionError:
        raise
    except Exception as exc:
        raise _named_failure(type(obj).__name__, method, exc) from exc


@dataclasses.dataclass
class RunCheck:
    """What :func:`check_run` did: the run folder, the final summary, the steps that ran and
    those skipped with the reason (a source that cannot sample, no CSV codec)."""

    run_dir: str
    summary: Dict[str, Any]
    checked: List[str]
    skipped: Dict[str, str]


def _host(plugin: Any, host: Any) -> Any:
    from .host import PluginHost

    if host is not None:
        return host
    if plugin is None:
        return PluginHost()
    host = PluginHost(entry_points=False)
    info = host.add_plugin(plugin)
    if info.error:
        raise ContractError(f"odepipe would skip plugin {info.name}: {info.error}")
    return host


def _recipe(recipe: Any, overrides: Sequence[str], host: Any) -> Any:
    from .recipe import Recipe, apply_overrides, load_recipe, validate

    if isinstance(recipe, Recipe):
        if overrides:
            raise TypeError("overrides apply to a recipe path or dict, not to a Recipe")
        return recipe
    try:
        if isinstance(recipe, Mapping):
            problems: List[str] = []
            raw, retyped = apply_overrides(dict(recipe), list(overrides), problems)
            if problems:
                raise RecipeError(problems, "<check_run>")
            return validate(raw, "<check_run>", host=host, name="check_run", retyped=retyped)
        return load_recipe(str(recipe), list(overrides), host=host)
    except RecipeError as exc:
        raise ContractError(f"the recipe does not validate: {exc}") from exc


def _with_steps(recipe: Any, steps: int) -> Any:
    train = dataclasses.replace(recipe.train, steps=steps, plot=False, max_seconds=None)
    return dataclasses.replace(recipe, train=train)


def _traced_recipe(recipe: Any) -> Any:
    components = {
        section: dataclasses.replace(c, cls=traced(c.cls, HOOKED[section]))
        for section, c in recipe.components.items()
    }
    return dataclasses.replace(recipe, components=components)


def _train(recipe: Any, run_dir: str, resume: bool) -> Dict[str, Any]:
    from .run.train import train

    try:
        return train(recipe, run_dir, resume=resume, progress=False)
    except AssertionError:
        raise
    except Exception as exc:
        what = "odepipe.train(resume=True)" if resume else "odepipe.train"
        raise _named_failure("odepipe", what.split(".", 1)[1], exc) from exc


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ContractError(message)


def _check_metrics(owner: str, metrics: Any) -> None:
    _require(
        isinstance(metrics, dict) and all(isinstance(k, str) for k in metrics),
        f"{owner}.evaluate must return a dict of str -> number, got {type(metrics).__name__}",
    )
    bad = [
        k
        for k, v in metrics.items()
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
    ]
    _require(
        not bad,
        f"{owner}.evaluate returned non-finite or non-numeric value(s) for "
        f"{', '.join(bad)}; return float sums over the batch's items",
    )


def _extrapolate(
    data: Any, model: Any, batch: Any, name: str, checked: List[str], skipped: Dict[str, str]
) -> None:
    """The model's extrapolation from a seed prefix past the batch's window; then the CSV
    codec of a :class:`odepipe.SeriesCodecSource` (what ``odepipe extrapolate`` needs)."""
    import torch

    if batch.values is None or batch.times.dim() != 1 or batch.times.shape[0] < 3:
        skipped["extrapolate"] = "needs a series batch with one shared time grid of 3+ points"
        return
    T = batch.times.shape[0]
    later = batch.times[-1] + (batch.times[1:] - batch.times[:-1]).mean() * torch.arange(1, 4)
    times = torch.cat([batch.times, later.to(batch.times)])
    pred = call(model, "extrapolate", batch.prefix(max(2, T // 2)), times)
    _require(
        tuple(pred.shape) == (batch.size, len(times), batch.values.shape[-1]),
        f"Pipeline.extrapolate with {name}'s decoder gave {tuple(pred.shape)}, expected "
        f"{(batch.size, len(times), batch.values.shape[-1])}",
    )
    _require(bool(torch.isfinite(pred).all()), f"extrapolating {name} gave NaN or Inf")
    checked.append("extrapolate")
    try:
        from .capabilities import SeriesCodecSource
    except ImportError:
        skipped["extrapolate command"] = "this odepipe has no odepipe.capabilities"
        return
    if not isinstance(data, SeriesCodecSource):
        skipped["extrapolate command"] = (
            f"{name} is not an odepipe.SeriesCodecSource, so `odepipe extrapolate` refuses its runs"
        )
        return
    codec = call(data, "series_codec")
    missing = [
        a
        for a in ("id_column", "time_column", "features", "time_scale", "to_batch", "decode_values")
        if not hasattr(codec, a)
    ]
    _require(
        not missing,
        f"{name}.series_codec() returned a {type(codec).__name__} without {', '.join(missing)}",
    )
    values = call(codec, "decode_values", pred.cpu().numpy())
    _require(
        tuple(values.shape) == tuple(pred.shape),
        f"{type(codec).__name__}.decode_values changed the shape {tuple(pred.shape)} to "
        f"{tuple(values.shape)}",
    )
    checked.append("extrapolate command (series codec)")


def check_run(
    recipe: Union[str, Mapping[str, Any], Any],
    tmp_path: Union[str, os.PathLike],
    steps: int = 2,
    overrides: Sequence[str] = (),
    plugin: Any = None,
    host: Any = None,
) -> RunCheck:
    """Runs ``recipe`` end to end in-process, as ``odepipe run`` would, and checks every hook a
    run calls; a failure is a ContractError whose sentence names the method that broke.

    Args:
        recipe: a recipe path or shipped name, a recipe dict (as the YAML reads), or a Recipe.
        tmp_path: a folder for the run (pytest's ``tmp_path``); the run goes into ``run/``.
        steps: training steps (then one more by resuming).
        overrides: ``key=value`` overrides, as on the command line (keep sizes tiny).
        plugin: a module or object with hook implementations to load beside the built-ins
            (default: the installed plugins, found by entry point, as ``odepipe`` does).
        host: a PluginHost to use instead.

    Steps: train ``steps`` steps (the final evaluation calls the source's ``evaluate``);
    ``evaluate`` again on a test batch (a dict of finite numbers); ``plot`` into a folder;
    ``sample`` of 2 (a DataError saying "does not support sampling" is a skip, not a
    failure); extrapolation past the window for series (and the CSV codec of a
    SeriesCodecSource); ``state()`` (JSON-serialisable); ``load_run`` of the folder; resume for
    one more step.
    """
    import torch

    from .run.folder import load_run

    host = _host(plugin, host)
    base = _recipe(recipe, overrides, host)
    run_dir = os.path.join(os.fspath(tmp_path), "run")
    os.makedirs(run_dir, exist_ok=True)
    checked: List[str] = []
    skipped: Dict[str, str] = {}
    summary = _train(_traced_recipe(_with_steps(base, steps)), run_dir, resume=False)
    _require(
        summary.get("steps") == steps,
        f"odepipe.train stopped at step {summary.get('steps')} of {steps}",
    )
    checked += ["train", "final evaluation"]

    try:
        _, data, model = load_run(run_dir, "cpu", host=host)
    except OdepipeError as exc:
        raise ContractError(f"load_run of the finished run failed: {exc}") from exc
    checked.append("load_run")
    name = type(data).__name__
    split = "test" if "test" in data.splits else data.splits[-1]
    items = list(call(data, "dataset", split))[:4]
    batch = call(data, "collate", items)
    with torch.no_grad():
        _check_metrics(name, call(data, "evaluate", model, batch))
    checked.append("evaluate")

    from .plotting import pyplot

    pyplot()  # the Agg backend before a plugin's plot imports pyplot
    plots = os.path.join(os.fspath(tmp_path), "check_plots")
    os.makedirs(plots, exist_ok=True)
    call(data, "plot", model, batch, plots)
    checked.append("plot")

    try:
        lines = data.sample(model, 2, os.path.join(os.fspath(tmp_path), "check_samples"))
    except DataError as exc:
        if "does not support sampling" not in str(exc):
            raise _named_failure(name, "sample", exc) from exc
        skipped["sample"] = str(exc)
    except Exception as exc:
        raise _named_failure(name, "sample", exc) from exc
    else:
        lines = list(lines)
        _require(
            len(lines) == 2 and all(isinstance(s, str) for s in lines),
            f"{name}.sample(model, 2) must return 2 printable lines, got {lines!r}",
        )
        checked.append("sample")

    _extrapolate(data, model, batch, name, checked, skipped)

    state = call(data, "state")
    try:
        json.dumps(state)
    except TypeError as exc:
        raise ContractError(
            f"{name}.state() must be JSON-serialisable (it goes into summary.json): {exc}"
        ) from exc
    checked.append("state")

    resumed = _train(_traced_recipe(_with_steps(base, steps + 1)), run_dir, resume=True)
    _require(
        resumed.get("steps") == steps + 1,
        f"resuming ran to step {resumed.get('steps')}, expected {steps + 1}",
    )
    checked.append("resume")
    return RunCheck(run_dir=run_dir, summary=resumed, checked=checked, skipped=skipped)
