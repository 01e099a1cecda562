import pytest
from torch import nn

import odepipe
from odepipe.errors import RegistryError
from odepipe.registry import Registry


class Enc(odepipe.Encoder):
    """A test encoder."""

    def forward(self, batch):
        raise NotImplementedError


def test_add_get_and_attribution():
    reg = Registry("encoders")
    reg.add(reg.check("mine", Enc, "plugin_a"))
    comp = reg.get("mine")
    assert comp.cls is Enc and comp.plugin == "plugin_a" and comp.help == "A test encoder."
    assert "mine" in reg and reg.names() == ["mine"]


def test_duplicate_names_both_plugins():
    reg = Registry("encoders")
    reg.add(reg.check("gru2", Enc, "plugin_a"))
    with pytest.raises(RegistryError) as err:
        reg.check("gru2", Enc, "plugin_b")
    assert "plugin_a" in str(err.value) and "plugin_b" in str(err.value)


def test_unknown_name_did_you_mean_and_valid_names():
    reg = Registry("encoders")
    for name in ("gru", "lstm"):
        reg.add(reg.check(name, Enc, "p"))
    with pytest.raises(RegistryError) as err:
        reg.get("lstn")
    msg = str(err.value)
    assert "did you mean 'lstm'" in msg and "gru, lstm" in msg


@pytest.mark.parametrize("cls", [nn.Linear, object, len])
def test_class_must_subclass_stage_base(cls):
    reg = Registry("encoders")
    with pytest.raises(RegistryError, match="not a subclass of odepipe.Encoder"):
        reg.check("x", cls, "p")


@pytest.mark.parametrize("name", ["", "a b", None, 3])
def test_bad_names_rejected(name):
    with pytest.raises(RegistryError):
        Registry("encoders").check(name, Enc, "p")


def test_builtins_registered_through_hooks(host):
    assert {"rnn", "gru", "lstm"} <= set(host.registries["encoders"].names())
    assert host.registries["solvers"].get("dopri5").plugin == "odepipe_plugins.latent_ode"
    assert set(host.registries["solvers"].names()) >= {
        "dopri5", "tsit5", "bosh3", "adaptive_heun", "fehlberg2", "dopri8", "euler",
        "midpoint", "heun3", "rk4", "explicit_adams", "implicit_adams"}


def test_a_reference_is_checked_at_registration_and_imported_on_first_use():
    reg = Registry("encoders")
    component = reg.check("gru", "odepipe_plugins.latent_ode.encoders:GRUEncoder", "p")
    from odepipe_plugins.latent_ode.encoders import GRUEncoder

    assert component.cls is GRUEncoder and component.help.startswith("GRU")


@pytest.mark.parametrize("target, message", [
    ("gru", "a reference must read 'package.module:ClassName'"),
    ("odepipe_no_such_module_xyz:Enc", "from module 'odepipe_no_such_module_xyz', which cannot be found"),
])
def test_a_bad_reference_is_refused_at_registration(target, message):
    with pytest.raises(RegistryError, match=message):
        Registry("encoders").check("x", target, "p")


def test_a_reference_to_the_wrong_kind_of_class_fails_when_used():
    component = Registry("encoders").check("x", "torch.nn:Linear", "p")
    with pytest.raises(RegistryError, match="not a subclass of odepipe.Encoder"):
        component.cls
