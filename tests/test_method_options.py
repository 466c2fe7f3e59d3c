"""Every method applies the shared penalties, and every option a method accepts changes its
training signal (or the method refuses it)."""


import pytest
import torch

from lit_cert.bounds import IntervalTrace, interval_bounds, linf_box
from lit_cert.data import SyntheticImages
from lit_cert.methods import (COLT, CROWNIBP, IBP, MTLIBP, SABR, STAPS, TAPS, ExpectedTightBounds, PGDTraining, RelaxationTraining,
                              Standard)
from lit_cert.methods.regularizers import shi_regularizers
from lit_cert.models import CNN3, FC



METHODS = {
    "IBP": (IBP, {}, True),
    "CROWNIBP": (CROWNIBP, {}, True),
    "CROWNIBP-fused": (CROWNIBP, {"loss_fusion": True}, True),
    "SABR": (SABR, {"lam": 0.5}, False),
    "TAPS": (TAPS, {"ibp_during_ramp": False}, True),
    "STAPS": (STAPS, {"lam": 0.5, "ibp_during_ramp": False}, False),
    "MTLIBP": (MTLIBP, {"alpha": 0.5}, True),
    "PGDTraining": (PGDTraining, {}, True),
    "RelaxationTraining": (RelaxationTraining, {"relaxation": "deepz"}, True),
    "ExpectedTightBounds": (ExpectedTightBounds, {"masks": "ibp"}, True),
    "Standard": (Standard, {}, True),
    "COLT": (COLT, {"n_rand_proj": 8}, False),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_applies_shi_regularisers_and_l1(name):
    """The penalties are added after every method's own loss, in one place: the logged values
    are exactly the difference to the same step without them (the fused CROWN-IBP path used to
    drop them), and for methods whose region is the full ball they equal an independent
    computation from one IBP walk."""
    cls, extra, full_ball = METHODS[name]
    dm = SyntheticImages(train_size=32, val_size=16, test_size=16, batch_size=32)
    dm.setup()
    x, y = dm.train_set.images[:16].float() / 255, dm.train_set.labels[:16]
    net = FC(hidden=[16, 16]) if cls in (RelaxationTraining, ExpectedTightBounds) else CNN3(width=0.5)
    losses, logs = {}, {}
    for penalised in (False, True):
        torch.manual_seed(0)
        m = cls(network=net, data_info=dm.info, eps_train=0.1, eps_test=0.1, shi_reg=0.5 if penalised else 0.0,
                l1=1e-4 if penalised else 0.0, **extra)
        m.train()
        m.eps, m.kappa, m.ramp_progress = 0.04, 0.0, 0.5
        torch.manual_seed(1)
        losses[penalised], logs[penalised] = m.training_loss(x, y)
    assert logs[True]["shi_reg"] > 0 and logs[True]["l1"] > 0
    difference = (losses[True] - losses[False]).item()
    assert difference == pytest.approx((logs[True]["shi_reg"] + logs[True]["l1"]).item(), rel=1e-4, abs=1e-6)
    if full_ball:
        trace = IntervalTrace()
        interval_bounds(m.net, *linf_box(x, 0.04), trace=trace)
        tight, relu = shi_regularizers(trace, 0.5)
        assert logs[True]["shi_reg"].item() == pytest.approx((0.5 * (1 - 0.04 / 0.1) * (tight + relu)).item(), rel=1e-5)


SHARED_OPTIONS = {"elision": False, "relu_shrinkage": 0.5, "bn_statistics": "detached"}


def _loss_and_gradients(cls, extra, option, bn):
    dm = SyntheticImages(train_size=32, val_size=16, test_size=16, batch_size=32)
    dm.setup()
    x, y = dm.train_set.images[:16].float() / 255, dm.train_set.labels[:16]
    net = FC(hidden=[16, 16], bn=bn) if cls in (RelaxationTraining, ExpectedTightBounds) else CNN3(width=0.5, bn=bn)
    torch.manual_seed(0)
    m = cls(network=net, data_info=dm.info, eps_train=0.1, eps_test=0.1, **extra, **option)
    m.train()
    m.eps, m.kappa, m.ramp_progress, m.beta = 0.1, 0.0, 1.0, 0.5
    torch.manual_seed(1)
    loss = m.training_loss(x, y)[0]
    grads = torch.autograd.grad(loss, [p for p in m.parameters() if p.requires_grad], allow_unused=True)
    return loss.detach(), [g if g is not None else torch.zeros(()) for g in grads]


@pytest.mark.parametrize("option", sorted(SHARED_OPTIONS))
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_accepted_option_changes_the_training_signal(name, option):
    """A method that accepts an option must act on it: with it the loss or the gradient differs
    from the default's on the same weights and batch; a method for which the option means
    nothing refuses it (CROWN-IBP used to accept relu_shrinkage and elision: false and ignore both)."""
    from lit_cert.errors import ConfigError

    cls, extra, _ = METHODS[name]
    value = {option: SHARED_OPTIONS[option]}
    try:
        changed = _loss_and_gradients(cls, extra, value, bn=option == "bn_statistics")
    except (ConfigError, TypeError) as err:  # refused: fine, if it says why
        assert option in str(err)
        return
    base = _loss_and_gradients(cls, extra, {}, bn=option == "bn_statistics")
    differs = not torch.allclose(changed[0], base[0], rtol=1e-6, atol=1e-8) or any(
        not torch.allclose(a, b, rtol=1e-5, atol=1e-8) for a, b in zip(changed[1], base[1]))
    assert differs, f"{name} accepts {option}={SHARED_OPTIONS[option]!r} but its training signal is unchanged"
