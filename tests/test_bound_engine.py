"""The back-substitution engine's optimisations leave bounds and training signals unchanged (#13).

The engine (lit_cert.bounds.backsub) back-substitutes only IBP-unstable neurons (sparse
intermediate bounds), walks lower and upper bounds together for equal-slope relaxations, walks a
BatchNorm together with the layer before it and skips the zero margin row. The reference here is
tests/reference_backsub.py: dense matrices, every neuron bounded with the relaxation's own bounds,
one sample at a time -- the algorithm before the optimisations, written independently.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.bounds import linf_box, margin_spec
from lit_cert.bounds.backsub import LinearBounds, linear_bounds
from lit_cert.bounds.expected import expected_bounds
from lit_cert.bounds.spec import skip_zero_rows
from lit_cert.data import FashionMNIST, SyntheticImages
from lit_cert.layers import BatchNorm2d
from lit_cert.methods import CROWNIBP, IBP, RelaxationTraining
from lit_cert.models import CONV, FC

from .exact import randomise_batchnorm
from .reference_backsub import dense_bounds, dense_segments, interval_pre_bounds
from .helpers import conv_net

RELAX = ["crown", "crown-0", "deepz", "hbox"]


def trained_fc() -> nn.Sequential:
    """A small FC trained for a few IBP steps: many stable neurons, different counts per sample."""
    torch.manual_seed(0)
    dm = SyntheticImages(in_shape=(1, 6, 6), train_size=64, val_size=8, test_size=8, batch_size=64)
    dm.setup()
    x, y = dm.train_set.images.float() / 255, dm.train_set.labels
    m = IBP(network=FC(hidden=(24, 16, 12)), data_info=dm.info, eps_train=0.05, eps_test=0.05).train()
    m.eps, m.kappa = 0.05, 0.0
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    for _ in range(60):
        opt.zero_grad()
        m.training_loss(x, y)[0].backward()
        opt.step()
    return m.net.eval()


NETS = {
    "conv+bn": (lambda: randomise_batchnorm(conv_net()).eval(), (2, 7, 7)),
    "paradox-CONV": (lambda: CONV().build(FashionMNIST.info).eval(), (1, 28, 28)),
    "trained-FC": (trained_fc, (1, 6, 6)),
}


def stable_implies_stable(net, lb, ub, pres):
    """Whether every IBP-stable neuron is also stable under the reference's relaxation bounds
    (the condition under which sparse and dense bounds coincide, module docstring of backsub)."""
    segments = dense_segments(net, tuple(lb.shape[1:]))
    for i, pre in enumerate(pres):
        ibp = interval_pre_bounds(segments, lb[i].flatten(), ub[i].flatten())
        for (il, iu), (dl, du) in zip(ibp, pre):
            if bool(((il >= 0) & (dl < 0)).any() or ((iu <= 0) & (du > 0)).any()):
                return False
    return True


@pytest.mark.parametrize("net_name", sorted(NETS))
@pytest.mark.parametrize("relaxation", RELAX)
def test_bounds_equal_the_dense_reference(net_name, relaxation):
    factory, shape = NETS[net_name]
    net = factory().double()
    k = net(torch.zeros(1, *shape, dtype=torch.float64)).shape[1]
    torch.manual_seed(1)
    x = torch.rand(3, *shape, dtype=torch.float64)
    y = torch.randint(0, k, (3,))
    spec = margin_spec(y, k, torch.float64)
    eye = torch.eye(k, dtype=torch.float64).expand(3, k, k)
    partly_stable = differ = 0
    for eps in (0.003, 0.03, 0.2):
        lb, ub = linf_box(x, eps)
        with torch.no_grad():
            (ref, ref_lo, ref_up), pres = dense_bounds(net, lb, ub, [spec, eye, -eye], relaxation)
            ref_up = -ref_up
            for sparse in (False, True):
                got = linear_bounds(net, lb, ub, spec, relaxation, sparse=sparse, need_upper=False)[0]
                lo, up = linear_bounds(net, lb, ub, None, relaxation, sparse=sparse)
                if sparse and not stable_implies_stable(net, lb, ub, pres):
                    # an IBP-stable neuron that the relaxation's own bounds call unstable: sparse
                    # relaxes it exactly, so its bounds may only be tighter (and are still sound)
                    assert relaxation != "hbox"  # hBox bounds lie inside IBP's: never happens
                    assert torch.all(got >= ref - 1e-6) and torch.all(lo >= ref_lo - 1e-6) and torch.all(up <= ref_up + 1e-6)
                    differ += 1
                    continue
                assert torch.allclose(got, ref, rtol=1e-9, atol=1e-6), (eps, sparse, (got - ref).abs().max())
                assert torch.allclose(lo, ref_lo, rtol=1e-9, atol=1e-6) and torch.allclose(up, ref_up, rtol=1e-9, atol=1e-6)
        unstable = [((l < 0) & (u > 0)).double().mean().item() for pre in pres for l, u in pre]
        partly_stable += any(0 < f < 1 for f in unstable)
    assert partly_stable  # the packing of a few unstable rows per sample was exercised
    # equality is the rule: only the largest eps may meet the exception -- except for CROWN-0, whose
    # own bounds of stably active neurons (lower line 0) are so loose that IBP-stable neurons are
    # often unstable under them at every eps
    assert differ <= (3 if relaxation == "crown-0" else 1)


def test_crown_ibp_and_expected_bounds_equal_the_reference():
    net = randomise_batchnorm(conv_net()).eval().double()
    torch.manual_seed(2)
    x = torch.rand(4, 2, 7, 7, dtype=torch.float64)
    spec = margin_spec(torch.randint(0, 4, (4,)), 4, torch.float64)
    lb, ub = linf_box(x, 0.05)
    with torch.no_grad():
        got = linear_bounds(net, lb, ub, spec, "crown", "ibp", need_upper=False)[0]
        ref = dense_bounds(net, lb, ub, spec, "crown", intermediate="ibp")[0]
        assert torch.allclose(got, ref, rtol=1e-9, atol=1e-6)
        fc = nn.Sequential(nn.Flatten(), nn.Linear(98, 12), nn.ReLU(), nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 4)).double()
        lo, up = expected_bounds(fc, lb, ub, masks="propagated")
        eye = torch.eye(4, dtype=torch.float64).expand(4, 4, 4)
        assert torch.allclose(lo, dense_bounds(fc, lb, ub, eye, "expected")[0], atol=1e-9)
        assert torch.allclose(up, -dense_bounds(fc, lb, ub, -eye, "expected")[0], atol=1e-9)


def test_skipping_zero_rows():
    spec = margin_spec(torch.tensor([2, 0, 1]), 4)
    calls = []

    def fn(rows):
        calls.append(rows.shape)
        return rows.sum(-1) * 10 + rows[..., 0]

    out = skip_zero_rows(fn, spec)
    assert calls == [(3, 3, 4)]
    assert torch.equal(out, fn(spec))
    uneven = spec.clone()
    uneven[0, 1] = 0  # two zero rows in sample 0, one elsewhere: no skipping
    assert torch.equal(skip_zero_rows(fn, uneven), fn(uneven)) and calls[-1] == (3, 4, 4)


@pytest.mark.parametrize("relaxation", ["crown", "crown-0", "alpha"])
def test_shared_rows_relu_step_equals_the_per_sample_step(relaxation):
    """The ReLU step of batch-shared rows (sign split by clamps) = the per-sample select: the
    coefficients bitwise, the offsets and the gradients of all inputs to rounding (the offsets
    are one matrix product for shared rows and a batched one per sample: different BLAS kernels,
    which agree bitwise on some CPUs and to the last bits on others) -- with exact zeros among
    the coefficients, where the two forms could differ."""
    from lit_cert.bounds.backsub import relu_backward, relu_relaxation, resolve_rule

    torch.manual_seed(5)
    b, m, shape = 4, 6, (3, 5, 5)
    l = torch.randn(b, *shape, dtype=torch.float64) - 0.3
    u = l + torch.rand(b, *shape, dtype=torch.float64) * 2
    a = torch.randn(1, m, *shape, dtype=torch.float64)
    a[a.abs() < 0.3] = 0.0
    rule = resolve_rule("crown" if relaxation == "alpha" else relaxation)
    slopes = torch.rand(b, *shape, dtype=torch.float64) if relaxation == "alpha" else None
    outs = []
    for shared in (True, False):
        leaves = [t.clone().requires_grad_() for t in (a, l, u)] + ([slopes.clone().requires_grad_()] if slopes is not None else [])
        rows = leaves[0] if shared else leaves[0].expand(b, *leaves[0].shape[1:])
        lines = relu_relaxation(leaves[1], leaves[2], rule, leaves[3] if slopes is not None else None)
        new_a, c = relu_backward(rows, torch.zeros(b, m, dtype=torch.float64), rule, *lines)
        assert new_a.shape == (b, m, *shape)
        w = torch.randn(new_a.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        grads = torch.autograd.grad((new_a * w).sum() + (c ** 2).sum(), leaves)
        outs.append((new_a.detach(), c.detach(), grads))
    (a1, c1, g1), (a2, c2, g2) = outs
    assert torch.equal(a1, a2) and torch.allclose(c1, c2, rtol=1e-12, atol=1e-12)
    for x1, x2 in zip(g1, g2):
        assert torch.allclose(x1, x2, rtol=1e-12, atol=1e-12)
    assert all(g.abs().sum() > 0 for g in g1)


@pytest.mark.parametrize("relaxation", ["crown", "deepz"])
def test_rows_chunked_by_the_coefficient_budget_give_the_same_bounds(relaxation):
    """coefficient_memory splits every intermediate walk into row chunks (here a budget of a few
    rows): the same bounds, the chunking really happens (walks counted), and only one chunk's
    walk is alive at a time (no walk waits on the bounds of a layer below)."""
    from lit_cert.bounds.backsub import coefficient_memory

    torch.manual_seed(2)
    net = conv_net().double().eval()
    x = torch.rand(3, 2, 8, 8, dtype=torch.float64)
    lb, ub = linf_box(x, 0.05)
    spec = margin_spec(torch.tensor([0, 1, 2]), 4, torch.float64)
    free = LinearBounds(net, lb, ub, relaxation, sparse=False)
    ref = free.output_bounds(spec, need_upper=False)[0]
    walks, depth, deepest = [], [0], [0]
    original = LinearBounds.bounds

    def counting(self, end, a):  # rows per walk, and how many walks are alive at once
        walks.append(a.shape[1])
        depth[0] += 1
        deepest[0] = max(deepest[0], depth[0])
        try:
            return original(self, end, a)
        finally:
            depth[0] -= 1

    with coefficient_memory(1e-6):  # ~1 KB: a handful of rows per walk
        eng = LinearBounds(net, lb, ub, relaxation, sparse=False)
        rows = eng.rows_per_walk(len(eng.layers))
        LinearBounds.bounds = counting
        try:
            got = eng.output_bounds(spec, need_upper=False)[0]
        finally:
            LinearBounds.bounds = original
    assert rows is not None and max(walks) <= rows and len(walks) > 4
    assert deepest[0] == 1  # the layers below are bounded first: no chunk waits on another one's walk
    assert torch.allclose(got, ref, rtol=1e-10, atol=1e-10)
    for idx, (l, u) in free.pre_bounds.items():
        assert torch.allclose(eng.pre_bounds[idx][0], l, rtol=1e-10, atol=1e-10)
        assert torch.allclose(eng.pre_bounds[idx][1], u, rtol=1e-10, atol=1e-10)
    assert LinearBounds(net, lb, ub, relaxation).rows_per_walk(3) is None  # outside the block: no chunking


@pytest.mark.parametrize("stride, groups", [(1, 1), (2, 1), (1, 2)])
def test_float64_conv_transpose_goes_in_pieces_with_the_same_result(stride, groups, monkeypatch):
    """On CPU in float64 the backward walk through a convolution transposes the rows in pieces
    (PyTorch's float64 fallback builds an im2col buffer of out-channels x kernel values per input
    pixel: 9x the block for a 3x3 layer of equal channels); the result equals one call, bitwise
    (each row is transposed on its own), and float32 keeps one call."""
    from lit_cert.bounds import coefficients

    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, stride=stride, padding=1, groups=groups).double()
    flat = torch.randn(37, 4, 5, 5, dtype=torch.float64)
    args = (None, conv.stride, conv.padding, (1, 1) if stride == 2 else (0, 0), groups, conv.dilation)
    whole = F.conv_transpose2d(flat, conv.weight, *args)
    calls = []
    original = F.conv_transpose2d
    monkeypatch.setattr(coefficients.F, "conv_transpose2d", lambda x, *a: calls.append(x.shape[0]) or original(x, *a))
    got = coefficients.conv_transpose(flat, conv.weight, args)
    expected_pieces = math.ceil(conv.weight.shape[1] * groups * 9 / 4)  # buffer per input value: (4 / groups) * groups * 9 / 4
    assert sum(calls) == 37 and max(calls) == math.ceil(37 / expected_pieces) and len(calls) > 1
    assert torch.equal(got, whole)
    calls.clear()
    single = coefficients.conv_transpose(flat.float(), conv.weight.float(), args)
    assert calls == [37] and torch.allclose(single.double(), whole, atol=1e-5)


def _reference_loss(method, x, y):
    """CE of the negated margin lower bounds from the dense reference (kappa = 0)."""
    spec = margin_spec(y, method.num_classes, x.dtype)
    lb, ub = linf_box(x, method.eps)
    if isinstance(method, CROWNIBP):
        low = dense_bounds(method.net, lb, ub, spec, "crown", intermediate="ibp")[0]
    else:
        low = dense_bounds(method.net, lb, ub, spec, method.relaxation)[0]
    return F.cross_entropy(-low, y)


@pytest.mark.parametrize("case", ["crown-CONV", "deepz-CONV", "hbox-CONV", "crown-FC", "crown-sparse-FC", "crown-ibp-FC"])
def test_training_step_loss_and_gradients_unchanged(case):
    """One training step of the optimised engine = the dense reference's loss and gradients."""
    torch.manual_seed(3)
    dm = SyntheticImages(in_shape=(1, 28, 28) if "CONV" in case else (1, 8, 8), train_size=16, val_size=8,
                         test_size=8, batch_size=16)
    dm.setup()
    x, y = dm.train_set.images[:6].double() / 255, dm.train_set.labels[:6]
    net = CONV() if "CONV" in case else FC(hidden=(20, 16, 12))
    if case.startswith("crown-ibp"):
        m = CROWNIBP(network=net, data_info=dm.info, eps_train=0.05, eps_test=0.05)
    else:
        m = RelaxationTraining(network=net, data_info=dm.info, eps_train=0.05, eps_test=0.05, relaxation=case.split("-")[0],
                               sparse_intermediate=True if "sparse" in case else None)
        assert m.sparse == (case.startswith("hbox") or "sparse" in case)  # dense by default but for hBox
    m = m.double().train()
    m.eps, m.kappa, m.beta = 0.05, 0.0, 1.0
    params = list(m.parameters())
    loss = m.training_loss(x, y)[0]
    ref = _reference_loss(m, x, y)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    g = torch.autograd.grad(loss, params)
    g_ref = torch.autograd.grad(ref, params)
    num = sum(((a - b) ** 2).sum() for a, b in zip(g, g_ref))
    assert (num / sum((b ** 2).sum() for b in g_ref)).sqrt().item() <= 1e-5
    assert all(b.abs().sum() > 0 for b in g_ref)  # every parameter receives a signal


