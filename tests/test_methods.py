"""Methods: the loss they optimise, BatchNorm convention, regularisers, and that they learn."""

import pytest
import torch
import torch.nn.functional as F

from lit_cert.bounds import linf_box, margin_bounds_ibp, margin_spec, robust_cross_entropy
from lit_cert.errors import ConfigError
from lit_cert.methods import IBP, RelaxationTraining, Standard, load_method
from lit_cert.methods.regularizers import l1_penalty, shi_regularizers
from lit_cert.models import CNN3, FC

from .helpers import synthetic_batch


@pytest.fixture
def data():
    return synthetic_batch(32, train_size=64)


def test_ibp_loss_is_kappa_mix_of_natural_and_robust_ce(data):
    dm, x, y = data
    m = IBP(network=CNN3(), data_info=dm.info, eps_train=0.1, eps_test=0.1)
    m.train()
    m.eps, m.kappa = 0.05, 0.3
    loss, logs = m.training_loss(x, y)
    # recompute independently: clean pass (BN batch stats), then IBP on the same statistics
    logits = m.net(x)
    nat = F.cross_entropy(logits, y)
    lb, ub = linf_box(x, 0.05)
    rob = robust_cross_entropy(margin_bounds_ibp(m.net, lb, ub, margin_spec(y, 4)), y)
    assert torch.allclose(loss, 0.3 * nat + 0.7 * rob, atol=1e-5)
    assert rob > nat  # the bound is pessimistic
    assert logs["eps"] == 0.05 and "rob_loss" in logs


@pytest.mark.parametrize("cls,extra", [(IBP, {}), (RelaxationTraining, {"relaxation": "deepz"})])
def test_without_elision_the_loss_is_the_ce_of_the_worst_case_logits(data, cls, extra):
    """The paradox paper's --C eye runs: z_y = lower bound of the true logit, z_i = upper bounds of
    the others, CE(z); looser than the elided margins, hence a larger loss."""
    from lit_cert.bounds import interval_bounds
    from lit_cert.bounds.backsub import linear_bounds

    dm, x, y = data
    torch.manual_seed(0)
    kw = dict(network=FC(hidden=[16]), data_info=dm.info, eps_train=0.05, eps_test=0.05, **extra)
    elided, plain = cls(**kw), cls(elision=False, **kw)
    plain.load_state_dict(elided.state_dict())
    for m in (elided, plain):
        m.eps, m.kappa = 0.05, 0.0
    lb, ub = linf_box(x, 0.05)
    if cls is IBP:
        lo, hi = interval_bounds(plain.net, lb, ub)
    else:
        lo, hi = linear_bounds(plain.net, lb, ub, None, "deepz", "same")
    z = torch.where(F.one_hot(y, 4).bool(), lo, hi)
    loss_plain, loss_elided = plain.training_loss(x, y)[0], elided.training_loss(x, y)[0]
    assert loss_plain.item() == pytest.approx(F.cross_entropy(z, y).item(), rel=1e-5)
    assert loss_plain > loss_elided


def test_eps_zero_is_standard_training(data):
    dm, x, y = data
    m = IBP(network=CNN3(), data_info=dm.info, eps_train=0.1, eps_test=0.1)
    m.eps, m.kappa = 0.0, 0.0
    loss, logs = m.training_loss(x, y)
    assert torch.allclose(loss, F.cross_entropy(m.net(x), y), atol=1e-6)
    s = Standard(network=CNN3(), data_info=dm.info, eps_test=0.1)
    s.eps, s.kappa = 0.3, 0.0  # ignored by Standard
    loss_s, _ = s.training_loss(x, y)
    assert torch.allclose(loss_s, F.cross_entropy(s.net(x), y), atol=1e-6)


def test_l1_penalty_added(data):
    dm, x, y = data
    m = IBP(network=FC(hidden=[16]), data_info=dm.info, eps_train=0.1, eps_test=0.1, l1=1e-3)
    m.eps, m.kappa = 0.0, 0.0
    loss, logs = m.training_loss(x, y)
    weights = [m.net[2].weight, m.net[4].weight]
    expected_l1 = sum(w.abs().sum() for w in weights)
    assert torch.allclose(l1_penalty(m.net), expected_l1)
    assert torch.allclose(loss, F.cross_entropy(m.net(x), y) + 1e-3 * expected_l1, atol=1e-6)


def test_shi_regularizer_only_until_the_ramp_ends(data):
    """CTBench's fast_reg: weight lambda_0 (1 - max(eps, 1e-6) / eps_train) from the first step
    (warm-up included) until the eps ramp is over, added to the loss after the method's own."""
    dm, x, y = data
    m = IBP(network=CNN3(), data_info=dm.info, eps_train=0.1, eps_test=0.1, shi_reg=0.5)
    m.eps, m.kappa, m.ramp_progress = 0.025, 0.0, 0.5
    assert m.shi_weight() == pytest.approx(0.5 * 0.75)
    loss, logs = m.training_loss(x, y)
    assert loss.item() == pytest.approx((logs["rob_loss"] + logs["shi_reg"]).item(), abs=1e-6) and logs["shi_reg"] > 0
    m.eps, m.ramp_progress = 0.0, 0.0  # warm-up: applied on the 1e-6 ball
    assert m.shi_weight() == pytest.approx(0.5 * (1 - 1e-5))
    loss, logs = m.training_loss(x, y)
    assert loss.item() == pytest.approx((logs["nat_loss"] + logs["shi_reg"]).item(), abs=1e-6)
    m.eps, m.ramp_progress = 0.1, 1.0
    _, logs_end = m.training_loss(x, y)
    assert "shi_reg" not in logs_end


