"""Rows of convolutional neurons walked on their receptive fields give the dense walk's bounds (#25).

lit_cert.bounds.windows carries each intermediate-bound row of a convolution's output on a window
of each feature map instead of the whole map. The reference is the same engine with
``windowed = False`` (itself checked against an independent dense implementation in
test_bound_engine.py): every intermediate and output bound must agree to float64 rounding, on
strided, padded, dilated and grouped convolutions with BatchNorm and input normalisation, under
split constraints with prior bounds and per-sample lower slopes (branch and bound's and
alpha-CROWN's engines), and chunked by a memory budget. Each test also checks that the windowed
walk really ran (a test that passes because the windows were never used would prove nothing).
"""

import pytest
import torch
from torch import nn

from lit_cert.bounds import backsub, linf_box, margin_spec, windows
from lit_cert.bounds.backsub import LinearBounds, coefficient_memory
from lit_cert.data import FashionMNIST
from lit_cert.layers import Normalize
from lit_cert.models.architectures import CNN7

from .exact import randomise_batchnorm


def odd_conv_net() -> nn.Sequential:
    """Every geometry the windows must get right: stride 2 with padding, a 5x5 kernel, no
    padding, dilation, groups, a BatchNorm fused into its convolution and one that is not
    (after a ReLU), input normalisation, and an odd-sized, non-square input (3 x 17 x 19)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        Normalize([0.4, 0.5, 0.6], [0.2, 0.3, 0.25]),
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 5, padding=2, groups=2), nn.ReLU(), nn.BatchNorm2d(8),
        nn.Conv2d(8, 6, 3, stride=2, padding=0, dilation=1), nn.ReLU(),
        nn.Conv2d(6, 6, 2, padding=2, dilation=2), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 6 * 6, 7),
    )
    return randomise_batchnorm(net).double().eval()


def small_cnn7(dtype=torch.float64) -> nn.Module:
    torch.manual_seed(1)
    return CNN7(width=0.125, linear_size=16).build(FashionMNIST.info).to(dtype).eval()


#: network, input shape, eps, dtype and tolerance (the CNN7 in float32: float64 CPU convolutions are slow)
NETS = {"odd-geometry": (odd_conv_net, (3, 17, 19), 0.04, torch.float64, 1e-10),
        "cnn7": (lambda: small_cnn7(torch.float32), (1, 28, 28), 0.006, torch.float32, 1e-4)}


@pytest.fixture
def windowed_calls(monkeypatch):
    """The number of windowed walks and the rows they carried."""
    calls = []
    original = backsub.window_lower

    def counting(engine, end, unit, plan):
        calls.append(unit.shape[1])
        return original(engine, end, unit, plan)

    monkeypatch.setattr(backsub, "window_lower", counting)
    return calls


def both(net, lb, ub, spec, budget=None, **engine_args):
    """(windowed engine, its output bound), (dense engine, its output bound); the windowed one
    under the ``coefficient_memory`` ``budget`` (chunking changes no bound, test_bound_engine.py)."""
    out = []
    for flag in (True, False):
        engine = LinearBounds(net, lb, ub, "crown", "same", **engine_args)
        engine.windowed = flag
        with torch.no_grad(), coefficient_memory(budget if flag else None):
            out.append((engine, engine.output_bounds(spec, need_upper=False)[0]))
    return out


def assert_same(windowed, dense, tol=1e-10):
    (e_w, low_w), (e_d, low_d) = windowed, dense
    assert set(e_w.pre_bounds) == set(e_d.pre_bounds)
    for i in e_d.pre_bounds:
        for k in (0, 1):
            assert torch.allclose(e_w.pre_bounds[i][k], e_d.pre_bounds[i][k], rtol=tol, atol=tol), (i, k)
    assert torch.allclose(low_w, low_d, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(NETS))
def test_windowed_rows_give_the_dense_walks_bounds(name, windowed_calls):
    make, shape, eps, dtype, tol = NETS[name]
    net = make()
    x = torch.rand(2, *shape, dtype=dtype)
    lb, ub = linf_box(x, eps)
    spec = margin_spec(torch.tensor([0, 1]), net(x).shape[1], dtype)
    windowed, dense = both(net, lb, ub, spec)
    assert windowed_calls, "no row was walked on a window"
    assert_same(windowed, dense, tol)
    # sound at sampled inputs of the box (the bounds are the dense walk's, which the engine tests check against exact optima)
    pts = lb + (ub - lb) * torch.rand(64, *lb.shape, dtype=dtype)
    with torch.no_grad():
        margins = torch.einsum("sbk,bmk->sbm", torch.stack([net(p) for p in pts]), spec)
    assert bool((margins >= windowed[1] - tol).all())


def test_windows_under_splits_prior_bounds_and_slopes(windowed_calls):
    """Branch and bound's engine (split constraints, a parent's bounds as priors) and
    alpha-CROWN's (per-sample lower slopes in [0, 1]) walk their windows with them."""
    net = odd_conv_net()
    x = torch.rand(2, 3, 17, 19, dtype=torch.float64)
    lb, ub = linf_box(x, 0.04)
    spec = margin_spec(torch.tensor([3, 4]), 7, torch.float64)
    root = LinearBounds(net, lb, ub, "crown", "same")
    root.windowed = False
    with torch.no_grad():
        root.output_bounds(spec, need_upper=False)
    relus = sorted(root.pre_bounds)
    g = torch.Generator().manual_seed(3)
    splits, slopes = {}, {}
    for i in relus:
        l, u = root.pre_bounds[i]
        unstable = (l < 0) & (u > 0)
        pick = torch.randint(-1, 2, l.shape, generator=g).to(torch.int8)
        splits[i] = torch.where(unstable & (torch.rand(l.shape, generator=g) < 0.1), pick, torch.zeros_like(pick))
        slopes[i] = torch.rand(l.shape, generator=g, dtype=torch.float64)
    prior = {i: (l - 0.01, u + 0.01) for i, (l, u) in root.pre_bounds.items()}
    windowed, dense = both(net, lb, ub, spec, splits=splits, prior_bounds=prior, lower_slopes=slopes)
    assert len(windowed_calls) >= 2
    assert_same(windowed, dense)
    assert any(bool((s != 0).any()) for s in splits.values())


