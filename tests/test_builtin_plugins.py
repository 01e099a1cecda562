"""Each built-in plugin's contract: shapes, gradients flow, function evaluations counted."""
import pytest
import torch

import odepipe
from odepipe import Batch, Posterior
from odepipe_plugins.series.spiral import SpiralData
from odepipe_plugins.latent_ode.decoders import LinearDecoder, MLPDecoder
from odepipe_plugins.latent_ode.dynamics import MLPDynamics
from odepipe_plugins.latent_ode.encoders import ElmanEncoder, GRUEncoder, LSTMEncoder, reverse_within_length
from odepipe_plugins.latent_ode.solvers import ADAPTIVE, FIXED, SOLVERS

B, T, D, L = 3, 7, 2, 4


def series_batch(mask=False):
    values = torch.randn(B, T, D)
    m = (torch.rand(B, T, D) > 0.3).float() if mask else None
    return Batch(times=torch.linspace(0, 1, T), values=values, mask=m)


def token_batch():
    tokens = torch.randint(0, 11, (B, T))
    mask = torch.ones(B, T)
    mask[0, 4:] = 0
    return Batch(times=torch.arange(T, dtype=torch.float32), tokens=tokens, mask=mask)


@pytest.mark.parametrize("cls", [ElmanEncoder, GRUEncoder, LSTMEncoder])
@pytest.mark.parametrize("kind", ["series", "masked", "tokens"])
def test_encoder_contract(cls, kind):
    if kind == "tokens":
        enc, batch = cls(latent_dim=L, vocab_size=11, hidden_size=6, embedding_dim=5), token_batch()
    else:
        enc, batch = cls(latent_dim=L, obs_dim=D, hidden_size=6), series_batch(kind == "masked")
    post = enc(batch)
    assert isinstance(post, Posterior)
    assert post.mean.shape == (B, L) and post.logvar.shape == (B, L)
    post.sample().sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad
               and not (kind != "tokens" and p is getattr(enc.embedding, "weight", None)))


def test_encoder_ignores_token_padding():
    enc = GRUEncoder(latent_dim=L, vocab_size=11, hidden_size=6, embedding_dim=5)
    batch = token_batch()
    other = Batch(times=batch.times, tokens=batch.tokens.clone(), mask=batch.mask)
    other.tokens[0, 4:] = (batch.tokens[0, 4:] + 1) % 11  # change only padded positions
    torch.testing.assert_close(enc(batch).mean, enc(other).mean)


def test_encoder_reads_in_reverse_time():
    x = torch.arange(5.).view(1, 5, 1).repeat(2, 1, 1)
    out = reverse_within_length(x, torch.tensor([5, 3]))
    assert out[0, :, 0].tolist() == [4, 3, 2, 1, 0]
    assert out[1, :, 0].tolist() == [2, 1, 0, 3, 4]


@pytest.mark.parametrize("activation", ["elu", "tanh", "softplus"])
@pytest.mark.parametrize("time_dependent", [False, True])
def test_dynamics_contract(activation, time_dependent):
    f = MLPDynamics(latent_dim=L, hidden_size=8, num_layers=3, activation=activation,
                    time_dependent=time_dependent)
    z = torch.randn(B, L)
    dz = f(torch.tensor(0.5), z)
    assert dz.shape == (B, L)
    if time_dependent:
        assert not torch.allclose(dz, f(torch.tensor(2.0), z))
    dz.sum().backward()
    assert all(p.grad is not None for p in f.parameters())


def test_dynamics_rejects_unknown_activation():
    with pytest.raises(odepipe.ModelError, match="activation"):
        MLPDynamics(latent_dim=L, activation="gelu")


#: engine-only methods have no torchdiffeq path (tests/test_solvers.py checks the refusal)
SOLVER_CASES = [(m, b) for b in ("odepipe", "torchdiffeq") for m in ADAPTIVE + FIXED
                if not (b == "torchdiffeq" and m in ("heun2", "rk4_classic"))]


@pytest.mark.parametrize("method, backend", SOLVER_CASES)
@pytest.mark.parametrize("adjoint", [False, True])
def test_solver_contract(method, adjoint, backend):
    solver = SOLVERS[method](rtol=1e-3, atol=1e-4, step_size=0.25, adjoint=adjoint,
                             backend=backend)
    f = MLPDynamics(latent_dim=L, hidden_size=8)
    z0 = torch.randn(B, L, requires_grad=True)
    times = torch.linspace(0, 1, 5)
    zt = solver(f, z0, times)
    assert zt.shape == (B, 5, L)
    torch.testing.assert_close(zt[:, 0], z0)
    assert solver.nfe_forward > 0 and solver.nfe_backward == 0
    zt.pow(2).sum().backward()
    assert z0.grad is not None and all(p.grad is not None for p in f.parameters())
    assert (solver.nfe_backward > 0) == adjoint