def _trace(first, relus):
    from torch import nn

    from lit_cert.bounds import IntervalTrace

    trace = IntervalTrace()
    trace.add(nn.Linear(3, 2), "lu", *first)
    for lb, ub in relus:
        trace.add(nn.ReLU(), "lu", lb, ub)
    return trace


def test_shi_tightness_term_detects_exploding_boxes():
    # input radius 1, pre-activation radius 10: r0/r = 0.1 < tol = 0.5 -> (0.5 - 0.1) / 0.5 = 0.8
    first = (-torch.ones(2, 3), torch.ones(2, 3))
    wide = [(torch.tensor([[-10.0, -9.0], [-11.0, -10.0]]), torch.tensor([[10.0, 11.0], [9.0, 10.0]]))]
    tight, relu = shi_regularizers(_trace(first, wide), tol=0.5)
    assert tight.item() == pytest.approx(0.8)
    # tight boxes: no tightness penalty
    tight, relu = shi_regularizers(_trace(first, [(torch.tensor([[0.5, -1.5]]), torch.tensor([[1.5, -0.5]]))]), tol=0.5)
    assert tight.item() == 0.0
    # perfectly balanced active/inactive centres: no ReLU penalty
    assert relu.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("method", ["standard", "ibp"])
def test_methods_lower_their_loss_on_a_fixed_batch(data, method):
    dm, x, y = data
    torch.manual_seed(0)
    cls = Standard if method == "standard" else IBP
    m = cls(network=CNN3(), data_info=dm.info, eps_train=0.05, eps_test=0.05, lr=3e-3)
    m.eps, m.kappa = 0.05, 0.0
    opt = m.configure_optimizers()
    m.train()
    first = None
    for _ in range(30):
        loss, _ = m.training_loss(x, y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_certified_samples_are_correctly_classified_sample_by_sample(data):
    """Per sample: certified => correctly classified, on a briefly trained net where certified,
    correct-but-uncertified and misclassified samples all occur (an untrained net certifies
    nothing, and 0 <= 0 <= natural accuracy would hold for any implementation)."""
    from lit_cert.bounds import is_certified

    dm, x, y = data
    torch.manual_seed(0)
    m = IBP(network=CNN3(), data_info=dm.info, eps_train=0.02, eps_test=0.02, lr=3e-3)
    m.eps, m.kappa = 0.02, 0.5
    opt = m.configure_optimizers()
    m.train()
    for _ in range(15):
        opt.zero_grad()
        m.training_loss(x, y)[0].backward()
        opt.step()
    m.eval()
    xs = torch.cat([x, x.flip(-1)])  # mirrored images: some are misclassified
    ys = torch.cat([y, y])
    with torch.no_grad():
        correct = m.net(xs).argmax(1) == ys
        certified = is_certified(m.certify_margins(xs, ys, m.eps_test), ys)
        m._evaluate((xs, ys), "val")
    assert torch.all(correct[certified])  # the invariant, sample by sample
    assert certified.any() and (correct & ~certified).any() and (~correct).any()  # every kind occurs
    nat, cert = m.metrics["val"]["nat_acc"].compute(), m.metrics["val"]["cert_acc"].compute()
    assert cert.item() == pytest.approx(certified.float().mean().item()) and nat.item() == pytest.approx(correct.float().mean().item())


def test_invalid_arguments_raise_config_errors(data):
    dm, _, _ = data
    with pytest.raises(ConfigError, match="eps_test is missing"):
        IBP(network=CNN3(), data_info=dm.info)
    with pytest.raises(ConfigError, match="eps_train: must be a radius"):
        IBP(network=CNN3(), data_info=dm.info, eps_train=-0.1, eps_test=0.1)
    with pytest.raises(ConfigError, match="eps_test: must be a radius"):
        IBP(network=CNN3(), data_info=dm.info, eps_train=0.1, eps_test=1e9)
    with pytest.raises(ConfigError, match="certifier: must be one of ibp"):
        IBP(network=CNN3(), data_info=dm.info, eps_test=0.1, certifier="magic")
    with pytest.raises(ConfigError, match="data_info"):
        IBP(network=CNN3(), eps_test=0.1)


def test_checkpoint_roundtrip_with_any_class(data, tmp_path):
    import lightning as L

    dm, x, y = data
    m = IBP(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.05, eps_test=0.02, shi_reg=0.3)
    trainer = L.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(m, datamodule=dm)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    # plain data only: loads with weights_only=True
    torch.load(path, weights_only=True)
    loaded = load_method(str(path))
    assert type(loaded) is IBP and loaded.shi_reg == 0.3 and loaded.eps_test == 0.02
    m.eval()
    loaded.eval()
    assert torch.allclose(loaded(x), m(x), atol=1e-6)
