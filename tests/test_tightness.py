"""Propagation tightness against the explicit matrix formula and Mao et al.'s special cases."""

import numpy as np
import pytest
import torch
from torch import nn

from lit_cert.data import DataInfo
from lit_cert.layers import Normalize
from lit_cert.metrics import PropagationTightness, local_tightness
from lit_cert.models import CNN3, FC

from .exact import randomise_batchnorm


def explicit(net, x):
    """|J| 1 / (prod D |W|) 1 with dense matrices: J by autograd, the product layer by layer."""
    out = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: net(v.unsqueeze(0))[0], xi).reshape(-1, xi.numel())
        num = jac.abs().sum(1)
        # layer-wise: compose |each layer's matrix| with the pattern, using basis vectors
        z = xi.unsqueeze(0)
        mat = torch.eye(xi.numel(), dtype=x.dtype)
        for layer in net:
            if isinstance(layer, nn.ReLU):
                d = (z > 0).flatten().to(x.dtype)
                mat = d[:, None] * mat
            elif isinstance(layer, nn.Flatten):
                pass
            else:
                n_in = z[0].numel()
                basis = torch.eye(n_in, dtype=x.dtype).view(n_in, *z.shape[1:])
                w = (layer(basis) - layer(torch.zeros_like(z))).reshape(n_in, -1).T
                mat = w.abs() @ mat
            z = layer(z)
        out.append(num / mat.sum(1))
    return torch.stack(out)


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_matches_explicit_formula(kind):
    torch.manual_seed(0)
    info = DataInfo("t", (1, 6, 6), 4, (0.4,), (0.3,))
    arch = FC(hidden=[12, 10]) if kind == "dense" else CNN3(width=0.25)
    net = arch.build(info).double().eval()
    randomise_batchnorm(net)
    x = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    got = local_tightness(net, x)
    assert torch.allclose(got, explicit(net, x), atol=1e-9)
    assert torch.all(got <= 1 + 1e-12) and torch.all(got > 0)


def test_non_negative_weights_are_tight():
    net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.abs_()
    x = torch.rand(4, 5)
    assert torch.allclose(local_tightness(net, x), torch.ones(4, 3))


def two_layer(w1, w2):
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w1, dtype=torch.float64))
        net[2].weight.copy_(torch.tensor(w2, dtype=torch.float64))
    return net


def test_propagation_invariant_example_and_counter_example():
    x = torch.tensor([[1.0, 0.5]], dtype=torch.float64)  # both hidden units active
    # each output reads one hidden unit: |W2 W1| = |W2||W1| (propagation invariant) -> 1
    assert local_tightness(two_layer([[1.0, -1.0], [1.0, 1.0]], [[0.0, 2.0]]), x).item() == pytest.approx(1.0)
    # W2 W1 = [2, 0] but |W2||W1| 1 = 4: cancellation the box cannot see -> 0.5
    assert local_tightness(two_layer([[1.0, 1.0], [1.0, -1.0]], [[1.0, 1.0]]), x).item() == pytest.approx(0.5)


def test_metric_averages_over_outputs_and_samples():
    torch.manual_seed(2)
    net = nn.Sequential(Normalize([0.5], [0.2]), nn.Flatten(), nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.rand(6, 1, 3, 3)
    m = PropagationTightness()
    m.update(net, x[:2])
    m.update(net, x[2:])
    assert m.compute().item() == pytest.approx(local_tightness(net, x).mean().item(), rel=1e-6)
    assert np.isfinite(m.compute().item())
