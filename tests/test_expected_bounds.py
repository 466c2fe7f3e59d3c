"""Expected tight bounds: the block formula, and that they are never treated as certificates."""

import pytest
import torch
from torch import nn

from lit_cert.bounds import interval_bounds
from lit_cert.bounds.expected import expected_bounds
from lit_cert.data import SyntheticImages
from lit_cert.errors import ConfigError
from lit_cert.methods import CERTIFIERS, ExpectedTightBounds
from lit_cert.models import FC


def test_block_formula_matches_explicit_matrices():
    torch.manual_seed(0)
    a1, a2 = nn.Linear(6, 9), nn.Linear(9, 4)
    net = nn.Sequential(a1, nn.ReLU(), a2).double()
    c = torch.randn(3, 6, dtype=torch.float64)
    r = torch.rand(3, 6, dtype=torch.float64) * 0.5
    lo, up = expected_bounds(net, c - r, c + r)
    W1, b1, W2, b2 = (t.detach() for t in (a1.weight, a1.bias, a2.weight, a2.bias))
    for i in range(3):
        upper = W1 @ c[i] + b1 + W1.abs() @ r[i]  # IBP upper bound of the pre-activation
        M = torch.diag((upper >= 0).double())
        center = W2 @ M @ (W1 @ c[i] + b1) + b2
        radius = (W2 @ M @ W1).abs() @ r[i]
        assert torch.allclose(lo[i], center - radius) and torch.allclose(up[i], center + radius)


def explicit_eq6(net, c, r, masks):
    """Seed 001 Eq. 6 with dense matrices for one sample: the linear map G and offset g through
    the network, each ReLU masked by 1{upper >= 0} of the map so far (``propagated``) or of IBP."""
    layers = list(net)
    lin = [m for m in layers if isinstance(m, nn.Linear)]
    G, g = lin[0].weight.detach(), lin[0].bias.detach()
    l_ibp, u_ibp = interval_bounds(nn.Sequential(lin[0]), (c - r)[None], (c + r)[None])
    for nxt in lin[1:]:
        upper = G @ c + g + G.abs() @ r if masks == "propagated" else u_ibp[0]
        m = (upper >= 0).double()
        if masks == "ibp":  # IBP continues through the ReLU and the next layer
            l_ibp, u_ibp = interval_bounds(nn.Sequential(nn.ReLU(), nxt), l_ibp, u_ibp)
        G, g = nxt.weight.detach() @ (m[:, None] * G), nxt.weight.detach() @ (m * g) + nxt.bias.detach()
    center, radius = G @ c + g, G.abs() @ r
    return center - radius, center + radius


@pytest.mark.parametrize("masks", ["propagated", "ibp"])
def test_deep_network_matches_equation_6(masks):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    c = torch.randn(2, 4, dtype=torch.float64)
    r = torch.full((2, 4), 0.4, dtype=torch.float64)
    lo, up = expected_bounds(net, c - r, c + r, masks=masks)
    for i in range(2):
        el, eu = explicit_eq6(net, c[i], r[i], masks)
        assert torch.allclose(lo[i], el) and torch.allclose(up[i], eu)
    other = expected_bounds(net, c - r, c + r, masks="ibp" if masks == "propagated" else "propagated")[0]
    assert not torch.allclose(other, lo)  # the two mask choices are different bounds here
    with pytest.raises(ValueError, match="masks"):
        expected_bounds(net, c - r, c + r, masks="blockwise")


@pytest.mark.parametrize("masks", ["propagated", "ibp"])
def test_expected_bounds_are_tighter_than_ibp_but_not_sound(masks):
    violations, tighter = 0, []
    for seed in range(5):
        torch.manual_seed(seed)
        deep = nn.Sequential(nn.Linear(5, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 3))
        block = nn.Sequential(nn.Linear(5, 20), nn.ReLU(), nn.Linear(20, 3))
        c = torch.randn(4, 5)
        lb, ub = c - 0.3, c + 0.3
        with torch.no_grad():
            for net in (deep, block):
                lo, up = expected_bounds(net, lb, ub, masks=masks)
                ilo, iup = interval_bounds(net, lb, ub)
                tighter.append(((up - lo) / (iup - ilo)).mean().item())
            out = block(lb + (ub - lb) * torch.rand(2000, 4, 5))
            violations += int(((out < lo - 1e-6) | (out > up + 1e-6)).any())
    assert max(tighter) < 1.0  # narrower than IBP
    assert violations > 0  # and indeed not a sound over-approximation


