"""Contract checks that plugin authors call from their own tests.

Each ``check_*`` function runs one stage on a tiny batch and raises :class:`ContractError` (an
``AssertionError``, so pytest shows it as a test failure) with a sentence naming what the stage
did wrong; on success it returns what the stage produced, for further asserts::

    from odepipe import testing

    def test_my_dynamics():
        testing.check_dynamics(MyField(latent_dim=3), latent_dim=3)

    def test_whole_plugin():          # every component the module registers
        testing.check_plugin(my_plugin_module, params={"dynamics:my_field": {"width": 8}})

    def test_a_whole_run(tmp_path):   # train, evaluate, plot, sample, extrapolate, resume
        testing.check_run("my_recipe.yaml", tmp_path, overrides=["data.n_series=16"])

The checks are what the pipeline relies on: shapes at the stage boundaries, finite values, and
gradients that reach every parameter (for dynamics, through the adjoint method too).
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, Iterable, List, Optional

import torch
from torch import nn

from .contract import ContractError, check_valid_split
from .end_to_end import RunCheck, check_run
from .stages import Batch, DataSource, Decoder, Dynamics, Encoder, Posterior, Solver

__all__ = [
    "ContractError",
    "make_batch",
    "check_encoder",
    "check_dynamics",
    "check_solver",
    "check_decoder",
    "check_data_source",
    "check_plugin",
    "check_run",
    "RunCheck",
]


def _require(ok: Any, message: str) -> None:
    if not ok:
        raise ContractError(message)


def _name(obj: Any) -> str:
    return type(obj).__name__


def make_batch(
    batch_size: int = 3,
    n_times: int = 5,
    obs_dim: Optional[int] = 2,
    vocab_size: Optional[int] = None,
    seed: int = 0,
) -> Batch:
    """A small random Batch: a series ``(B, T, obs_dim)`` or, with ``vocab_size``, tokens
    ``(B, T)``; times ``linspace(0, 1, T)``."""
    gen = torch.Generator().manual_seed(seed)
    times = torch.linspace(0.0, 1.0, n_times)
    if vocab_size is not None:
        tokens = torch.randint(0, vocab_size, (batch_size, n_times), generator=gen)
        return Batch(times=times, tokens=tokens, mask=torch.ones(batch_size, n_times))
    values = torch.randn(batch_size, n_times, obs_dim or 1, generator=gen)
    return Batch(times=times, values=values)


def _check_grads(module: nn.Module, what: str) -> None:
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    _require(
        not missing,
        f"{_name(module)}: no gradient reached parameter(s) "
        f"{', '.join(missing)} {what}; every parameter must take part in "
        f"forward() and be registered on the module",
    )
    bad = [
        n
        for n, p in module.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]
    _require(not bad, f"{_name(module)}: gradient of {', '.join(bad)} is NaN or Inf {what}")


def check_encoder(
    encoder: Encoder, batch: Optional[Batch] = None, latent_dim: Optional[int] = None
) -> Posterior:
    """An Encoder maps a batch to a Posterior of shape ``(B, latent_dim)`` with finite values,
    and gradients reach its parameters. An encoder marked ``latent_free`` (a model without a
    latent path) must give ``(B, 0)``."""
    _require(isinstance(encoder, Encoder), f"{_name(encoder)} is not an odepipe.Encoder")
    if getattr(encoder, "latent_free", False):
        latent_dim = 0
    batch = batch if batch is not None else make_batch()
    encoder.zero_grad(set_to_none=True)
    post = encoder(batch)
    _require(
        isinstance(post, Posterior),
        f"{_name(encoder)}.forward returned {type(post).__name__}, expected odepipe.Posterior",
    )
    B = batch.size
    for field in ("mean", "logvar"):
        value = getattr(post, field)
        _require(
            isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[0] == B,
            f"{_name(encoder)}: Posterior.{field} must be (B, latent_dim) with B={B}, got "
            f"{tuple(getattr(value, 'shape', ()))}",
        )
        if latent_dim is not None:
            _require(
                value.shape[1] == latent_dim,
                f"{_name(encoder)}: Posterior.{field} has {value.shape[1]} latent "
                f"dimensions, expected latent_dim={latent_dim}",
            )
        _require(torch.isfinite(value).all(), f"{_name(encoder)}: Posterior.{field} is not finite")
    _require(
        post.mean.shape == post.logvar.shape,
        f"{_name(encoder)}: Posterior mean {tuple(post.mean.shape)} and logvar "
        f"{tuple(post.logvar.shape)} differ in shape",
    )
    if any(True for _ in encoder.parameters()):  # a parameter-free encoder has none to reach
        (post.mean.sum() + post.logvar.sum()).backward()
        _check_grads(encoder, "from the Posterior")
    return post


def check_dynamics(
    dynamics: Dynamics, latent_dim: int, batch_size: int = 3, adjoint_rtol: float = 1e-2
) -> torch.Tensor:
    """A Dynamics field is an ``nn.Module`` whose ``forward(t, z)`` keeps the shape of ``z``,
    and that works under the adjoint method: integrated with ``torchdiffeq.odeint_adjoint``
    (which only differentiates registered parameters), gradients reach every parameter and agree
    with plain backpropagation through ``odeint`` within ``adjoint_rtol``. Returns dz/dt."""
    import torchdiffeq

    _require(
        isinstance(dynamics, nn.Module) and isinstance(dynamics, Dynamics),
        f"{_name(dynamics)} is not an odepipe.Dynamics (an nn.Module)",
    )
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(batch_size, latent_dim, generator=gen)
    t = torch.tensor(0.3)
    dz = dynamics(t, z)
    _require(
        isinstance(dz, torch.Tensor) and dz.shape == z.shape,
        f"{_name(dynamics)}.forward(t, z) must return the shape of z "
        f"{tuple(z.shape)}, got {tuple(getattr(dz, 'shape', ()))}",
    )
    _require(torch.isfinite(dz).all(), f"{_name(dynamics)}: dz/dt is not finite")

    hidden = _hidden_trainables(dynamics)
    _require(
        not hidden,
        f"{_name(dynamics)} holds trainable {', '.join(hidden)} outside its "
        f"registered parameters; the adjoint method differentiates only "
        f"dynamics.parameters(), so make them nn.Parameter / submodules",
    )
    params = [p for p in dynamics.parameters() if p.requires_grad]
    times = torch.linspace(0.0, 0.5, 3)
    options = {"method": "rk4", "options": {"step_size": 0.05}}
    # A fixed random projection of the whole trajectory: every parameter that shapes z(t)
    # moves this loss, unlike ||z(T)||^2, which a rotation leaves unchanged (true gradient 0).
    projection = torch.randn(len(times), batch_size, latent_dim, generator=gen)
    grads: Dict[str, List[torch.Tensor]] = {}
    for mode, solve in (("backprop", torchdiffeq.odeint), ("adjoint", torchdiffeq.odeint_adjoint)):
        z0 = z.clone().requires_grad_(True)
        dynamics.zero_grad(set_to_none=True)
        extra = {"adjoint_options": {"step_size": 0.05}} if mode == "adjoint" else {}
        try:
            out = solve(dynamics, z0, times, **options, **extra)  # (T, B, L)
        except Exception as exc:
            raise ContractError(
                f"{_name(dynamics)} fails under torchdiffeq.{solve.__name__}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        (out * projection.to(out)).sum().backward()
        if mode == "adjoint":
            _check_grads(dynamics, "under torchdiffeq.odeint_adjoint")
        assert z0.grad is not None  # z0 takes part in every solve
        grads[mode] = [z0.grad] + [
            p.grad if p.grad is not None else torch.zeros_like(p) for p in params
        ]
    for i, (a, b) in enumerate(zip(grads["backprop"], grads["adjoint"])):
        what = "z0" if i == 0 else f"parameter {i - 1}"
        error = gradient_mismatch(a, b, grads["backprop"], adjoint_rtol)
        _require(
            error is None,
            f"{_name(dynamics)}: the adjoint gradient of {what} differs from backprop "
            f"(relative error {error}); the field must depend only on (t, z) and its "
            f"registered parameters",
        )
    return dz


#: gradients smaller than this fraction of the whole gradient's norm are solver noise: the
#: adjoint's backward solve discretises differently from backprop, so two such values differ
#: by more than any relative tolerance without either being wrong
NOISE_FLOOR = 1e-4


def gradient_mismatch(
    a: torch.Tensor, b: torch.Tensor, every: Iterable[torch.Tensor], rtol: float
) -> Optional[str]:
    """None when gradients ``a`` (backprop) and ``b`` (adjoint) agree, else their relative
    error as text. They agree when they differ by at most ``rtol`` of the larger one's norm
    plus the noise floor (:data:`NOISE_FLOOR` of the norm of ``every`` gradient together), so
    two values that are both noise count as equal."""
    total = float(
        torch.sqrt(
            sum((g.double().pow(2).sum() for g in every), torch.zeros((), dtype=torch.float64))
        )
    )
    size = max(float(a.norm()), float(b.norm()))
    diff = float((a - b).norm())
    if diff <= rtol * size + NOISE_FLOOR * total + 1e-12:
        return None
    return f"{diff / max(size, 1e-12):.2g}"


def _hidden_trainables(module: nn.Module) -> List[str]:
    """Attributes that hold gradient-requiring tensors or parameterised modules without being
    registered as parameters or submodules (so ``parameters()`` misses them)."""
    found = []
    for prefix, sub in module.named_modules():
        for attr, value in vars(sub).items():
            where = f"{prefix}.{attr}" if prefix else attr
            if (
                isinstance(value, torch.Tensor)
                and value.requires_grad
                and not isinstance(value, nn.Parameter)
            ):
                found.append(f"tensor '{where}'")
            elif isinstance(value, nn.Module) and any(True for _ in value.parameters()):
                found.append(f"module '{where}'")
    return found


def check_solver(
    solver: Solver,
    dynamics: Optional[Dynamics] = None,
    latent_dim: int = 3,
    batch_size: int = 3,
    n_times: int = 4,
) -> torch.Tensor:
    """A Solver integrates ``(B, L)`` over ``(T,)`` times into ``(B, T, L)`` starting at z0,
    counts field evaluations in ``nfe_forward``, and lets gradients reach z0."""
    _require(isinstance(solver, Solver), f"{_name(solver)} is not an odepipe.Solver")
    if dynamics is None:
        dynamics = _LinearField(latent_dim)
    solver.prepare(dynamics)
    solver.reset_nfe()
    z0 = torch.randn(batch_size, latent_dim, generator=torch.Generator().manual_seed(0))
    z0.requires_grad_(True)
    times = torch.linspace(0.0, 0.5, n_times)
    out = solver(dynamics, z0, times)
    _require(
        isinstance(out, torch.Tensor) and out.shape == (batch_size, n_times, latent_dim),
        f"{_name(solver)} must return (B, T, L) = {(batch_size, n_times, latent_dim)}, got "
        f"{tuple(getattr(out, 'shape', ()))}",
    )
    _require(
        torch.allclose(out[:, 0], z0, atol=1e-4),
        f"{_name(solver)}: the state at times[0] must equal z0",
    )
    _require(
        solver.nfe_forward > 0, f"{_name(solver)} did not count field evaluations in nfe_forward"
    )
    out.sum().backward()
    _require(
        z0.grad is not None and torch.isfinite(z0.grad).all(),
        f"{_name(solver)}: no finite gradient reached z0",
    )
    return out


def check_decoder(
    decoder: Decoder, latent_dim: int, batch: Optional[Batch] = None
) -> torch.distributions.Distribution:
    """A Decoder maps ``(B, T, latent_dim)`` to a ``torch.distributions.Distribution`` whose
    ``log_prob`` of the batch's data is ``(B, T, D)`` for series or ``(B, T)`` for tokens,
    finite, with gradients reaching the decoder's parameters."""
    _require(isinstance(decoder, Decoder), f"{_name(decoder)} is not an odepipe.Decoder")
    batch = batch if batch is not None else make_batch()
    B, T = batch.data.shape[:2]
    z = torch.randn(B, T, latent_dim, generator=torch.Generator().manual_seed(0))
    decoder.zero_grad(set_to_none=True)
    dist = decoder(z, batch)
    _require(
        isinstance(dist, torch.distributions.Distribution),
        f"{_name(decoder)}.forward returned {type(dist).__name__}, expected a "
        f"torch.distributions.Distribution",
    )
    logp = dist.log_prob(batch.data)
    expected = tuple(batch.data.shape)
    _require(
        tuple(logp.shape) == expected,
        f"{_name(decoder)}: log_prob of the batch's data has shape {tuple(logp.shape)}, "
        f"expected {expected} (one value per observed entry)",
    )
    _require(torch.isfinite(logp).all(), f"{_name(decoder)}: log_prob is not finite")
    logp.sum().backward()
    _check_grads(decoder, "from log_prob")
    return dist


