"""Hook specifications: the whole plugin interface of odepipe.

A plugin is a module (or object) with functions marked ``@odepipe.hookimpl`` whose names are the
hooks below. Each ``odepipe_register_*`` hook receives one argument, ``register``, a callable:

    register(name: str, cls: type | str, help: str | None = None) -> None

``name`` is what recipes write after ``type:``; ``cls`` is the class, which must subclass the
stage base named in the hook (the registry refuses anything else), or a ``"package.module:Class"``
reference to it: a reference is checked to exist when plugins load and imported only when a
recipe or command uses the component, so your plugin costs nothing to runs that do not use it
and ``odepipe --help`` stays free of torch. ``help`` is a one-line description for
``odepipe ls`` (the class docstring's first line when omitted). The class's ``__init__``
keyword arguments are the recipe parameters of that component; their annotations are used to
type-check recipes and their defaults are the component's defaults. Arguments that the
pipeline supplies itself (``latent_dim``, ``obs_dim``, ``vocab_size``, ``seed``) are passed when
the signature names them.

These docstrings are the plugin reference; docs/plugins.md is the long form (lifecycle, shapes,
a template). The README's "Writing a plugin" section and docs/plugins.md document every hook
with its arguments, and tests/test_plugins.py fails when a hook added here is missing there or
is implemented by no test plugin. Hook implementations may take a subset of a spec's
arguments, never others; odepipe refuses a plugin that does otherwise.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("odepipe")

#: The version of this plugin interface (hooks, stage contracts, ``odepipe.testing``), as
#: "MAJOR.MINOR": MINOR grows when something is added, MAJOR when a plugin written for the
#: previous one could break. A plugin can refuse an odepipe it was not written for::
#:
#:     if odepipe.PLUGIN_API.split(".")[0] != "1":
#:         raise ImportError(f"needs odepipe plugin API 1.x, found {odepipe.PLUGIN_API}")
PLUGIN_API = "1.0"

Register = Callable[..., None]


@hookspec
def odepipe_register_encoders(register: Register) -> None:
    """Register Encoder subclasses (``odepipe.Encoder``): batch -> Posterior q(z0|x).

    Constructor arguments the pipeline supplies: ``latent_dim``, and ``obs_dim`` for series or
    ``vocab_size`` for tokens. ``forward(batch)`` returns ``Posterior(mean, logvar)`` of shape
    ``(B, latent_dim)``.
    """


@hookspec
def odepipe_register_dynamics(register: Register) -> None:
    """Register Dynamics subclasses (``odepipe.Dynamics``): the vector field f(t, z).

    Constructor argument supplied: ``latent_dim``. ``forward(t, z)`` takes a scalar tensor and
    ``(B, latent_dim)`` and returns dz/dt of the same shape. It must be differentiable and use
    only its registered parameters, so that the adjoint method works.
    """


@hookspec
def odepipe_register_solvers(register: Register) -> None:
    """Register Solver subclasses (``odepipe.Solver``): integrate a field over a time grid.

    ``forward(dynamics, z0, times)`` takes ``(B, L)`` and an increasing ``(T,)`` grid and
    returns ``(B, T, L)``. Count evaluations of the field in ``nfe_forward`` and
    ``nfe_backward``. ``prepare(dynamics)`` is called once when the pipeline is built.
    """


@hookspec
def odepipe_register_decoders(register: Register) -> None:
    """Register Decoder subclasses (``odepipe.Decoder``): latent states -> a distribution.

    Constructor arguments supplied: ``latent_dim``, and ``obs_dim`` or ``vocab_size``.
    ``forward(z, batch)`` takes ``(B, T, latent_dim)`` and returns a
    ``torch.distributions.Distribution`` whose ``log_prob`` of the batch's data is ``(B, T, D)``
    (series) or ``(B, T)`` (tokens).
    """


@hookspec
def odepipe_register_data_sources(register: Register) -> None:
    """Register DataSource subclasses (``odepipe.DataSource``): datasets for every split.

    Constructor argument supplied: ``seed``. Implement ``dataset(split)``, ``collate(items)``
    returning a ``Batch`` and ``dims()``; optionally ``evaluate`` and ``plot``.
    """


@hookspec
def odepipe_register_commands(cli: Any) -> None:
    """Add commands to the ``odepipe`` command line.

    ``cli`` collects them: add commands with ``cli.add_command(cmd)`` or the ``@cli.command()``
    decorator (as on a ``click.Group``). A command that odepipe or another plugin already has
    skips the whole plugin. A command receives the process's plugin host as click's context
    object (``@click.pass_obj``), to pass to :func:`odepipe.load_run`. Import heavy libraries
    inside the command, not at module level,
    so ``odepipe --help`` stays fast.
    """


@hookspec
def odepipe_register_recipes(register: Register) -> None:
    """Ship recipes with a plugin: ``register(name, path_or_text)``.

    ``path_or_text`` is a path to a YAML file (a ``pathlib.Path``, or a ``str`` without a
    newline; typically ``Path(__file__).parent / "pendulum.yaml"``, listed as package data so a
    wheel carries it) or the YAML text itself (a ``str`` with a newline). The file is read when
    the plugin loads. ``odepipe run NAME``, ``odepipe cp NAME DEST`` and ``odepipe ls recipes``
    find it by ``name``. A name that odepipe ships or another plugin already gave skips the
    whole plugin, as a command would.
    """


#: hook name -> registry kind, for the component hooks.
COMPONENT_HOOKS = {
    "odepipe_register_encoders": "encoders",
    "odepipe_register_dynamics": "dynamics",
    "odepipe_register_solvers": "solvers",
    "odepipe_register_decoders": "decoders",
    "odepipe_register_data_sources": "data_sources",
}
