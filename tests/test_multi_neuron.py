"""Multi-neuron constraints (lit_cert.bounds.relu_hull, cuts, multi_neuron) and their use in
branch and bound: valid on the exact hull (vertices found independently by scipy's halfspace
intersection), on sampled and attacked points of tiny networks, below the exact MILP optimum in
float32 and float64 for any multipliers, strictly tighter than alpha-CROWN where the octagon is,
and the verdicts of a search that uses them equal the exact ones."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.spatial import HalfspaceIntersection

from lit_cert.bounds.affine import dense_affine_blocks
from lit_cert.bounds.alpha_crown import optimised_lower_bounds
from lit_cert.bounds.backsub import LinearBounds
from lit_cert.bounds.cuts import ReluCuts
from lit_cert.bounds.multi_neuron import multi_neuron_cuts, neuron_groups
from lit_cert.bounds.relu_hull import graph_points, hull_cuts, octagon_faces, octagon_offsets, offsets
from lit_cert.certify.bab import BranchAndBound, MultiNeuron
from lit_cert.certify.settings import BaBConfig
from lit_cert.errors import ConfigError

from .exact import min_linear_objective
from .test_bab import check_verdict, problem


def reachable_octagon(k: int, seed: int, slack: float = 0.0):
    """A group's octagon from a random affine image of a cube (sampled extremes, exact for an
    affine map's vertices): (faces, offsets, inputs sampled inside)."""
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(k, 3)), rng.normal(size=k) * 0.3
    corners = np.array(list(itertools.product([-1, 1], repeat=3)))
    z = np.concatenate([corners, rng.uniform(-1, 1, size=(4000, 3))])
    x = z @ w.T + b
    pairs = list(itertools.combinations(range(k), 2))
    sums = np.stack([x[:, i] + x[:, j] for i, j in pairs], 1)
    diffs = np.stack([x[:, i] - x[:, j] for i, j in pairs], 1)
    off = octagon_offsets(x.min(0) - slack, x.max(0) + slack, np.stack([sums.min(0), diffs.min(0)], 1) - slack,
                          np.stack([sums.max(0), diffs.max(0)], 1) + slack)
    return octagon_faces(k)[0], off, x