def test_adjoint_and_backprop_agree():
    f = MLPDynamics(latent_dim=L, hidden_size=8)
    z0 = torch.randn(B, L)
    times = torch.linspace(0, 1, 4)
    grads = []
    for adjoint in (False, True):
        f.zero_grad()
        SOLVERS["dopri5"](rtol=1e-7, atol=1e-9, adjoint=adjoint)(f, z0, times).sum().backward()
        grads.append([p.grad.clone() for p in f.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("method", ["tsit5", "dopri5", "rk4"])
def test_solvers_match_the_exact_solution(method):
    class Decay(odepipe.Dynamics):
        def forward(self, t, z):
            return -z

    z0 = torch.ones(2, 3, dtype=torch.float64)
    times = torch.linspace(0, 2, 5, dtype=torch.float64)
    solver = SOLVERS[method](rtol=1e-8, atol=1e-10, step_size=0.01)
    zt = solver(Decay(), z0, times)
    exact = torch.exp(-times).view(1, -1, 1).expand_as(zt)
    torch.testing.assert_close(zt, exact, rtol=1e-6, atol=1e-7)


def test_solver_failure_names_the_fix():
    class Explode(odepipe.Dynamics):
        def forward(self, t, z):
            return z ** 3 * 1e3

    solver = SOLVERS["dopri5"](max_num_steps=5)
    with pytest.raises(odepipe.SolverError, match="solver.max_num_steps|fixed-step"):
        solver(Explode(), torch.ones(1, 2) * 10, torch.linspace(0, 1, 3))


@pytest.mark.parametrize("bad", [{"rtol": 0}, {"atol": -1}, {"step_size": 0}, {"max_num_steps": 0}])
def test_solver_rejects_bad_options(bad):
    with pytest.raises(odepipe.ModelError):
        SOLVERS["rk4"](**bad)


@pytest.mark.parametrize("cls", [MLPDecoder, LinearDecoder])
@pytest.mark.parametrize("learn_std", [False, True])
def test_decoder_contract(cls, learn_std):
    dec = cls(latent_dim=L, obs_dim=D, learn_std=learn_std)
    batch = series_batch()
    dist = dec(torch.randn(B, T, L), batch)
    assert isinstance(dist, torch.distributions.Distribution)
    lp = dist.log_prob(batch.values)
    assert lp.shape == (B, T, D)
    lp.sum().backward()
    assert (dec.log_std.grad is not None) == learn_std


def test_spiral_data_contract():
    data = SpiralData(seed=3, n_spirals=20, n_test=5)
    assert data.dims() == {"obs_dim": 2}
    train, test = data.dataset("train"), data.dataset("test")
    assert len(train) == 20 and len(test) == 5 and not set(train) & set(test)
    batch = data.collate(train[:4])
    assert batch.values.shape == (4, 100, 2) and batch.times.shape == (100,)
    assert batch.extras["future"].shape == (4, 100, 2)
    assert torch.all(torch.diff(batch.times) > 0)
    # the noise is the noise: observed minus clean has roughly the configured std
    assert 0.25 < float((batch.values - batch.extras["clean"]).std()) < 0.35
    again = SpiralData(seed=3, n_spirals=20, n_test=5).collate(train[:4])
    torch.testing.assert_close(batch.values, again.values)
    assert not torch.allclose(SpiralData(seed=4, n_spirals=20, n_test=5).collate(train[:4]).values,
                              batch.values)


def test_spiral_continuation_follows_the_curve():
    data = SpiralData(seed=0, n_spirals=4, n_test=16, noise_std=0.0)
    batch = data.collate(data.dataset("test"))
    joined = torch.cat([batch.extras["clean"], batch.extras["future"]], dim=1)
    steps = (joined[:, 1:] - joined[:, :-1]).norm(dim=-1)
    assert float(steps.max()) < 1.0  # no jumps between the window and its continuation


def test_spiral_training_windows_cover_the_whole_curve():
    # the example draws starts up to n_total - n_observed; the test continuations reach that far
    data = SpiralData(seed=0, n_spirals=400, n_test=50)
    assert not torch.isnan(data.clean[:400, :100]).any()  # observed windows are complete
    assert torch.isnan(data.clean[:400, 100:]).any()  # some training starts are past 300
    assert not torch.isnan(data.clean[400:]).any()  # every test spiral has its continuation


def test_spiral_irregular_mask():
    data = SpiralData(seed=0, n_spirals=6, n_test=2, n_irregular=30)
    batch = data.collate(range(6))
    assert batch.mask.shape == (6, 100) and torch.all(batch.mask.sum(1) == 30)


def test_spiral_rejects_bad_sizes():
    with pytest.raises(odepipe.DataError, match="n_total"):
        SpiralData(n_total=150)
