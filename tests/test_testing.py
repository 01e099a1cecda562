"""odepipe.testing: the contract checks pass on good components and catch each broken one."""
from __future__ import annotations

import types

import pytest
import torch
from torch import nn

import odepipe
from odepipe import Batch, DataSource, Decoder, Dynamics, Encoder, Posterior, Solver, testing
from odepipe.testing import ContractError

torch.set_num_threads(1)


# -- good components, and a plugin implementing the encoder and solver hooks -------------------
class MeanEncoder(Encoder):
    """Posterior from a linear map of the time-averaged observation."""

    def __init__(self, latent_dim: int, obs_dim: int):
        super().__init__()
        self.net = nn.Linear(obs_dim, 2 * latent_dim)

    def forward(self, batch: Batch) -> Posterior:
        mean, logvar = self.net(batch.values.mean(1)).chunk(2, dim=-1)
        return Posterior(mean, logvar)


class EulerSolver(Solver):
    """Fixed-step Euler on the grid itself."""

    def forward(self, dynamics, z0, times):
        states = [z0]
        for t0, t1 in zip(times[:-1], times[1:]):
            self.nfe_forward += 1
            states.append(states[-1] + (t1 - t0) * dynamics(t0, states[-1]))
        return torch.stack(states, dim=1)  # (B, T, L)


@odepipe.hookimpl
def odepipe_register_encoders(register):
    register("mean_encoder", MeanEncoder)


@odepipe.hookimpl
def odepipe_register_solvers(register):
    register("grid_euler", EulerSolver)


def _as_plugin() -> types.ModuleType:
    module = types.ModuleType("contract_test_plugin")
    module.odepipe_register_encoders = odepipe_register_encoders
    module.odepipe_register_solvers = odepipe_register_solvers
    return module


def test_check_plugin_runs_every_contract_on_a_plugin():
    assert testing.check_plugin(_as_plugin()) == ["encoders:mean_encoder", "solvers:grid_euler"]


def test_check_plugin_fails_on_what_odepipe_would_skip():
    @odepipe.hookimpl
    def odepipe_register_encoder(register):  # misspelled
        pass

    module = types.ModuleType("misspelled_plugin")
    module.odepipe_register_encoder = odepipe_register_encoder
    with pytest.raises(ContractError, match="odepipe would skip plugin misspelled_plugin: "
                                            "unknown hook 'odepipe_register_encoder'"):
        testing.check_plugin(module)


@pytest.mark.parametrize("module", ["latent_ode", "series", "irregular", "depth"])
def test_builtin_plugins_pass_their_contracts(module):
    import importlib

    params = {"data_sources:csv": {"path": "data/example_series.csv"}}
    assert testing.check_plugin(importlib.import_module(f"odepipe_plugins.{module}"),
                                params=params)


def test_check_plugin_names_the_component_whose_constructor_fails():
    import importlib

    with pytest.raises(ContractError, match="data_sources:csv: building CSVData .* failed"):
        testing.check_plugin(importlib.import_module("odepipe_plugins.series"))


@pytest.mark.parametrize("threads", [1, 2])
def test_example_plugin_passes_its_contracts(threads, example_plugin):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        checked = testing.check_plugin(example_plugin)
    finally:
        torch.set_num_threads(previous)
    assert sorted(checked) == [
        "data_sources:damped_oscillator", "decoders:student_t", "dynamics:damped_linear"]


# -- each check catches a broken component ------------------------------------------------------
class TupleEncoder(MeanEncoder):
    def forward(self, batch):
        post = super().forward(batch)
        return post.mean, post.logvar


class WideEncoder(MeanEncoder):
    def forward(self, batch):
        post = super().forward(batch)
        return Posterior(post.mean.repeat(1, 2), post.logvar.repeat(1, 2))