def exact_graph_vertices(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The vertices of every orthant piece of ``{a x <= b}`` mapped through ReLU, by qhull's
    halfspace intersection (independent of :func:`graph_points`)."""
    from scipy.optimize import linprog

    k = a.shape[1]
    out = []
    for signs in itertools.product([1.0, -1.0], repeat=k):
        piece_a = np.concatenate([a, -np.diag(signs)])  # s_i x_i >= 0
        piece_b = np.concatenate([b, np.zeros(k)])
        # an interior point: maximise the slack t of a x + t ||a_i|| <= b
        norms = np.linalg.norm(piece_a, axis=1)
        res = linprog(np.r_[np.zeros(k), -1.0], A_ub=np.c_[piece_a, norms], b_ub=piece_b,
                      bounds=[(None, None)] * k + [(0, None)], method="highs")
        if res.status != 0 or res.x[-1] < 1e-9:
            continue  # an empty (or flat) piece
        hs = HalfspaceIntersection(np.c_[piece_a, -piece_b], res.x[:k])
        v = hs.intersections
        out.append(np.concatenate([v, np.maximum(v, 0)], 1))
    return np.concatenate(out)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_hull_cuts_hold_on_the_exact_hull_and_on_sampled_points(k, seed):
    a, b, x = reachable_octagon(k, seed)
    points = graph_points(a, b)
    wx, wy, c = hull_cuts(points, k)
    assert len(c) > 0  # the octagon ties the neurons: there are joint facets
    exact = exact_graph_vertices(a, b)
    assert (exact[:, :k] @ wx.T + exact[:, k:] @ wy.T - c).max() <= 1e-9
    y = np.maximum(x, 0)
    assert (x @ wx.T + y @ wy.T - c).max() <= 1e-9
    # tight: each offset is attained (up to the slack) at a vertex of the exact hull
    attained = (exact[:, :k] @ wx.T + exact[:, k:] @ wy.T).max(0)
    np.testing.assert_allclose(attained, c, atol=1e-6)


@pytest.mark.parametrize("k", [2, 3])
def test_a_box_alone_gives_no_joint_facet(k):
    """Over a box the graph's hull is the product of the single-neuron triangles: every facet
    concerns one neuron, so nothing joint is returned (a hull that invented joint facets here
    would cut off true points)."""
    a, _ = octagon_faces(k)
    lo, hi = -np.linspace(0.5, 1.5, k), np.linspace(1.0, 2.0, k)
    pairs = list(itertools.combinations(range(k), 2))
    pair_lo = np.array([[lo[i] + lo[j], lo[i] - hi[j]] for i, j in pairs])
    pair_hi = np.array([[hi[i] + hi[j], hi[i] - lo[j]] for i, j in pairs])
    wx, wy, c = hull_cuts(graph_points(a, octagon_offsets(lo, hi, pair_lo, pair_hi)), k)
    assert len(c) == 0


def test_joint_cuts_remove_part_of_the_single_neuron_relaxation():
    """The point of the construction: some cut is violated by a point of the product of the
    triangles (here the two neurons' inputs are nearly equal, x1 - x2 in [-0.1, 0.1])."""
    a, _ = octagon_faces(2)
    b = octagon_offsets(np.array([-1.0, -1.0]), np.array([1.0, 1.0]), np.array([[-2.0, -0.1]]), np.array([[2.0, 0.1]]))
    wx, wy, c = hull_cuts(graph_points(a, b), 2)
    # (x1, x2) = (0, 0), y = (0.5, 0) lies in both triangles (y <= (x + 1) / 2) but y1 - y2 <= 0.1 must hold
    point_x, point_y = np.array([0.0, 0.0]), np.array([0.5, 0.0])
    assert (wx @ point_x + wy @ point_y - c).max() > 0.1


def test_float32_offsets_are_rounded_up():
    points = np.array([[0.1, 0.2, 0.1, 0.2], [1 / 3, -0.7, 1 / 3, 0.0]])
    wx, wy = np.array([[1 / 3, 1.0]], dtype=np.float32).astype(np.float64), np.array([[0.7, -1.0]])
    c = offsets(points, wx, wy, np.float32)
    assert c.dtype == np.float32
    exact = (points[:, :2] @ wx.T + points[:, 2:] @ wy.T).max()
    assert float(c[0]) >= exact


def test_lagrangian_terms_scatter_onto_the_grouped_neurons():
    cuts = ReluCuts(torch.tensor([[[0, 2], [1, 2]]]), torch.tensor([[[1.0, 2.0], [0.0, 1.0]]]),
                    torch.tensor([[[3.0, 0.0], [1.0, 1.0]]]), torch.tensor([[0.5, 2.0]]))
    a = torch.zeros(2, 1, 3)
    gamma = torch.tensor([[[1.0, 2.0]], [[0.0, 1.0]]])
    out = cuts.add_outputs(a, gamma)
    torch.testing.assert_close(out, torch.tensor([[[3.0, 2.0, 2.0]], [[0.0, 1.0, 1.0]]]))
    out, c = cuts.add_inputs(a, torch.zeros(2, 1), gamma)
    torch.testing.assert_close(out, torch.tensor([[[1.0, 0.0, 4.0]], [[0.0, 0.0, 1.0]]]))
    torch.testing.assert_close(c, torch.tensor([[-4.5], [-2.0]]))


def test_groups_take_the_best_scored_unstable_neurons():
    l = torch.tensor([[-1.0, 0.5, -2.0, -0.1, -3.0]])
    u = torch.tensor([[1.0, 1.0, 2.0, 0.1, -1.0]])  # neuron 1 active, 4 dead
    groups = neuron_groups(l, u, 2, 3)
    assert groups.tolist() == [[[0, 2], [2, 3]]]  # the three unstable ones, in index order
    assert neuron_groups(l, u, 2, 2).tolist() == [[[0, 2]]]  # the two best: 2 (height 1) and 0 (0.5)
    assert neuron_groups(l, u, 3, 2).shape == (1, 0, 3)
    assert neuron_groups(l, u, 2, 5).tolist()[0][-1] == [-1, -1]  # windows past the 3 unstable ones


def layer_values(net, x):
    """{ReLU index: (input, output)} of the network at ``x``."""
    out, h = {}, x
    for i, m in enumerate(net):
        if isinstance(m, torch.nn.ReLU):
            out[i] = (h, m(h))
        h = m(h)
    return out


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(5))
def test_network_cuts_are_sound_and_tighten_the_optimised_bound(seed, dtype, k):
    net, lb, ub, rows = problem(seed, sizes=(4, 16, 16, 3), eps=0.3)
    truth = [min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), r.numpy()) for r in rows]
    net, lb, ub, rows = net.to(dtype), lb.to(dtype), ub.to(dtype), rows.to(dtype)
    root = LinearBounds(net, lb, ub, "crown", "same")
    root.output_bounds(rows[None], need_upper=False)
    cuts = multi_neuron_cuts(list(net), lb, ub, root.pre_bounds, k=k, neurons=16)
    assert cuts and all(c.c.dtype == dtype for c in cuts.values())
    # every constraint holds at sampled inputs, corners and PGD-like extremes of each output row
    g = torch.Generator().manual_seed(seed)
    xs = torch.cat([lb + (ub - lb) * torch.rand(4000, lb.shape[1], generator=g, dtype=dtype),
                    torch.where(torch.rand(500, lb.shape[1], generator=g) < 0.5, lb, ub)])
    with torch.no_grad():
        for idx, (z, y) in layer_values(net, xs).items():
            assert float(cuts[idx].violation(z, y).max()) <= 1e-5
    alpha = optimised_lower_bounds(LinearBounds(net, lb, ub), rows[None], steps=60)[0]
    engine = LinearBounds(net, lb, ub)
    engine.cuts = cuts
    multi = optimised_lower_bounds(engine, rows[None], steps=60)[0]
    engine.cut_multipliers = {i: 5 * torch.rand((1, len(rows), len(c)), generator=g, dtype=dtype) for i, c in cuts.items()}
    engine.lower_slopes = {i: torch.rand(l.shape, generator=g, dtype=dtype) for i, (l, _) in engine.pre_bounds.items()}
    random = engine.output_bounds(rows[None], need_upper=False)[0][0]
    tol = 1e-6 if dtype == torch.float64 else 1e-3
    for m, exact in enumerate(truth):
        assert float(multi[m]) <= exact + tol and float(random[m]) <= exact + tol
    assert float((multi - alpha).max()) > 1e-3  # the joint constraints do tighten some row