def test_batchnorm_walked_with_its_layer_in_training_mode():
    """Training-mode BatchNorm (batch statistics recorded by the clean pass) walked together with
    the convolution before it gives the bounds of the layer-by-layer walk."""
    from lit_cert.bounds.backsub import backward_rule

    torch.manual_seed(5)
    net = conv_net()
    net[5] = BatchNorm2d(5)  # lit_cert's recording BatchNorm everywhere: bounds in training mode
    net = randomise_batchnorm(net).double().train()
    x = torch.rand(5, 2, 7, 7, dtype=torch.float64)
    net(x)
    lb, ub = linf_box(x, 0.05)
    spec = margin_spec(torch.randint(0, 4, (5,)), 4, torch.float64)
    engine = LinearBounds(net, lb, ub, "crown", "ibp")
    fused = engine.output_bounds(spec, need_upper=False)[0]

    class Unfused(LinearBounds):
        def _affine_step(self, idx, a, c):
            a, c = backward_rule(self.layers[idx])(self.layers[idx], a, c, self.shapes[idx])
            return idx - 1, a, c

    plain = Unfused(net, lb, ub, "crown", "ibp").output_bounds(spec, need_upper=False)[0]
    assert torch.allclose(fused, plain, rtol=1e-10, atol=1e-9)