class UnusedParamEncoder(MeanEncoder):
    def __init__(self, latent_dim, obs_dim):
        super().__init__(latent_dim, obs_dim)
        self.unused = nn.Parameter(torch.zeros(3))


@pytest.mark.parametrize("cls, message", [
    (TupleEncoder, "returned tuple, expected odepipe.Posterior"),
    (WideEncoder, "has 6 latent dimensions, expected latent_dim=3"),
    (UnusedParamEncoder, "no gradient reached parameter.s. unused"),
])
def test_check_encoder_catches(cls, message):
    with pytest.raises(ContractError, match=message):
        testing.check_encoder(cls(latent_dim=3, obs_dim=2), testing.make_batch(), latent_dim=3)


class GoodField(Dynamics):
    def __init__(self, latent_dim):
        super().__init__()
        self.lin = nn.Linear(latent_dim, latent_dim)

    def forward(self, t, z):
        return torch.tanh(self.lin(z))


class ShapeField(GoodField):
    def forward(self, t, z):
        return super().forward(t, z)[:, :1]


def test_check_dynamics_passes_a_good_field():
    assert testing.check_dynamics(GoodField(3), latent_dim=3).shape == (3, 3)


def test_check_dynamics_catches_a_wrong_shape():
    with pytest.raises(ContractError, match=r"must return the shape of z \(3, 3\), got \(3, 1\)"):
        testing.check_dynamics(ShapeField(3), latent_dim=3)


class CapturedModuleField(GoodField):
    """Hides a module from registration: backprop trains it, the adjoint never would."""

    def __init__(self, latent_dim):
        super().__init__(latent_dim)
        self.__dict__["outside"] = nn.Linear(latent_dim, latent_dim)

    def forward(self, t, z):
        return super().forward(t, z) + self.outside(z)


class TensorAttributeField(GoodField):
    def __init__(self, latent_dim):
        super().__init__(latent_dim)
        self.rate = torch.ones(()).requires_grad_()

    def forward(self, t, z):
        return super().forward(t, z) * self.rate


class StatefulField(GoodField):
    """Changes with every call, so the backward solve sees a different field."""

    def __init__(self, latent_dim):
        super().__init__(latent_dim)
        self.calls = 0

    def forward(self, t, z):
        self.calls += 1
        return super().forward(t, z) * 3.0 / (1.0 + 0.1 * self.calls)


@pytest.mark.parametrize("cls, message", [
    (CapturedModuleField, "holds trainable module 'outside' outside its registered parameters"),
    (TensorAttributeField, "holds trainable tensor 'rate'"),
    (StatefulField, "adjoint gradient of .* differs from backprop"),
])
def test_check_dynamics_catches_a_field_that_breaks_the_adjoint(cls, message):
    with pytest.raises(ContractError, match=message):
        testing.check_dynamics(cls(3), latent_dim=3)


def test_check_dynamics_refuses_a_non_module():
    with pytest.raises(ContractError, match="is not an odepipe.Dynamics"):
        testing.check_dynamics(lambda t, z: -z, latent_dim=3)


class RotationField(Dynamics):
    """A correct field whose rotation leaves ||z||^2 alone: under that loss its true gradient
    is exactly 0 and both methods return solver noise."""

    def __init__(self, latent_dim):
        super().__init__()
        self.skew = nn.Parameter(torch.randn(latent_dim, latent_dim))
        self.damping = nn.Parameter(torch.full((latent_dim,), 0.1))

    def forward(self, t, z):
        return z @ (self.skew - self.skew.T - torch.diag(self.damping)).T


