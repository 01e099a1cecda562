"""The registered solvers on both backends: odepipe's engine (default) and torchdiffeq agree on
trajectories, gradients and NFE; the engine's fixed-grid adjoint gives backprop's gradients;
the torchdiffeq-only and engine-only methods route as documented; recipe mistakes name the key."""
import pytest
import torch
from odepipe_plugins.latent_ode.decoders import MLPDecoder
from odepipe_plugins.latent_ode.dynamics import MLPDynamics
from odepipe_plugins.latent_ode.encoders import GRUEncoder
from odepipe_plugins.latent_ode.solvers import (
    ENGINE_ADAPTIVE,
    ENGINE_FIXED,
    SOLVERS,
    TORCHDIFFEQ_ADAPTIVE,
    TORCHDIFFEQ_FIXED,
)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import odepipe
from odepipe import Pipeline

B, L = 3, 4


class Decay(odepipe.Dynamics):
    def forward(self, t, z):
        return -z


def field(dtype=torch.float32):
    torch.manual_seed(0)
    return MLPDynamics(latent_dim=L, hidden_size=8).to(dtype)


def solve(method, backend, f, z0, times, **options):
    """Trajectory, gradients w.r.t. z0 and the field's parameters, and the solver."""
    solver = SOLVERS[method](backend=backend, **options)
    z0 = z0.clone().requires_grad_(True)
    f.zero_grad()
    zt = solver(f, z0, times)
    zt.pow(2).sum().backward()
    return zt.detach(), [z0.grad] + [p.grad.clone() for p in f.parameters()], solver


@pytest.mark.parametrize("method,step_size", [(m, s) for m in ENGINE_FIXED + ("rk38",)
                                              for s in (None, 0.15)])
