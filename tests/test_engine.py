"""The lean solver engine (plugins/latent_ode/engine): agreement with torchdiffeq and with exact
solutions, convergence orders, grid hygiene, the discrete adjoint, failures. Tiny sizes, float64
where a comparison should be exact to rounding."""
from __future__ import annotations

import importlib
import importlib.util
import math

import pytest
import torch
import torchdiffeq

engine = importlib.import_module("odepipe_plugins.latent_ode.engine")
grid_module = importlib.import_module(engine.__name__ + ".grid")
adjoint_module = importlib.import_module(engine.__name__ + ".adjoint")
solve_fixed, solve_adaptive = engine.solve_fixed, engine.solve_adaptive
solve_fixed_adjoint, NFECounter, SolverFailure = (engine.solve_fixed_adjoint, engine.NFECounter,
                                                  engine.SolverFailure)

TDQ_FIXED = ("euler", "midpoint", "heun2", "heun3", "rk4")
F64 = torch.float64


def _tdq_tsit5() -> bool:
    """Registers odepipe's tsit5 with torchdiffeq (0.2.x lacks it), the reference to match."""
    from odepipe_plugins.latent_ode.tsit5 import install

    install()
    return "tsit5" in importlib.import_module("torchdiffeq._impl.odeint").SOLVERS


class Field(torch.nn.Module):
    """A small time-dependent MLP field that counts its calls."""

    def __init__(self, dim: int = 3, dtype=F64, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, 16), torch.nn.Tanh(),
                                       torch.nn.Linear(16, dim)).to(dtype)
        self.calls = 0

    def forward(self, t, z):
        self.calls += 1
        return self.net(z) * torch.cos(t) - 0.1 * z


def _z0(b=4, dim=3, dtype=F64, seed=1):
    torch.manual_seed(seed)
    return torch.randn(b, dim, dtype=dtype)


UNIFORM = torch.linspace(0, 1.5, 7, dtype=F64)
IRREGULAR = torch.tensor([0.0, 0.13, 0.4, 0.41, 0.9, 1.5], dtype=F64)


# ---------------------------------------------------------------- against torchdiffeq

@pytest.mark.parametrize("method", TDQ_FIXED)
@pytest.mark.parametrize("step_size", [None, 0.05, 0.07, 0.5])
@pytest.mark.parametrize("times", [UNIFORM, IRREGULAR], ids=["uniform", "irregular"])
def test_fixed_matches_torchdiffeq(method, step_size, times):
    f, z0 = Field(), _z0()
    ours = solve_fixed(f, z0, times, method, step_size)
    options = {} if step_size is None else {"step_size": step_size}
    ref = torchdiffeq.odeint(f, z0, times, method=method, options=options).transpose(0, 1)
    assert ours.shape == ref.shape == (4, len(times), 3)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["rk4", "euler"])
