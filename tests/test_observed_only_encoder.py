"""The recurrent encoders' ``observed_only`` mode: an irregular series is read as its own
sequence of observations with the real gaps between them, not as the shared grid plus mask."""
import torch
from odepipe_plugins.latent_ode.encoders import GRUEncoder, LSTMEncoder

from odepipe import Batch


def _batch(B=3, T=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(B, T, 2, generator=g)
    mask = (torch.rand(B, T, generator=g) > 0.5).float()
    mask[:, 0] = 0.0  # no sample is seen at t0, so the way back to it counts
    mask[0, 4] = mask[1, 2] = mask[2, 7] = 1.0  # everyone has a point
    times = torch.linspace(0.0, 2.0, T) ** 1.5  # uneven grid
    return Batch(times=times, values=values, mask=mask)


def test_it_reads_each_samples_observations_with_their_real_gaps():
    torch.manual_seed(0)
    enc = GRUEncoder(latent_dim=3, obs_dim=2, hidden_size=5, observed_only=True).eval()
    batch = _batch()
    got = enc(batch).mean
    for b in range(3):
        seen = batch.mask[b] > 0
        t = batch.times[seen]
        gaps = torch.diff(t, prepend=batch.times[:1])  # the first: from t0 to the first point
        x = torch.cat([batch.values[b, seen], torch.ones(len(t), 2), gaps[:, None]], -1)
        _, h = enc.rnn(torch.flip(x, dims=[0])[None])  # reverse time, as the encoder reads
        want = enc.to_posterior(h[-1]).chunk(2, dim=-1)[0][0]
        assert torch.allclose(got[b], want, atol=1e-6)


def test_unobserved_grid_points_change_nothing_only_with_observed_only():
    torch.manual_seed(1)
    batch = _batch()
    T = batch.times.shape[0]
    # a finer grid: an unobserved point inserted after every point, values garbage
    times = torch.stack([batch.times, batch.times + 0.01], 1).reshape(-1)
    values = torch.randn(3, 2 * T, 2) * 100
    values[:, ::2] = batch.values
    mask = torch.zeros(3, 2 * T)
    mask[:, ::2] = batch.mask
    finer = Batch(times=times, values=values, mask=mask)
    for cls in (GRUEncoder, LSTMEncoder):
        only = cls(latent_dim=2, obs_dim=2, hidden_size=4, observed_only=True).eval()
        assert torch.allclose(only(batch).mean, only(finer).mean, atol=1e-6)
        grid = cls(latent_dim=2, obs_dim=2, hidden_size=4).eval()
        grid.load_state_dict(only.state_dict())
        assert not torch.allclose(grid(batch).mean, grid(finer).mean, atol=1e-4)


def test_a_partly_observed_point_is_read_with_its_coordinate_mask():
    torch.manual_seed(2)
    enc = GRUEncoder(latent_dim=2, obs_dim=2, hidden_size=4, observed_only=True).eval()
    batch = _batch()
    mask = batch.mask[..., None].repeat(1, 1, 2)
    mask[0, 4, 1] = 0.0  # sample 0 sees only x at its point 4
    part = enc(Batch(times=batch.times, values=batch.values, mask=mask)).mean
    whole = enc(batch).mean
    assert torch.allclose(part[1:], whole[1:], atol=1e-6)
    assert not torch.allclose(part[0], whole[0], atol=1e-4)
    changed = batch.values.clone()
    changed[0, 4, 1] += 50.0  # the unseen coordinate
    again = enc(Batch(times=batch.times, values=changed, mask=mask)).mean
    assert torch.allclose(again, part, atol=1e-6)
