"""The training run's Adam: fused where torch has a kernel for the parameters, else foreach."""

import torch

from odepipe.run.optimizer import adam


def _params():
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]


def test_cpu_parameters_get_the_fused_adam_and_the_same_updates_as_foreach():
    fused_params, foreach_params = _params(), _params()
    fused = adam(fused_params, lr=1e-2, weight_decay=1e-3)
    foreach = torch.optim.Adam(foreach_params, lr=1e-2, weight_decay=1e-3, foreach=True)
    assert fused.defaults["fused"] is True
    for step in range(5):
        for opt, params in ((fused, fused_params), (foreach, foreach_params)):
            opt.zero_grad()
            sum(((p * (step + 1)) ** 2).sum() for p in params).backward()
            opt.step()
    for a, b, start in zip(fused_params, foreach_params, _params()):
        assert torch.allclose(a, b, atol=1e-6)
        assert not torch.allclose(a, start, atol=1e-2)  # they did move


def test_falls_back_to_foreach_where_torch_refuses_fused(monkeypatch):
    real = torch.optim.Adam

    def no_fused(params, **kwargs):
        if kwargs.get("fused"):
            raise RuntimeError("`fused=True` requires all the params to be floating point")
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", no_fused)
    opt = adam(_params(), lr=1e-3, weight_decay=0.0)
    assert opt.defaults["foreach"] is True and not opt.defaults["fused"]


def test_a_training_run_uses_it(tmp_path):
    from conftest import TINY_SPIRAL

    import odepipe
    from odepipe.run.train import Training

    recipe = odepipe.load_recipe("spiral", TINY_SPIRAL)
    training = Training(recipe, odepipe.Run(str(tmp_path / "run")), progress=False)
    training.set_up(resume=False)
    assert training.optimizer.defaults["fused"] is True