def test_cuts_hold_on_every_split_subdomain_as_they_are_reused_there():
    net, lb, ub, rows = problem(1, sizes=(3, 10, 8, 3), eps=0.3)
    root = LinearBounds(net, lb, ub)
    root.output_bounds(rows[None], need_upper=False)
    cuts = multi_neuron_cuts(list(net), lb, ub, root.pre_bounds, k=2, neurons=10)
    l, u = root.pre_bounds[1]
    j = int(torch.nonzero((l < 0) & (u > 0))[0, 1])
    for sign in (1, -1):
        s = torch.zeros_like(l, dtype=torch.int8)
        s[0, j] = sign
        truth = [min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), r.numpy(), splits={(0, j): sign}) for r in rows]
        engine = LinearBounds(net, lb, ub, splits={1: s}, prior_bounds=root.pre_bounds, reuse_prior_upto=1)
        engine.cuts = cuts
        value = optimised_lower_bounds(engine, rows[None], steps=30, beta=True)[0]
        for m, exact in enumerate(truth):
            if exact is not None:
                assert float(value[m]) <= exact + 1e-7


@pytest.mark.parametrize("seed", range(8))
def test_search_with_multi_neuron_constraints_gives_the_exact_verdicts(seed):
    net, lb, ub, rows = problem(seed)
    config = BaBConfig(timeout=60, batch=16, multi_neuron=2 + seed % 2, quick_share=0.0)
    bab = BranchAndBound(net, config, dense_blocks=lambda: dense_affine_blocks(net, (3,)))
    result = bab.verify(lb, ub, rows)
    assert result.status in ("certified", "falsified"), result.reason
    check_verdict(net, lb, ub, rows, result)