def test_fixed_backends_agree_on_trajectories_gradients_and_nfe(method, step_size):
    f, z0 = field(), torch.randn(B, L)
    times = torch.tensor([0.0, 0.2, 0.5, 0.65, 1.0])
    ours = solve(method, "odepipe", f, z0, times, step_size=step_size)
    theirs = solve(method, "torchdiffeq", f, z0, times, step_size=step_size)
    assert ours[2].uses_engine and not theirs[2].uses_engine
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(ours[1], theirs[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # 1.0 / 0.15 is not a whole number of steps: no stub step on either side, same NFE
    assert ours[2].nfe_forward == theirs[2].nfe_forward > 0
    assert ours[2].nfe_backward == theirs[2].nfe_backward == 0


@pytest.mark.parametrize("method", ENGINE_ADAPTIVE)
def test_adaptive_backends_agree_on_trajectories_gradients_and_nfe(method):
    """float64: the same steps (NFE) and solutions to rounding; gradients to ~1e-7, because
    torchdiffeq also differentiates through its step-size choice (terms of the order of the
    local error) where the engine treats the accepted steps as constants. float32: both
    backends sit ~5e-5 from the float64 solution at rtol 1e-5 (their rounding differs step by
    step, tsit5 even takes different steps: NFE 38 vs 32), so they agree to that, not to a few
    ulps, and their gradients only to ~1e-2."""
    times = torch.linspace(0, 2, 6, dtype=torch.float64)
    for dtype, rtol, tol, gtol in ((torch.float64, 1e-8, 1e-10, 1e-6),
                                   (torch.float32, 1e-5, 2e-4, 1e-2)):
        f, z0 = field(dtype), torch.randn(B, L, dtype=dtype)
        ours = solve(method, "odepipe", f, z0, times.to(dtype), rtol=rtol, atol=rtol / 100)
        theirs = solve(method, "torchdiffeq", f, z0, times.to(dtype), rtol=rtol, atol=rtol / 100)
        assert ours[2].uses_engine and not theirs[2].uses_engine
        torch.testing.assert_close(ours[0], theirs[0], rtol=tol, atol=tol)
        for a, b in zip(ours[1], theirs[1]):
            torch.testing.assert_close(a, b, rtol=gtol, atol=gtol)
        if dtype == torch.float64:
            assert ours[2].nfe_forward == theirs[2].nfe_forward > 0


@pytest.mark.parametrize("method,step_size", [("rk4", 0.15), ("euler", None), ("heun2", 0.1)])
def test_fixed_adjoint_gives_backprops_gradients_with_equal_backward_nfe(method, step_size):
    f, z0 = field(torch.float64), torch.randn(B, L, dtype=torch.float64)
    times = torch.tensor([0.0, 0.3, 0.35, 1.0], dtype=torch.float64)
    plain = solve(method, "odepipe", f, z0, times, step_size=step_size)
    adj = solve(method, "odepipe", f, z0, times, step_size=step_size, adjoint=True)
    assert adj[2].uses_engine
    torch.testing.assert_close(adj[0], plain[0], rtol=0, atol=0)
    for a, b in zip(adj[1], plain[1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    solver = adj[2]
    assert solver.nfe_backward == solver.nfe_forward == plain[2].nfe_forward
    assert solver.nfe_recompute >= solver.nfe_forward
    solver.reset_nfe()
    assert solver.nfe_forward == solver.nfe_backward == solver.nfe_recompute == 0


def test_nfe_counts_exact_steps_and_no_stub_step():
    solver = SOLVERS["rk4"](step_size=0.1)
    solver(field(), torch.randn(B, L), torch.linspace(0, 1, 11))
    assert solver.nfe_forward == 10 * 4 and solver.nfe_backward == 0
    twice = SOLVERS["euler"](step_size=0.25)
    twice(field(), torch.randn(B, L), torch.linspace(0, 1, 3))
    twice(field(), torch.randn(B, L), torch.linspace(0, 1, 3))
    assert twice.nfe_forward == 2 * 4  # counters add up until reset_nfe


def test_adaptive_adjoint_falls_back_to_torchdiffeq():
    f, z0 = field(torch.float64), torch.randn(B, L, dtype=torch.float64)
    times = torch.linspace(0, 1, 4, dtype=torch.float64)
    plain = solve("dopri5", "odepipe", f, z0, times, rtol=1e-8, atol=1e-10)
    adj = solve("dopri5", "odepipe", f, z0, times, rtol=1e-8, atol=1e-10, adjoint=True)
    assert plain[2].uses_engine and not adj[2].uses_engine
    assert adj[2].nfe_backward > 0
    for a, b in zip(adj[1], plain[1]):  # a continuous adjoint: close, not equal
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("method", TORCHDIFFEQ_ADAPTIVE + TORCHDIFFEQ_FIXED)
def test_methods_the_engine_lacks_keep_torchdiffeq(method):
    f, z0 = field(), torch.randn(B, L)
    times = torch.linspace(0, 1, 3)
    default = solve(method, "odepipe", f, z0, times, step_size=0.1)
    explicit = solve(method, "torchdiffeq", f, z0, times, step_size=0.1)
    assert not default[2].uses_engine
    assert torch.equal(default[0], explicit[0])
    assert all(torch.equal(a, b) for a, b in zip(default[1], explicit[1]))
    assert default[2].nfe_forward == explicit[2].nfe_forward > 0


@pytest.mark.parametrize("method", ["heun2", "rk38", "rk4_classic"])
def test_engine_only_methods_solve_decay(method):
    z0 = torch.ones(2, L, dtype=torch.float64)
    times = torch.linspace(0, 2, 5, dtype=torch.float64)
    h = 0.01
    zt = SOLVERS[method](step_size=h)(Decay(), z0, times)
    error = (zt - torch.exp(-times).view(1, -1, 1)).abs().max().item()
    order = 2 if method == "heun2" else 4
    assert 0 < error < 10 * h ** order


def test_engine_only_method_on_torchdiffeq_names_the_backend():
    with pytest.raises(odepipe.ModelError, match=r"solver\.backend=odepipe"):
        SOLVERS["rk4_classic"](backend="torchdiffeq")
    rk38 = SOLVERS["rk38"](backend="torchdiffeq", step_size=0.1)  # torchdiffeq's rk4 rule
    assert not rk38.uses_engine


@pytest.mark.parametrize("backend", ["odepipe", "torchdiffeq"])
def test_a_million_fixed_steps_is_refused_naming_the_step_size(backend):
    solver = SOLVERS["rk4"](step_size=1e-6, backend=backend)
    with pytest.raises(odepipe.SolverError, match=r"solver\.step_size"):
        solver(field(), torch.randn(B, L), torch.linspace(0, 10, 3))
    assert solver.nfe_forward == 0


@pytest.mark.parametrize("backend", ["odepipe", "torchdiffeq"])
def test_solver_failure_becomes_a_solver_error_on_both_backends(backend):
    class Explode(odepipe.Dynamics):
        def forward(self, t, z):
            return z ** 3 * 1e3

    solver = SOLVERS["dopri5"](max_num_steps=5, backend=backend)
    with pytest.raises(odepipe.SolverError, match=r"solver\.max_num_steps.*train\.lr"):
        solver(Explode(), torch.ones(1, 2) * 10, torch.linspace(0, 1, 3))


@pytest.mark.parametrize("backend,adjoint", [("odepipe", False), ("odepipe", True),
                                             ("torchdiffeq", False)])
def test_per_sample_time_grids_through_evolve(backend, adjoint):
    torch.manual_seed(0)
    model = Pipeline(GRUEncoder(latent_dim=L, obs_dim=2, hidden_size=8),
                     MLPDynamics(latent_dim=L, hidden_size=8),
                     SOLVERS["rk4"](step_size=0.1, backend=backend, adjoint=adjoint),
                     MLPDecoder(latent_dim=L, obs_dim=2), latent_dim=L)
    z0 = torch.randn(2, L, requires_grad=True)
    times = torch.tensor([[0.0, 0.3, 0.7, 1.2], [0.0, 0.25, 0.7, 0.9]])
    zt = model.evolve(z0, times)
    assert zt.shape == (2, 4, L)
    for b in range(2):  # each sample as if solved alone on its own grid
        alone = model.evolve(z0[b:b + 1].detach(), times[b])
        torch.testing.assert_close(zt[b], alone[0].detach(), rtol=1e-5, atol=1e-6)
    zt.sum().backward()
    assert z0.grad is not None and torch.isfinite(z0.grad).all()


def test_engine_is_deterministic():
    f, z0 = field(), torch.randn(B, L)
    times = torch.linspace(0, 1, 9)
    first = solve("dopri5", "odepipe", f, z0, times)
    again = solve("dopri5", "odepipe", f, z0, times)
    assert torch.equal(first[0], again[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], again[1]))


def test_spiral_step_benchmark_compares_backends_on_the_same_model(capsys):
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "benchmarks", "solver_overhead.py")
    spec = importlib.util.spec_from_file_location("solver_overhead", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        bench.main(["--spiral-step", "--spiral-steps", "2", "--spiral-overrides",
                    "data.n_spirals=8", "data.n_test=2", "train.batch_size=4"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "speed-up torchdiffeq/odepipe" in out
    worst = float(out.split("worst ")[1].split(",")[0])
    assert worst < 1e-5  # same model, same noise: the backends' losses agree to float noise


# -- devices: every tensor of a solve on the field's device ---------------------------------------
class _Devices(TorchDispatchMode):
    """Records the device of every tensor that goes into or comes out of each aten op (forward
    and backward), with the first op that touched each device."""

    def __init__(self):
        super().__init__()
        self.seen = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten((args, kwargs, out))[0]:
            if isinstance(t, torch.Tensor):
                self.seen.setdefault(t.device, str(func))
        return out


class _CheckedField(odepipe.Dynamics):
    """An MLP field that also checks the time and state it is handed share its weights' device."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, t, z):
        device = next(self.inner.parameters()).device
        assert t.device == z.device == device, (t.device, z.device, device)
        return self.inner(t, z)


def _devices_of_solve(solver, f, device, extra=None):
    """The devices seen while ``solver`` solves and backpropagates on ``device``. torch's default
    device is set to ``meta`` meanwhile, so a tensor made without an explicit device (the bug that
    puts a grid on the CPU beside a CUDA field) shows up as a meta tensor even on a CPU-only
    machine."""
    f = _CheckedField(f.to(device))
    z0 = torch.randn(B, L, device=device, requires_grad=True)
    times = torch.tensor([0.0, 0.2, 0.5, 0.65, 1.0], device=device)
    record = _Devices()
    with torch.device("meta"), record:
        zt = solver(f, z0, times if extra is None else extra(times))
        zt.pow(2).sum().backward()
    assert zt.device == z0.grad.device == device
    assert all(p.grad is not None and p.grad.device == device for p in f.parameters())
    return record.seen


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method,options", [
    ("rk4", {"step_size": 0.15}), ("euler", {}),                          # fixed grid
    ("rk4", {"step_size": 0.15, "adjoint": True}), ("heun2", {"adjoint": True}),  # adjoint
    ("dopri5", {"rtol": 1e-5, "atol": 1e-7}), ("tsit5", {}), ("bosh3", {})])    # adaptive
def test_a_solve_keeps_every_tensor_on_the_fields_device(device, method, options):
    solver = SOLVERS[method](**options)
    assert solver.uses_engine
    seen = _devices_of_solve(solver, field(), torch.device(device))
    host = torch.device("cpu")  # step control and grid arithmetic read floats on the host
    assert set(seen) <= {torch.device(device), host}, seen
    assert solver.nfe_forward > 0 and solver.nfe_backward == (solver.nfe_forward
                                                              if solver.adjoint else 0)


def test_the_device_check_catches_a_tensor_made_on_the_default_device():
    """The check above can fail: a field adding a bias made without ``device=`` is caught."""

    class Careless(odepipe.Dynamics):
        def __init__(self):
            super().__init__()
            self.inner = field()

        def forward(self, t, z):
            return self.inner(t, z) + torch.zeros(z.shape[-1]).to(z.dtype)

    with pytest.raises((NotImplementedError, RuntimeError, AssertionError)):
        seen = _devices_of_solve(SOLVERS["rk4"](step_size=0.15), Careless(), torch.device("cpu"))
        assert torch.device("meta") not in seen, seen


def test_device_auto_picks_cuda_when_present(monkeypatch):
    from odepipe.run.train import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(odepipe.OdepipeError, match="train.device"):
        pick_device("cuda")