def test_windowed_rows_chunked_by_the_memory_budget(windowed_calls):
    net = small_cnn7(torch.float32)
    x = torch.rand(1, 1, 28, 28)
    lb, ub = linf_box(x, 0.006)
    spec = margin_spec(torch.tensor([5]), 10, torch.float32)
    windowed, dense = both(net, lb, ub, spec, budget=1e-3)  # ~1 MB: a few rows per walk
    assert len(windowed_calls) > 8  # four windowed layers: their rows went in chunks
    assert_same(windowed, dense, 1e-4)


def test_window_plan_follows_the_receptive_field():
    """The plan of a CNN7's rows: 1x1 on the neuron's own map, +2 per 3x3 convolution, doubled
    by the stride-2 one; rows turn dense where a window would cover its map; no plan where a
    layer mixes every position (after Flatten/Linear) or for a network without convolutions."""
    net = CNN7(width=0.125, linear_size=16).build(FashionMNIST.info).eval()
    layers = backsub.flat_layers(net)
    shapes = [(1, *s) for s in backsub.layer_shapes(layers, torch.zeros(1, 1, 28, 28))]
    relus = [i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
    # the fifth convolution's output (14x14): windows 3x3, 5x5 on 14x14 maps, then 11x11, 13x13 on 28x28, 15x15 on the input
    plan = windows.window_plan(layers, shapes, relus[4])
    sizes = sorted(set(plan.values()))
    assert sizes == [(1, 1), (3, 3), (5, 5), (11, 11), (13, 13), (15, 15)] and min(plan) == 0
    assert windows.window_plan(layers, shapes, relus[5]) is None  # after the Linear: dense rows
    # a 6x6 input: the third convolution's rows (3x3 map) have 3x3 then 5x5 windows on the 6x6 maps; the
    # input's 7x7 would cover the map, so they turn dense on the first ReLU's input
    small = [(1, *s) for s in backsub.layer_shapes(layers[: relus[2] + 1], torch.zeros(1, 1, 6, 6))]
    plan = windows.window_plan(layers, small, relus[2])
    assert sorted(set(plan.values())) == [(1, 1), (3, 3), (5, 5)] and min(plan) == relus[0]
    fc = [nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU()]
    assert windows.window_plan(fc, [(1, 4)] + [(1, 4), (1, 3), (1, 3), (1, 2), (1, 2)], 4) is None


def test_engines_walk_windows_by_default(windowed_calls):
    """The certification stages build plain engines: windows are their default."""
    net = odd_conv_net()
    lb, ub = linf_box(torch.rand(1, 3, 17, 19, dtype=torch.float64), 0.04)
    engine = LinearBounds(net, lb, ub, "crown", "same")
    assert engine.windowed
    with torch.no_grad():
        engine.output_bounds(margin_spec(torch.tensor([0]), 7, torch.float64), need_upper=False)
    assert windowed_calls


def test_windowed_walk_gradients_equal_the_dense_walks():
    """Training through sparse CROWN bounds back-propagates through the windows (gathers,
    unpadded transposed convolutions, masks): the same weight gradients as the whole-map walk."""
    net = odd_conv_net()
    lb, ub = linf_box(torch.rand(2, 3, 17, 19, dtype=torch.float64), 0.04)
    spec = margin_spec(torch.tensor([1, 2]), 7, torch.float64)
    grads = []
    for flag in (True, False):
        net.zero_grad()
        engine = LinearBounds(net, lb, ub, "crown", "same")
        engine.windowed = flag
        engine.output_bounds(spec, need_upper=False)[0].sum().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    assert all(torch.allclose(g_w, g_d, rtol=1e-9, atol=1e-10) for g_w, g_d in zip(*grads))
    assert any(float(g.abs().sum()) > 0 for g in grads[0])


def test_odd_geometry_exercises_windows_to_the_input_and_the_turn_to_dense():
    """The equality tests above cover both ends of a windowed walk: rows windowed down to the
    input, and rows that turn dense part-way (their next window would cover its map)."""
    layers = backsub.flat_layers(odd_conv_net())
    shapes = [(1, *s) for s in backsub.layer_shapes(layers, torch.zeros(1, 3, 17, 19, dtype=torch.float64))]
    ends = [min(windows.window_plan(layers, shapes, i)) for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
    assert 0 in ends and any(e > 0 for e in ends)


def test_a_layer_with_every_neuron_unstable_walks_windows_too(monkeypatch):
    """At a large eps every neuron of a layer is IBP-unstable (ConvMed and GowalLarge at eps 0.1):
    those rows used to fall back to whole maps; they walk on windows with the same bounds."""
    ends = []
    original = backsub.window_lower
    monkeypatch.setattr(backsub, "window_lower", lambda engine, end, unit, plan: ends.append(end) or original(engine, end, unit, plan))
    net = odd_conv_net()
    x = torch.rand(2, 3, 17, 19, dtype=torch.float64)
    lb, ub = linf_box(x, 0.5)
    spec = margin_spec(torch.tensor([1, 2]), 7, torch.float64)
    windowed, dense = both(net, lb, ub, spec)
    engine = windowed[0]
    every = [i for i, (l, u) in engine._reference.items()
             if bool(((l < 0) & (u > 0)).flatten(1).all(1).any()) and windows.window_plan(engine.layers, engine.shapes, i)
             and any(isinstance(m, nn.ReLU) for m in engine.layers[:i])]  # the first ReLU's bounds are IBP's, exact
    assert every, "no windowable layer with every neuron unstable: the case is not exercised"
    assert set(every) <= set(ends)
    assert_same(windowed, dense)