def test_the_full_search_bounds_with_cuts_and_the_quick_phase_without(monkeypatch):
    net, lb, ub, rows = problem(3)
    seen = []
    original = MultiNeuron.root

    def spy(self, *args):
        box = original(self, *args)
        seen.append((self.config.multi_neuron, len(self.cuts), bool(box.gammas)))
        return box

    monkeypatch.setattr(MultiNeuron, "root", spy)
    bab = BranchAndBound(net, BaBConfig(timeout=30, batch=4, multi_neuron=2, quick_share=0.0, root_steps=0),
                         dense_blocks=lambda: dense_affine_blocks(net, (3,)))
    result = bab.verify(lb, ub, rows)
    check_verdict(net, lb, ub, rows, result)
    assert seen and seen[0][0] == 2 and seen[0][1] > 0 and seen[0][2]
    assert BranchAndBound._quick(BaBConfig(multi_neuron=3), 1.0).multi_neuron == 0


def test_a_float32_certificate_resting_on_cuts_is_replayed_in_float64_with_float64_cuts(monkeypatch):
    net, lb, ub, rows = problem(3)
    net32 = net.float()
    bab = BranchAndBound(net32, BaBConfig(timeout=30, batch=4, multi_neuron=2, quick_share=0.0))
    bab.record_leaves = True
    result = bab.verify(lb.float(), ub.float(), rows.float())
    assert result.status == "certified"
    dtypes = []
    original = MultiNeuron.root

    def spy(self, lb_, *args):
        box = original(self, lb_, *args)
        dtypes.append({c.c.dtype for c in self.cuts.values()})
        return box

    monkeypatch.setattr(MultiNeuron, "root", spy)
    net64 = net.double()
    again = BranchAndBound(net64, BaBConfig(timeout=30, batch=4, multi_neuron=2, quick_share=0.0))
    replay = again.replay(lb, ub, rows, result.leaves or {})
    assert replay.status == "certified"
    assert dtypes and all(d <= {torch.float64} for d in dtypes)


@pytest.mark.parametrize("bad", [1, 4, -2, True, 2.5])
def test_group_sizes_other_than_2_or_3_are_refused(bad):
    with pytest.raises(ConfigError, match="multi_neuron"):
        BaBConfig(multi_neuron=bad)


def test_margin_rows_with_a_zero_row_keep_their_multipliers_in_place():
    """The true class's zero margin row is normally skipped; with per-row multipliers every row
    stays, so each multiplier meets its own row (and the zero row's bound is 0)."""
    from lit_cert.bounds import margin_spec

    net, lb, ub, _ = problem(2, sizes=(4, 16, 16, 3), eps=0.3)
    y = int(net((lb + ub) / 2).argmax())
    spec = margin_spec(torch.tensor([y]), 3, torch.float64)
    root = LinearBounds(net, lb, ub)
    root.output_bounds(spec, need_upper=False)
    engine = LinearBounds(net, lb, ub)
    engine.cuts = multi_neuron_cuts(list(net), lb, ub, root.pre_bounds, k=2, neurons=16)
    value = optimised_lower_bounds(engine, spec, steps=20)
    assert value.shape == (1, 3) and float(value[0, y]) == 0.0
    truth = [min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), r.numpy()) for r in spec[0]]
    assert all(float(value[0, m]) <= truth[m] + 1e-7 for m in range(3))