def test_fixed_matches_torchdiffeq_float32(method):
    f, z0 = Field(dtype=torch.float32), _z0(dtype=torch.float32)
    times = torch.linspace(0, 2, 11)
    ours = solve_fixed(f, z0, times, method, 0.1)
    ref = torchdiffeq.odeint(f, z0, times, method=method, options={"step_size": 0.1})
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref.transpose(0, 1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "tsit5"])
@pytest.mark.parametrize("tol", [1e-3, 1e-7])
@pytest.mark.parametrize("times", [UNIFORM, IRREGULAR], ids=["uniform", "irregular"])
def test_adaptive_matches_torchdiffeq(method, tol, times):
    if method == "tsit5":
        assert _tdq_tsit5()
    f, z0 = Field(), _z0()
    counter = NFECounter()
    ours = solve_adaptive(f, z0, times, method, rtol=tol, atol=tol / 10, counter=counter)
    f.calls = 0
    ref = torchdiffeq.odeint(f, z0, times, method=method, rtol=tol, atol=tol / 10)
    assert counter.forward == f.calls          # the same steps, accepted and rejected
    torch.testing.assert_close(ours, ref.transpose(0, 1), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- exact solutions and orders

def _linear_problem():
    torch.manual_seed(3)
    a = torch.randn(3, 3, dtype=F64) * 0.7
    z0 = _z0()
    times = torch.tensor([0.0, 0.3, 1.0, 1.7, 2.0], dtype=F64)
    exact = torch.stack([z0 @ torch.linalg.matrix_exp(a * t).T for t in times], dim=1)
    return (lambda t, z: z @ a.T), z0, times, exact


@pytest.mark.parametrize("method", ["rk4", "rk4_classic", "dopri5", "tsit5", "heun3"])
def test_fixed_against_matrix_exponential(method):
    f, z0, times, exact = _linear_problem()
    torch.testing.assert_close(solve_fixed(f, z0, times, method, 0.01), exact,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method,tol", [("dopri5", 1e-7), ("tsit5", 1e-7), ("bosh3", 1e-6)])
def test_adaptive_against_matrix_exponential(method, tol):
    f, z0, times, exact = _linear_problem()
    out = solve_adaptive(f, z0, times, method, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out, exact, rtol=tol, atol=tol)


#: method: (order, a step already in the asymptotic range but above float64 round-off)
ORDERS = {"euler": (1, 0.05), "midpoint": (2, 0.0125), "heun2": (2, 0.05), "heun3": (3, 0.025),
          "rk4": (4, 0.025), "rk38": (4, 0.025), "rk4_classic": (4, 0.1), "bosh3": (3, 0.05),
          "dopri5": (5, 0.2), "tsit5": (5, 0.1)}


@pytest.mark.parametrize("method", sorted(ORDERS))
def test_convergence_order(method):
    """dz/dt = cos(t) z, z = z0 exp(sin t): the error ratio between h and h/2 gives the order
    (tsit5's small leading error term makes it look a little better than 5 at this h)."""
    order, h = ORDERS[method]
    z0 = torch.tensor([[1.0], [0.5]], dtype=F64)
    times = torch.tensor([0.0, 2.0], dtype=F64)
    exact = z0 * math.exp(math.sin(2.0))
    errors = [(solve_fixed(lambda t, z: torch.cos(t) * z, z0, times, method, step)[:, -1]
               - exact).abs().max().item() for step in (h, h / 2)]
    assert order - 0.3 < math.log2(errors[0] / errors[1]) < order + 0.7


# ---------------------------------------------------------------- grid hygiene

@pytest.mark.parametrize("h", [0.1, 0.01, 0.05, 0.3, 1 / 3])
def test_no_zero_length_steps_on_exact_multiples(h):
    for k in range(1, 41):
        times = torch.tensor([0.0, k * h], dtype=F64)
        counter = NFECounter()
        solve_fixed(lambda t, z: -z, _z0(1), times, "rk4", h, counter=counter)
        assert counter.forward == 4 * k, (h, k)
        plan = grid_module.make_plan(times, h)
        steps = [b - a for a, b in zip(plan.grid, plan.grid[1:])]
        assert min(steps) > h * (1 - 1e-6)


def test_float32_times_on_multiples_are_whole_steps():
    # float32(0.3) = 0.30000001192...: a 1e-7 stub step would cost a full rk4 step
    counter = NFECounter()
    solve_fixed(lambda t, z: -z, _z0(1, dtype=torch.float32),
                torch.tensor([0.0, 0.3], dtype=torch.float32), "rk4", 0.1, counter=counter)
    assert counter.forward == 12


def test_short_last_step_when_span_is_not_a_multiple():
    plan = grid_module.make_plan(torch.tensor([0.0, 0.25], dtype=F64), 0.1)
    assert plan.grid == pytest.approx([0.0, 0.1, 0.2, 0.25])


def test_step_size_none_steps_between_outputs():
    counter = NFECounter()
    solve_fixed(Field(), _z0(), IRREGULAR, "midpoint", None, counter=counter)
    assert counter.forward == 2 * (len(IRREGULAR) - 1)


def test_outputs_on_the_grid_are_grid_states_not_interpolations():
    times = torch.linspace(0, 1, 6, dtype=F64)            # 0.2 * k, up to rounding
    plan = grid_module.make_plan(times, 0.1)
    assert plan.steps == 10 and not any(plan.w)
    assert plan.lo == [0, 2, 4, 6, 8, 10]
    f, z0 = Field(), _z0()
    fine = solve_fixed(f, z0, torch.linspace(0, 1, 11, dtype=F64), "rk4", None)
    torch.testing.assert_close(solve_fixed(f, z0, times, "rk4", 0.1), fine[:, ::2],
                               rtol=1e-14, atol=1e-14)


# ---------------------------------------------------------------- shapes, dtypes, edge cases

@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_batch_first_dtype_and_initial_state(dtype):
    f, z0 = Field(dtype=dtype), _z0(5, dtype=dtype)
    seen = []

    def field(t, z):
        seen.append((t.dtype, t.dim(), z.dtype))
        return f(t, z)

    times = IRREGULAR.to(dtype)
    params = tuple(f.parameters())
    outs = [solve_fixed(field, z0, times, "rk4", 0.1),
            solve_adaptive(field, z0, times, "dopri5", rtol=1e-5, atol=1e-6),
            solve_fixed_adjoint(field, z0, times, "rk4", params, 0.1)]
    for out in outs:
        assert out.shape == (5, len(times), 3) and out.dtype == dtype
        assert out.device == z0.device
        assert torch.equal(out[:, 0], z0)
    assert set(seen) == {(dtype, 0, dtype)}


def test_single_output_time_is_the_initial_state():
    z0 = _z0()
    t = torch.tensor([0.3], dtype=F64)
    for out in (solve_fixed(Field(), z0, t), solve_adaptive(Field(), z0, t)):
        assert out.shape == (4, 1, 3) and torch.equal(out[:, 0], z0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown fixed-grid method"):
        solve_fixed(Field(), _z0(), UNIFORM, "rk5")
    with pytest.raises(ValueError, match="unknown adaptive method"):
        solve_adaptive(Field(), _z0(), UNIFORM, "euler")
    with pytest.raises(ValueError, match="strictly increasing"):
        solve_fixed(Field(), _z0(), torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="step_size"):
        solve_fixed(Field(), _z0(), UNIFORM, "rk4", -0.1)


def test_backward_is_a_stack_not_slice_writes():
    # the output is a batch-first view (TransposeBackward) of one stack of the states
    z0 = _z0().requires_grad_()
    out = solve_fixed(Field(), z0, UNIFORM, "rk4")
    assert "Stack" in out.grad_fn.next_functions[0][0].name()


def test_pi_controller_solves_accurately():
    f, z0, times, exact = _linear_problem()
    out = solve_adaptive(f, z0, times, "dopri5", rtol=1e-9, atol=1e-11, controller="pi")
    torch.testing.assert_close(out, exact, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- adjoint

@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4", "dopri5"])
@pytest.mark.parametrize("step_size", [None, 0.05, 0.3])
@pytest.mark.parametrize("times", [UNIFORM, IRREGULAR], ids=["uniform", "irregular"])
def test_adjoint_gradients_equal_backprop(method, step_size, times):
    f = Field()
    params = tuple(f.parameters())
    z0 = _z0().requires_grad_()
    weights = torch.randn(4, len(times), 3, dtype=F64)
    counter = NFECounter()
    out = solve_fixed_adjoint(f, z0, times, method, params, step_size, counter=counter)
    grads = torch.autograd.grad((out * weights).sum(), (z0,) + params)
    ref = solve_fixed(f, z0, times, method, step_size)
    ref_grads = torch.autograd.grad((ref * weights).sum(), (z0,) + params)
    assert torch.equal(out, ref)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    assert counter.backward == counter.forward > 0


def test_adjoint_long_gaps_use_two_level_checkpoints(monkeypatch):
    monkeypatch.setattr(adjoint_module, "STORE_ALL", 3)
    f = Field()
    params = tuple(f.parameters())
    z0 = _z0().requires_grad_()
    times = torch.tensor([0.0, 0.2, 1.0], dtype=F64)
    counter = NFECounter()
    out = solve_fixed_adjoint(f, z0, times, "rk4", params, 0.01, counter=counter)
    grads = torch.autograd.grad(out.pow(2).sum(), (z0,) + params)
    ref_grads = torch.autograd.grad(solve_fixed(f, z0, times, "rk4", 0.01).pow(2).sum(),
                                    (z0,) + params)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    assert counter.backward == counter.forward == 400
    assert counter.recompute > counter.backward    # the price of the bounded memory


@pytest.mark.parametrize("chunk_steps", [1, 3, 50])
def test_adjoint_chunk_sizes_give_the_same_gradients(chunk_steps):
    f = Field()
    params = tuple(f.parameters())
    z0 = _z0().requires_grad_()
    counter = NFECounter()
    out = solve_fixed_adjoint(f, z0, IRREGULAR, "heun3", params, 0.05, counter=counter,
                              chunk_steps=chunk_steps)
    grads = torch.autograd.grad(out.pow(2).sum(), (z0,) + params)
    ref = solve_fixed(f, z0, IRREGULAR, "heun3", 0.05)
    ref_grads = torch.autograd.grad(ref.pow(2).sum(), (z0,) + params)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
    assert counter.backward == counter.forward == 3 * 30


def test_adjoint_segments_merge_short_intervals_and_isolate_long_ones():
    segments = adjoint_module._segments
    assert segments([0, 1, 2, 3], 4, 8) == [(0, 4)]
    assert segments([0, 1, 2, 3], 4, 2) == [(0, 2), (2, 4)]
    assert segments([0, 2, 30], 32, 8) == [(0, 2), (2, 30), (30, 32)]
    assert segments([0], 100, 8) == [(0, 100)]


def test_adjoint_params_partial_and_frozen():
    f = Field()
    frozen, *live = f.parameters()
    frozen.requires_grad_(False)
    z0 = _z0()                                       # no gradient wanted for z0
    out = solve_fixed_adjoint(f, z0, UNIFORM, "rk4", (frozen, *live), 0.1)
    grads = torch.autograd.grad(out.sum(), live)
    ref = torch.autograd.grad(solve_fixed(f, z0, UNIFORM, "rk4", 0.1).sum(), live)
    for g, r in zip(grads, ref):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_adjoint_forward_runs_without_graph():
    f = Field()
    grad_modes = []

    def field(t, z):
        grad_modes.append(torch.is_grad_enabled())
        return f(t, z)

    z0 = _z0().requires_grad_()
    out = solve_fixed_adjoint(field, z0, UNIFORM, "euler", tuple(f.parameters()))
    assert not any(grad_modes)
    out.sum().backward()
    assert z0.grad is not None and any(grad_modes)


# ---------------------------------------------------------------- failures

def test_blow_up_underflows_into_solver_failure():
    counter = NFECounter()
    with pytest.raises(SolverFailure, match="underflow") as info:
        solve_adaptive(lambda t, z: z * z, torch.ones(1, 1, dtype=F64),
                       torch.tensor([0.0, 2.0], dtype=F64), "dopri5", rtol=1e-6, atol=1e-8,
                       counter=counter)
    assert info.value.reason == "underflow" and info.value.t == pytest.approx(1.0, abs=1e-3)
    assert isinstance(info.value, RuntimeError) and counter.forward > 0


def test_non_finite_field_is_a_solver_failure():
    def field(t, z):
        return torch.where(t > 0.5, z * float("nan"), -z)

    with pytest.raises(SolverFailure) as info:
        solve_adaptive(field, _z0(), UNIFORM, "tsit5", rtol=1e-5, atol=1e-6)
    assert info.value.reason == "non_finite"
    with pytest.raises(SolverFailure) as info:
        solve_adaptive(lambda t, z: -z, torch.full((2, 2), float("inf"), dtype=F64), UNIFORM)
    assert info.value.reason == "non_finite"


def test_max_num_steps_is_a_solver_failure():
    with pytest.raises(SolverFailure, match="max_num_steps") as info:
        solve_adaptive(Field(), _z0(), UNIFORM, "dopri5", rtol=1e-10, atol=1e-12,
                       max_num_steps=5)
    assert info.value.reason == "max_num_steps" and info.value.steps == 5