def test_sparse_crown_bounds_differ_from_dense_in_both_directions_and_stay_sound():
    """Sparse intermediate bounds are not 'never looser' for CROWN: relaxing an IBP-stable neuron
    exactly changes later neurons' bounds, and CROWN's adaptive lower slope can flip with them.
    On small random FC nets both directions occur; every bound holds at sampled points."""
    torch.set_grad_enabled(False)
    try:
        seen = {"looser": 0, "tighter": 0}
        for seed in range(30):
            torch.manual_seed(seed)
            net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8),
                                nn.ReLU(), nn.Linear(8, 3)).double()
            x = torch.rand(4, 1, 2, 2, dtype=torch.float64)
            y = torch.randint(0, 3, (4,))
            spec = margin_spec(y, 3, torch.float64)
            lb, ub = linf_box(x, 0.4)
            dense = linear_bounds(net, lb, ub, spec, "crown", sparse=False, need_upper=False)[0]
            sparse = linear_bounds(net, lb, ub, spec, "crown", sparse=True, need_upper=False)[0]
            seen["looser"] += int((sparse < dense - 1e-6).sum())
            seen["tighter"] += int((sparse > dense + 1e-6).sum())
            pts = lb.unsqueeze(1) + (ub - lb).unsqueeze(1) * torch.rand(4, 500, 1, 2, 2, dtype=torch.float64)
            true = torch.einsum("bmk,bsk->bsm", spec, net(pts.flatten(0, 1)).view(4, 500, 3)).amin(1)
            assert torch.all(sparse <= true + 1e-9) and torch.all(dense <= true + 1e-9)
        assert seen["looser"] >= 1 and seen["tighter"] >= 1, seen
    finally:
        torch.set_grad_enabled(True)