def test_convolutions_and_batchnorm_use_ibp_masks_by_default():
    from lit_cert.bounds.expected import default_masks
    from lit_cert.models import CNN3

    torch.manual_seed(0)
    dm = SyntheticImages(in_shape=(1, 8, 8))
    net = CNN3().build(dm.info).eval().double()
    assert default_masks(net) == "ibp" and default_masks(FC(hidden=[8]).build(dm.info)) == "propagated"
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    lo, up = expected_bounds(net, (x - 0.02).clamp(0, 1), (x + 0.02).clamp(0, 1), masks="ibp")
    ilo, iup = interval_bounds(net, (x - 0.02).clamp(0, 1), (x + 0.02).clamp(0, 1))
    with torch.no_grad():
        y = net(x)
    assert lo.shape == y.shape and (lo <= up).all() and (up - lo).mean() < (iup - ilo).mean()


def test_never_offered_as_a_certifier():
    assert "expected" not in CERTIFIERS
    dm = SyntheticImages()
    with pytest.raises(ConfigError, match="certifier: must be one of"):
        ExpectedTightBounds(network=FC(hidden=[8]), data_info=dm.info, eps_test=0.1, certifier="expected")


@pytest.mark.parametrize("temperature", [1.0, 0.2])
def test_loss_is_the_papers(temperature):
    """CE(f(x)/T, y) + kappa CE(z/T, y), z = expected lower bound of the true logit and upper bounds
    of the others (per logit, no margins), at the fixed eps."""
    import torch.nn.functional as F

    from lit_cert.bounds import linf_box

    dm = SyntheticImages(train_size=16, val_size=8, test_size=8)
    dm.setup()
    x, y = dm.train_set.images[:16].float() / 255, dm.train_set.labels[:16]
    m = ExpectedTightBounds(network=FC(hidden=[16, 16]), data_info=dm.info, eps_train=0.1, eps_test=0.1, robust_weight=0.7,
                            temperature=temperature)
    assert m.masks == "propagated"
    m.eps = 0.1
    loss, logs = m.training_loss(x, y)
    lo, up = expected_bounds(m.net, *linf_box(x, 0.1), masks="propagated")
    z = torch.where(F.one_hot(y, 4).bool(), lo, up)
    logits = m.net(x)
    expected = F.cross_entropy(logits / temperature, y) + 0.7 * F.cross_entropy(z / temperature, y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    nominal = ExpectedTightBounds(network=FC(hidden=[16, 16]), data_info=dm.info, eps_train=0.1, eps_test=0.1, robust_weight=0.0,
                                  temperature=temperature)
    nominal.load_state_dict(m.state_dict())
    nominal.eps = 0.1
    assert nominal.training_loss(x, y)[0].item() == pytest.approx(F.cross_entropy(logits / temperature, y).item(), rel=1e-6)


def test_conv_analysis_compares_with_a_sound_ibp_box():
    """Seed 001 Fig. 3c/d's setting: on random CNNs the expected interval (IBP masks) is inside
    IBP's sound interval, which holds every sampled output; deeper networks widen the gap."""
    from lit_cert.analysis.expected_validity import conv_network, conv_width_ratio
    from lit_cert.bounds.box import interval_bounds
    from lit_cert.bounds.expected import expected_bounds

    g = torch.Generator().manual_seed(3)
    net = conv_network(4, 4, 2, 5, g)
    c = torch.randn(1, 2, 5, 5, generator=g, dtype=torch.float64)
    lb, ub = c - 0.1, c + 0.1
    (e_lo, e_hi), (i_lo, i_hi) = expected_bounds(net, lb, ub, masks="ibp"), interval_bounds(net, lb, ub)
    pts = lb + (ub - lb) * torch.rand(4000, 2, 5, 5, generator=g, dtype=torch.float64)
    out = net(pts)
    assert (out >= i_lo - 1e-9).all() and (out <= i_hi + 1e-9).all()
    assert i_lo <= e_lo <= e_hi <= i_hi
    shallow, deep = conv_width_ratio(2, 4, 2, 5, trials=3, samples=200), conv_width_ratio(6, 4, 2, 5, trials=3, samples=200)
    assert 1 <= shallow["ibp_over_expected_width"] < deep["ibp_over_expected_width"]
    assert 0 <= deep["gamma_min"] <= deep["gamma"] <= 1


def test_output_polytope_samples_lie_in_ibp_s_box():
    from lit_cert.analysis.expected_validity import output_polytope

    r = output_polytope(n=6, hidden=(12, 12), radius=0.2, samples=3000, seed=1)
    (i_lo, i_hi), (e_lo, e_hi), pts = r["ibp"], r["expected"], r["points"]
    assert pts.shape == (3000, 2) and (pts >= i_lo - 1e-9).all() and (pts <= i_hi + 1e-9).all()
    assert ((e_hi - e_lo) <= (i_hi - i_lo)).all() and all(w >= 1 for w in r["ibp_over_expected_width"])
    assert 0 <= r["inside"] <= 1 and all(0 <= g <= 1 for g in r["gamma"])
