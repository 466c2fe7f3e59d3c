"""Propagation tightness against the explicit matrix formula and Mao et al.'s special cases, in
both modes: ``margins`` (the authors' measurement) and ``logits``."""

import numpy as np
import pytest
import torch
from torch import nn

from lit_cert.bounds import linf_box
from lit_cert.data import DataInfo
from lit_cert.layers import Normalize
from lit_cert.metrics import PropagationTightness, local_tightness, margin_rows
from lit_cert.models import CNN3, FC

from .exact import randomise_batchnorm


def explicit(net, x, y=None, eps=None):
    """Dense matrices: J by autograd, the layer-wise product |C W_L| D |W| ... |W_1| layer by layer
    (C = identity for logits; margin rows with the last layer folded for margins)."""
    out = []
    for i, xi in enumerate(x):
        jac = torch.autograd.functional.jacobian(lambda v: net(v.unsqueeze(0))[0], xi).reshape(-1, xi.numel())
        k = jac.shape[0]
        spec = torch.eye(k, dtype=x.dtype) if y is None else margin_rows(y[i : i + 1], k, x.dtype)[0]
        if eps is None:
            r = torch.ones(xi.numel(), dtype=x.dtype)
        else:
            lb, ub = linf_box(xi, eps)
            r = ((ub - lb) / 2).flatten()
        num = (spec @ jac).abs() @ r
        z = xi.unsqueeze(0)
        mat = torch.eye(xi.numel(), dtype=x.dtype)
        layers = list(net)
        for j, layer in enumerate(layers):
            if isinstance(layer, nn.ReLU):
                mat = (z > 0).flatten().to(x.dtype)[:, None] * mat
            elif not isinstance(layer, nn.Flatten):
                n_in = z[0].numel()
                basis = torch.eye(n_in, dtype=x.dtype).view(n_in, *z.shape[1:])
                w = (layer(basis) - layer(torch.zeros_like(z))).reshape(n_in, -1).T
                if j == len(layers) - 1:
                    w = spec @ w  # the specification folded into the last layer
                mat = w.abs() @ mat
            z = layer(z)
        if not isinstance(layers[-1], nn.Linear):
            mat = spec.abs() @ mat
        out.append(num / (mat @ r))
    return torch.stack(out)


@pytest.mark.parametrize("mode", ["margins", "logits"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_matches_explicit_formula(kind, mode):
    torch.manual_seed(0)
    info = DataInfo("t", (1, 6, 6), 4, (0.4,), (0.3,))
    arch = FC(hidden=[12, 10]) if kind == "dense" else CNN3(width=0.25)
    net = arch.build(info).double().eval()
    randomise_batchnorm(net)
    x = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    x[0, 0, 0, :3] = torch.tensor([0.0, 1.0, 0.02], dtype=torch.float64)  # clipped pixels
    y = torch.tensor([0, 2, 3])
    if mode == "margins":
        got, want = local_tightness(net, x, y, 0.05), explicit(net, x, y, 0.05)
        assert got.shape == (3, 3)
    else:
        got, want = local_tightness(net, x, mode="logits"), explicit(net, x)
        assert got.shape == (3, 4)
    assert torch.allclose(got, want, atol=1e-9)
    assert torch.all(got <= 1 + 1e-12) and torch.all(got > 0)


def test_non_negative_weights_are_tight():
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.abs_()
    x = torch.rand(4, 5)
    assert torch.allclose(local_tightness(net, x, mode="logits"), torch.ones(4, 3))
    # margins: the folded last layer must be sign-consistent too (row 0 dominates row 1 everywhere)
    two = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2))
    with torch.no_grad():
        two[0].weight.abs_()
        two[2].weight.copy_(torch.stack([two[2].weight[0].abs() + 1, two[2].weight[1].abs() * 0.1]))
    assert torch.allclose(local_tightness(two, x, torch.zeros(4, dtype=torch.long), 0.1), torch.ones(4, 1))


def two_layer(w1, w2):
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, len(w2), bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w1, dtype=torch.float64))
        net[2].weight.copy_(torch.tensor(w2, dtype=torch.float64))
    return net


def test_propagation_invariant_example_and_counter_example():
    x = torch.tensor([[1.0, 0.5]], dtype=torch.float64)  # both hidden units active
    # each output reads one hidden unit: |W2 W1| = |W2||W1| (propagation invariant) -> 1
    assert local_tightness(two_layer([[1.0, -1.0], [1.0, 1.0]], [[0.0, 2.0]]), x, mode="logits").item() == pytest.approx(1.0)
    # W2 W1 = [2, 0] but |W2||W1| 1 = 4: cancellation the box cannot see -> 0.5
    assert local_tightness(two_layer([[1.0, 1.0], [1.0, -1.0]], [[1.0, 1.0]]), x, mode="logits").item() == pytest.approx(0.5)


def test_margins_and_logits_differ_by_hand():
    """h = (x0 + x1, x0 - x1), z = h: each logit alone is propagation invariant (tightness 1), but
    the margin z0 - z1 = 2 x1 is not: |C J| r = 2 r1 against |C W2| |W1| r = 2 (r0 + r1). At
    x = (1, 0.5) with eps 0.1 the clipped radii are r0 = 0.05 (x0 is at the border), r1 = 0.1:
    tightness 0.1 / 0.15 = 2/3."""
    net = two_layer([[1.0, 1.0], [1.0, -1.0]], [[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    assert local_tightness(net, x, mode="logits")[0].tolist() == pytest.approx([1.0, 1.0])
    assert local_tightness(net, x, torch.tensor([0]), 0.1).item() == pytest.approx(2 / 3)
    # without the clipping (an interior point) the radii are equal: 1/2
    assert local_tightness(net, torch.tensor([[0.6, 0.5]], dtype=torch.float64), torch.tensor([0]), 0.1).item() == pytest.approx(0.5)


def test_metric_averages_over_outputs_and_samples():
    torch.manual_seed(2)
    net = nn.Sequential(Normalize([0.5], [0.2]), nn.Flatten(), nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.rand(6, 1, 3, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    for mode in ("margins", "logits"):
        m = PropagationTightness(0.05, mode)
        m.update(net, x[:2], y[:2])
        m.update(net, x[2:], y[2:])
        assert m.compute().item() == pytest.approx(local_tightness(net, x, y, 0.05, mode).mean().item(), rel=1e-6)
        assert np.isfinite(m.compute().item())
    with pytest.raises(ValueError, match="needs eps"):
        PropagationTightness(mode="margins")
