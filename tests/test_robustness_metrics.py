"""PGD accuracy / robustness, CR curve and ReLU stability metrics."""

import pytest
import torch
from torch import nn

import torch.nn.functional as F

from lit_cert.bounds import IntervalTrace, linf_box, margin_bounds_ibp, margin_spec
from lit_cert.errors import ConfigError
from lit_cert.metrics import (CertifiedAccuracy, CRCurve, NaturalAccuracy, PGDAccuracy, PGDRobustness, ReLUStability,
                              relu_stability_trace, trapezoid_auc)


def small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 4))


def test_certified_le_pgd_le_natural_and_curve_starts_at_natural():
    net = small_net()
    x = torch.rand(64, 1, 4, 4)
    y = net(x).argmax(1)
    y[::4] = (y[::4] + 1) % 4  # some wrong labels
    eps = 0.05
    nat, cert, pgd = NaturalAccuracy(), CertifiedAccuracy(), PGDAccuracy(eps, steps=20, restarts=2)
    nat.update(net(x), y)
    cert.update(margin_bounds_ibp(net, *linf_box(x, eps), margin_spec(y, 4)), y)
    pgd.update(net, x, y)
    assert cert.compute() <= pgd.compute() <= nat.compute()
    curve = CRCurve([0.0, 0.01, 0.03, 0.05])
    curve.update(net, x, y)
    values = curve.compute()
    assert values[0] == pytest.approx(nat.compute().item())
    assert values[-1] == pytest.approx(cert.compute().item())
    assert torch.all(values[1:] <= values[:-1] + 1e-9)  # bigger balls certify fewer


def test_pgd_robustness_ignores_labels():
    net = small_net(1)
    x = torch.rand(32, 1, 4, 4)
    a, b = PGDRobustness(0.0, steps=5), PGDRobustness(0.3, steps=20)
    a.update(net, x)
    b.update(net, x)
    assert a.compute() == 1.0  # eps 0: the prediction never changes
    assert b.compute() < 1.0


def test_trapezoid_auc():
    assert trapezoid_auc([0, 1, 2], [1.0, 0.5, 0.0], normalise=False) == pytest.approx(1.0)
    assert trapezoid_auc([0, 1, 2], [1.0, 0.5, 0.0]) == pytest.approx(0.5)


def test_relu_stability_counts():
    net = small_net(2)
    x = torch.rand(8, 1, 4, 4)
    m = ReLUStability()
    m.update(relu_stability_trace(net, x, 0.02))
    frac = m.compute()
    assert frac.sum().item() == pytest.approx(1.0)
    # counted by hand from plain interval arithmetic on the two Linear layers
    lb, ub = (x.flatten(1) - 0.02).clamp(0, 1), (x.flatten(1) + 0.02).clamp(0, 1)
    pre = []
    for lin in (net[1], net[3]):
        c, r = F.linear((lb + ub) / 2, lin.weight, lin.bias), F.linear((ub - lb) / 2, lin.weight.abs())
        pre.append((c - r, c + r))
        lb, ub = torch.relu(c - r), torch.relu(c + r)
    n_total = sum(a.numel() for a, _ in pre)
    active = sum((a >= 0).sum().item() for a, _ in pre)
    dead = sum((b <= 0).sum().item() for _, b in pre)
    assert frac.tolist() == pytest.approx([active / n_total, dead / n_total, 1 - (active + dead) / n_total])
    with pytest.raises(ValueError, match="trace of an IBP walk"):
        m.update(IntervalTrace())


def test_validation_logs_pgd_accuracy_and_relu_stability():
    """The methods log PGD accuracy and ReLU stability under Lightning's inference mode, and the
    logged numbers agree with the metrics run by hand on the same data."""
    import lightning as L

    from lit_cert.data import SyntheticImages
    from lit_cert.methods import IBP
    from lit_cert.models import FC

    dm = SyntheticImages(train_size=64, val_size=48, test_size=16, batch_size=16)
    dm.setup()
    torch.manual_seed(0)
    model = IBP(network=FC(hidden=[16, 16]), data_info=dm.info, eps_train=0.3, eps_test=0.3, pgd_eval_steps=10)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    logged = trainer.validate(model, datamodule=dm, verbose=False)[0]
    fractions = [logged[f"val/relu_{k}"] for k in ("active", "dead", "unstable")]
    assert sum(fractions) == pytest.approx(1.0, abs=1e-5) and fractions[2] > 0
    assert logged["val/cert_acc"] <= logged["val/pgd_acc"] <= logged["val/nat_acc"]
    net = model.net.eval()
    x = torch.stack([dm.val_set[i][0] for i in range(48)])
    y = torch.stack([torch.as_tensor(dm.val_set[i][1]) for i in range(48)])
    stability = ReLUStability()
    stability.update(relu_stability_trace(net, x, 0.3))
    assert torch.allclose(stability.compute(), torch.tensor(fractions), atol=1e-6)
    assert logged["val/nat_acc"] > 0 and logged["val/pgd_acc"] < logged["val/nat_acc"]  # the attack does something
    with pytest.raises(ConfigError, match="pgd_eval_steps"):
        IBP(network=FC(hidden=[16]), data_info=dm.info, eps_test=0.05, pgd_eval_steps=-1)


def test_validation_tightness_on_a_subset_of_each_batch():
    import lightning as L

    from lit_cert.data import SyntheticImages
    from lit_cert.methods import IBP
    from lit_cert.metrics import PropagationTightness
    from lit_cert.models import FC

    dm = SyntheticImages(train_size=32, val_size=48, test_size=16, batch_size=16)
    dm.setup()
    x = torch.stack([dm.val_set[i][0] for i in range(48)])
    y = torch.stack([torch.as_tensor(dm.val_set[i][1]) for i in range(48)])
    logged = {}
    for n in (None, 4):
        torch.manual_seed(0)
        model = IBP(network=FC(hidden=[16, 16]), data_info=dm.info, eps_test=0.05, tightness_samples=n)
        trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        logged[n] = trainer.validate(model, datamodule=dm, verbose=False)[0]["val/tightness"]
        expected = PropagationTightness(0.05)
        for start in range(0, 48, 16):  # the first n of each validation batch
            stop = start + (16 if n is None else n)
            expected.update(model.net.eval(), x[start:stop], y[start:stop])
        assert logged[n] == pytest.approx(expected.compute().item(), rel=1e-5)
    assert logged[4] != logged[None]
    with pytest.raises(Exception, match="tightness_samples"):
        IBP(network=FC(hidden=[16]), data_info=dm.info, eps_test=0.05, tightness_samples=0)