def check_data_source(source: DataSource, batch_size: int = 3) -> Dict[str, Batch]:
    """A DataSource reports ``dims()``, has items in every split, and collates them into Batches
    whose shapes, dtypes and time grids are valid, and a valid split (when listed) shares no
    item with test. Returns one Batch per split."""
    _require(isinstance(source, DataSource), f"{_name(source)} is not an odepipe.DataSource")
    dims = source.dims()
    _require(
        isinstance(dims, dict)
        and ("obs_dim" in dims or "vocab_size" in dims)
        and all(isinstance(v, int) and v > 0 for v in dims.values()),
        f"{_name(source)}.dims() must give positive ints for obs_dim or vocab_size, got {dims!r}",
    )
    batches = {}
    for split in source.splits:
        items = source.dataset(split)
        _require(len(items) > 0, f"{_name(source)}: split {split!r} is empty")
        n = min(batch_size, len(items))
        batch = source.collate([items[i] for i in range(n)])
        where = f"{_name(source)} split {split!r}"
        _require(
            isinstance(batch, Batch),
            f"{where}: collate returned {type(batch).__name__}, expected odepipe.Batch",
        )
        _require(
            (batch.values is None) != (batch.tokens is None),
            f"{where}: a Batch carries exactly one of values (series) or tokens (text)",
        )
        data = batch.data
        if batch.values is not None:
            _require(
                data.dim() == 3 and data.is_floating_point(),
                f"{where}: values must be float (B, T, D), got {data.dtype} {tuple(data.shape)}",
            )
            _require(
                "obs_dim" in dims and data.shape[2] == dims["obs_dim"],
                f"{where}: values have D={data.shape[2]} but dims() says {dims!r}",
            )
            _require(torch.isfinite(data).all(), f"{where}: values are not finite")
        else:
            _require(
                data.dim() == 2 and data.dtype == torch.long,
                f"{where}: tokens must be long (B, T), got {data.dtype} {tuple(data.shape)}",
            )
            _require(
                "vocab_size" in dims
                and 0 <= int(data.min())
                and int(data.max()) < dims["vocab_size"],
                f"{where}: token ids must lie in [0, vocab_size) with dims() {dims!r}",
            )
        B, T = data.shape[:2]
        _require(B == n, f"{where}: collate of {n} items gave a batch of {B}")
        times = batch.times
        _require(
            isinstance(times, torch.Tensor) and times.shape in ((T,), (B, T)),
            f"{where}: times must be (T,) or (B, T) with T={T}, got "
            f"{tuple(getattr(times, 'shape', ()))}",
        )
        _require(
            T < 2 or bool((times[..., 1:] > times[..., :-1]).all()),
            f"{where}: times must be strictly increasing",
        )
        if batch.mask is not None:
            _require(
                tuple(batch.mask.shape) in ((B, T), tuple(data.shape)),
                f"{where}: mask must be (B, T) or {tuple(data.shape)}, got "
                f"{tuple(batch.mask.shape)}",
            )
        batches[split] = batch
    check_valid_split(source, limit=200)  # weights chosen on valid must not have seen test
    return batches