class ZeroGradField(GoodField):
    """A correct field with a gate at 0 behind a ReLU: that parameter's gradient is 0 at init."""

    def __init__(self, latent_dim):
        super().__init__(latent_dim)
        self.gate = nn.Parameter(torch.full((latent_dim,), -1.0))

    def forward(self, t, z):
        return super().forward(t, z) + torch.relu(self.gate) * z


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cls", [RotationField, ZeroGradField])
def test_check_dynamics_passes_correct_fields_with_noise_level_gradients(cls, threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        testing.check_dynamics(cls(4), latent_dim=4)
    finally:
        torch.set_num_threads(previous)


def test_gradients_below_the_noise_floor_count_as_equal():
    big = torch.ones(10)
    a, b = torch.full((3,), 7e-6), torch.full((3,), -5e-6)
    assert testing.gradient_mismatch(a, b, [big, a], rtol=1e-2) is None
    # the same two values are a real mismatch when they are the whole gradient
    assert testing.gradient_mismatch(a, b, [a], rtol=1e-2) is not None
    assert testing.gradient_mismatch(big, 1.5 * big, [big], rtol=1e-2) is not None


class NoCountSolver(EulerSolver):
    def forward(self, dynamics, z0, times):
        out = super().forward(dynamics, z0, times)
        self.nfe_forward = 0
        return out


class TimeFirstSolver(EulerSolver):
    def forward(self, dynamics, z0, times):
        return super().forward(dynamics, z0, times).transpose(0, 1)


@pytest.mark.parametrize("cls, message", [
    (NoCountSolver, "did not count field evaluations"),
    (TimeFirstSolver, r"must return \(B, T, L\) = \(3, 4, 3\), got \(4, 3, 3\)"),
])
def test_check_solver_catches(cls, message):
    with pytest.raises(ContractError, match=message):
        testing.check_solver(cls())


class NormalDecoder(Decoder):
    def __init__(self, latent_dim, obs_dim):
        super().__init__()
        self.net = nn.Linear(latent_dim, obs_dim)

    def forward(self, z, batch):
        return torch.distributions.Normal(self.net(z), 1.0)


class IndependentDecoder(NormalDecoder):
    def forward(self, z, batch):
        return torch.distributions.Independent(super().forward(z, batch), 1)


class TensorDecoder(NormalDecoder):
    def forward(self, z, batch):
        return self.net(z)


@pytest.mark.parametrize("cls, message", [
    (IndependentDecoder, r"log_prob of the batch's data has shape \(3, 5\), expected \(3, 5, 2\)"),
    (TensorDecoder, "returned Tensor, expected a torch.distributions.Distribution"),
])
def test_check_decoder_catches(cls, message):
    testing.check_decoder(NormalDecoder(3, 2), latent_dim=3)
    with pytest.raises(ContractError, match=message):
        testing.check_decoder(cls(3, 2), latent_dim=3)


class ToyData(DataSource):
    def __init__(self, seed: int = 0, **broken):
        self.broken = broken

    def dims(self):
        return self.broken.get("dims", {"obs_dim": 2})

    def dataset(self, split):
        return [] if self.broken.get("empty") == split else list(range(4))

    def collate(self, items):
        B = len(items)
        times = torch.linspace(0, 1, 6)
        if self.broken.get("times"):
            times = times.flip(0)
        values = torch.zeros(B, 6, 2)
        if self.broken.get("flat"):
            values = values[:, :, 0]
        return Batch(times=times, values=values)


@pytest.mark.parametrize("broken, message", [
    ({}, None),
    ({"dims": {"vocab": 3}}, "dims.. must give positive ints for obs_dim or vocab_size"),
    ({"dims": {"obs_dim": 3}}, "values have D=2 but dims.. says"),
    ({"empty": "test"}, "split 'test' is empty"),
    ({"times": True}, "times must be strictly increasing"),
    ({"flat": True}, r"values must be float \(B, T, D\)"),
])
def test_check_data_source(broken, message):
    if message is None:
        assert set(testing.check_data_source(ToyData())) == {"train", "test"}
        return
    with pytest.raises(ContractError, match=message):
        testing.check_data_source(ToyData(**broken))


def test_contract_errors_are_assertion_errors():
    assert issubclass(ContractError, AssertionError)