def test_stability_reference_steps_from_the_previous_layers_bounds():
    """Sparse bounds decide stability by IBP from the input intersected with one interval step
    from the previous ReLU's computed bounds (auto_LiRPA's reference). That reference must hold
    at sampled points, lie inside IBP, be strictly tighter in a deep network (else the rows it
    saves are not saved), and leave the margins' bounds sound and no looser than with IBP alone
    on this network."""
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(6 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 5)).double().eval()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    lb, ub = linf_box(x, 0.05)
    spec = margin_spec(torch.tensor([0, 1, 2]), 5, torch.float64)
    runs = {}
    with torch.no_grad():
        for step in (True, False):
            engine = LinearBounds(net, lb, ub, "crown", "same")
            engine.step_reference = step
            low = engine.output_bounds(spec, need_upper=False)[0]
            refs = {i: engine.reference_bounds(i) for i in engine.pre_bounds}
            runs[step] = (engine, low, refs)
        pts = lb.unsqueeze(1) + (ub - lb).unsqueeze(1) * torch.rand(3, 400, 1, 8, 8, dtype=torch.float64)
        acts, z = {}, pts.flatten(0, 1)
        for i, layer in enumerate(net):
            if isinstance(layer, nn.ReLU):
                acts[i] = z.view(3, 400, *z.shape[1:])
            z = layer(z)
        margins = torch.einsum("bmk,bsk->bsm", spec, z.view(3, 400, 5)).amin(1)
    (engine, low, refs), (_, low_ibp, ibp) = runs[True], runs[False]
    tighter = 0
    for i, (l, u) in refs.items():
        seen = acts[i]
        assert torch.all(seen >= l.unsqueeze(1) - 1e-9) and torch.all(seen <= u.unsqueeze(1) + 1e-9), i
        assert torch.all(l >= ibp[i][0]) and torch.all(u <= ibp[i][1])
        unstable = lambda b: int(((b[0] < 0) & (b[1] > 0)).sum())  # noqa: E731
        tighter += unstable(refs[i]) < unstable(ibp[i])
    assert tighter >= 2  # the deeper layers: fewer neurons to back-substitute
    assert torch.all(low <= margins + 1e-9) and torch.all(low_ibp <= margins + 1e-9)
    assert torch.all(low >= low_ibp - 1e-9)