class _LinearField(Dynamics):
    """dz/dt = -z: a field for checking solvers alone."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -z


def _construct(key: str, cls: type, supplied: Dict[str, Any], params: Dict[str, Any]) -> Any:
    accepted = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    try:
        return cls(**{k: v for k, v in supplied.items() if k in accepted}, **params)
    except Exception as exc:
        raise ContractError(
            f"{key}: building {cls.__name__} with parameters {params or '(defaults)'} "
            f"failed: {type(exc).__name__}: {exc}; give working ones with "
            f"check_plugin(..., params={{{key!r}: {{...}}}})"
        ) from exc


def check_plugin(
    plugin: Any,
    latent_dim: int = 3,
    obs_dim: int = 2,
    vocab_size: Optional[int] = None,
    kinds: Iterable[str] = ("encoders", "dynamics", "solvers", "decoders", "data_sources"),
    params: Optional[Dict[str, Dict[str, Any]]] = None,
) -> List[str]:
    """Loads ``plugin`` (a module or object with hook implementations) beside the built-ins
    exactly as odepipe would, failing on anything that would make odepipe skip it, then runs the
    matching check on every component it registers, built with the sizes given here and
    ``params["kind:name"]`` (default parameters otherwise); a constructor that refuses them is a
    ContractError naming ``kind:name``. Returns the checked ``kind:name`` list."""
    from .host import PluginHost

    host = PluginHost(entry_points=False)
    info = host.add_plugin(plugin)
    name = info.name
    _require(info.error is None, f"odepipe would skip plugin {name}: {info.error}")
    supplied = {"latent_dim": latent_dim, "obs_dim": obs_dim, "seed": 0}
    if vocab_size is not None:
        supplied["vocab_size"] = vocab_size

    def batch() -> Batch:
        return make_batch(obs_dim=obs_dim, vocab_size=vocab_size)

    checked = []
    for kind in kinds:
        for component in host.registries[kind]:
            if component.plugin != name:
                continue
            key = f"{kind}:{component.name}"
            obj = _construct(key, component.cls, supplied, (params or {}).get(key, {}))
            if kind == "encoders":
                check_encoder(obj, batch(), latent_dim)
            elif kind == "dynamics":
                check_dynamics(obj, latent_dim)
            elif kind == "solvers":
                check_solver(obj, latent_dim=latent_dim)
            elif kind == "decoders":
                check_decoder(obj, latent_dim, batch())
            else:
                check_data_source(obj)
            checked.append(key)
    return checked
