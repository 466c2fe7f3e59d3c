"""Branch and bound (lit_cert.certify.bab): sound under splits, complete on tiny networks.

Every bound computed under split constraints is checked against the exact minimum over the
subdomain (MILP with the split half-spaces, tests/exact.py); every verdict against the exact
minimum over the box; every counterexample re-evaluated with the plain network.
"""

import numpy as np
import pytest
import torch

from lit_cert.bounds import linf_box, margin_spec
from lit_cert.bounds.alpha_crown import optimised_lower_bounds
from lit_cert.bounds.backsub import LinearBounds
from lit_cert.certify.bab import BranchAndBound
from lit_cert.certify.settings import BaBConfig
from lit_cert.certify.cascade import Cascade, CascadeConfig
from lit_cert.bounds.affine import dense_affine_blocks

from .exact import min_linear_objective, tiny_relu_net


def other_rows(y: int, k: int) -> torch.Tensor:
    spec = margin_spec(torch.tensor([y]), k, torch.float64)[0]
    return torch.cat([spec[:y], spec[y + 1 :]])


def problem(seed: int, sizes=(3, 12, 10, 8, 3), eps=0.15):
    net = tiny_relu_net(sizes, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, sizes[0], dtype=torch.float64, generator=g)
    y = int(net(x).argmax())
    return net, x - eps, x + eps, other_rows(y, sizes[-1])


def exact_min(net, lb, ub, rows, splits=None):
    values = [min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), r.numpy(), splits=splits) for r in rows]
    return None if any(v is None for v in values) else min(values)


@pytest.mark.parametrize("seed", range(4))
def test_bounds_under_splits_are_sound_for_the_subdomain(seed):
    net, lb, ub, rows = problem(seed, sizes=(3, 10, 8, 3), eps=0.3)
    relu_idx = [1, 3]
    root = LinearBounds(net, lb, ub, "crown", "same")
    root.output_bounds(rows[None], need_upper=False)
    g = torch.Generator().manual_seed(seed)
    checked = 0
    for trial in range(12):
        splits, exact_splits = {}, {}
        for k, idx in enumerate(relu_idx):
            l, u = root.pre_bounds[idx]
            unstable = torch.nonzero(((l < 0) & (u > 0))[0]).flatten()
            s = torch.zeros_like(l, dtype=torch.int8)
            for j in unstable[torch.randperm(len(unstable), generator=g)[: 1 + trial % 2]].tolist():
                sign = 1 if torch.rand(1, generator=g).item() < 0.5 else -1
                s[0, j] = sign
                exact_splits[(k, j)] = sign
            splits[idx] = s
        truth = [min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), r.numpy(), splits=exact_splits) for r in rows]
        if truth[0] is None:
            continue  # empty subdomain: any bound is vacuously sound
        for prior in (None, dict(root.pre_bounds)):  # with the parent's bounds intersected and reused
            engine = LinearBounds(net, lb, ub, "crown", "same", splits=splits, prior_bounds=prior,
                                  reuse_prior_upto=relu_idx[0] if prior else -1)
            crown = engine.output_bounds(rows[None], need_upper=False)[0][0]
            best = optimised_lower_bounds(engine, rows[None], steps=15, beta=True)[0]
            assert set(engine.split_multipliers) == {i for i in relu_idx if bool((splits[i] != 0).any())}
            # any multipliers >= 0 and slopes in [0, 1] are sound too, not only optimised ones
            engine.lower_slopes = {i: torch.rand(l.shape, generator=g, dtype=l.dtype) for i, (l, _) in engine.pre_bounds.items()}
            engine.split_multipliers = {i: 3 * torch.rand(s.shape, generator=g, dtype=torch.float64) for i, s in splits.items()}
            random = engine.output_bounds(rows[None], need_upper=False)[0][0]
            for m, exact in enumerate(truth):
                assert crown[m] <= exact + 1e-7 and best[m] <= exact + 1e-7 and random[m] <= exact + 1e-7
            assert not bool(engine.infeasible().any())
            checked += 1
    assert checked >= 4


def test_contradicting_splits_are_detected_as_empty():
    net, lb, ub, rows = problem(0, sizes=(3, 10, 8, 3), eps=0.3)
    root = LinearBounds(net, lb, ub, "crown", "same")
    root.output_bounds(rows[None], need_upper=False)
    l, u = root.pre_bounds[1]
    dead = int(torch.nonzero(u[0] <= 0).flatten()[0]) if bool((u <= 0).any()) else None
    if dead is None:
        pytest.skip("no dead neuron in this draw")
    s = torch.zeros_like(l, dtype=torch.int8)
    s[0, dead] = 1  # a neuron that cannot be active, forced active
    engine = LinearBounds(net, lb, ub, "crown", "same", splits={1: s})
    engine.output_bounds(rows[None], need_upper=False)
    assert bool(engine.infeasible()[0])
    assert min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), rows[0].numpy(), splits={(0, dead): 1}) is None


def check_verdict(net, lb, ub, rows, result):
    exact = exact_min(net, lb, ub, rows)
    if result.status == "certified":
        assert exact > 0
        assert result.margin is None or result.margin <= exact + 1e-7  # a proven lower bound
    elif result.status == "falsified":
        cex = result.counterexample
        assert torch.all(cex >= lb) and torch.all(cex <= ub)
        assert (net(cex) @ rows.T).min().item() <= 0  # re-evaluated with the plain network
        assert exact <= 0
    return exact


@pytest.mark.parametrize("intermediate", ["root", "recompute"])
@pytest.mark.parametrize("seed", range(12))
def test_verdicts_agree_with_the_exact_minimum(seed, intermediate):
    net, lb, ub, rows = problem(seed)
    bab = BranchAndBound(net, BaBConfig(timeout=60, batch=16, intermediate=intermediate),
                         dense_blocks=lambda: dense_affine_blocks(net, (3,)))
    result = bab.verify(lb, ub, rows)
    assert result.status in ("certified", "falsified"), result.reason  # tiny networks: always decided
    check_verdict(net, lb, ub, rows, result)
    assert result.details()["domains"] == result.domains >= 0 and result.max_depth >= 0


def test_weak_bounds_end_in_exact_lp_leaves(monkeypatch):
    """Plain CROWN without multipliers splits down to fully split domains; their LP decides."""
    calls = []
    original = BranchAndBound._exact_leaf

    def counting(self, *args):
        out = original(self, *args)
        calls.append(out.status)
        return out

    monkeypatch.setattr(BranchAndBound, "_exact_leaf", counting)
    for seed, eps in [(10, 0.4), (13, 0.4), (7, 0.1), (19, 0.1)]:  # draws that reach fully split domains
        net, lb, ub, rows = problem(seed, sizes=(2, 4, 3), eps=eps)
        bab = BranchAndBound(net, BaBConfig(timeout=60, batch=4, steps=0, root_steps=0, attack_restarts=0, first_attack_restarts=0,
                                                  beta=False, pgd_every=0),
                             dense_blocks=lambda: dense_affine_blocks(net, (2,)))
        result = bab.verify(lb, ub, rows)
        assert result.status in ("certified", "falsified")
        check_verdict(net, lb, ub, rows, result)
    assert {"certified", "falsified"} <= set(calls)  # the LP proved some leaves and falsified others


def test_limits_leave_the_sample_unknown_with_the_reason():
    hard = None
    for seed in range(30):  # a sample that needs many domains
        net, lb, ub, rows = problem(seed)
        r = BranchAndBound(net, BaBConfig(timeout=60, batch=4), dense_blocks=lambda: dense_affine_blocks(net, (3,))).verify(lb, ub, rows)
        if r.status == "certified" and r.domains >= 12:
            hard = (net, lb, ub, rows)
            break
    assert hard is not None
    net, lb, ub, rows = hard
    r = BranchAndBound(net, BaBConfig(max_domains=4, batch=2)).verify(lb, ub, rows)
    assert r.status == "unknown" and "domain limit" in r.reason and r.domains <= 4 + 4
    r = BranchAndBound(net, BaBConfig(timeout=1e-6)).verify(lb, ub, rows)
    assert r.status == "unknown" and "time limit" in r.reason


def test_cascade_stage_records_and_agrees_with_milp():
    torch.manual_seed(0)
    net = tiny_relu_net((4, 16, 12, 3), seed=7).float()
    x = torch.rand(12, 4)
    y = net(x).argmax(1)
    y[:2] = (y[:2] + 1) % 3  # two misclassified samples stay out of BaB
    eps = 0.12
    bab = Cascade(net, CascadeConfig(eps=eps, stages=("bab",), bab=BaBConfig(batch=8))).run(x, y, list(range(12)))
    milp = Cascade(net, CascadeConfig(eps=eps, stages=("milp",))).run(x, y, list(range(12)))
    assert [v.status for v in bab[:2]] == ["misclassified"] * 2
    for a, b in zip(bab[2:], milp[2:]):
        assert a.status in ("certified", "falsified") and a.stage == "bab"
        assert a.status == b.status
        assert set(a.details["bab"]) == {"domains", "max_depth", "seconds"}
    assert len({v.status for v in bab[2:]}) == 2  # both verdicts occur in this draw
    lb, ub = linf_box(x, eps)
    assert np.isfinite([v.margin for v in bab[2:]]).all()


@pytest.mark.parametrize("seed", range(3))
def test_branching_probes_bound_each_child_soundly(seed):
    """Filtered smart branching scores a candidate by one cheap bound of each child: each is a
    true lower bound of its child's exact minimum, and the chosen neuron is an unsplit unstable one."""
    from lit_cert.certify.bab import BetaCrown
    from lit_cert.certify.branching import FSB, BranchContext

    net, lb, ub, rows = problem(seed, sizes=(3, 10, 8, 3), eps=0.3)
    bab = BranchAndBound(net, BaBConfig(fsb_candidates=4))
    row = rows[:1]
    value, engine = BetaCrown(bab.layers, bab.config).bound(lb, ub, row.view(1, 1, -1), None, None, -1)
    splits = {i: torch.zeros_like(engine.pre_bounds[i][0], dtype=torch.int8) for i in bab.relu_idx}
    context = BranchContext(bab.layers, bab.relu_idx, lb, ub, row.view(1, 1, -1))
    choice = FSB(4).choose(engine, splits, context)
    pos, j = choice[0].tolist()
    if pos < 0:
        pytest.skip("no unstable neuron in this draw")
    l, u = engine.pre_bounds[bab.relu_idx[pos]]
    assert l.flatten()[j] < 0 < u.flatten()[j]
    cand = torch.tensor([[[pos, j]]])
    worse = FSB.probe(engine, splits, context, cand)[0, 0].item()
    exact = [min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), row[0].numpy(), splits={(pos, j): s}) for s in (1, -1)]
    exact = [e for e in exact if e is not None]  # an empty child bounds nothing
    assert exact and worse <= min(exact) + 1e-7


def test_the_quick_search_hands_an_open_sample_to_every_lever(monkeypatch):
    net, lb, ub, rows = problem(2)
    bab = BranchAndBound(net, BaBConfig(timeout=10, quick_share=0.3, first_attack_restarts=0))
    seen = []

    def fake_search(self, lb, ub, rows, run, replay=None):
        c = run.config
        seen.append((c.timeout, c.root_steps, c.branching, c.attack_restarts))
        if len(seen) == 1:  # the quick phase returns at once here: the full search gets the rest of the limit
            return BaBResult("unknown", domains=7, max_depth=3, reason=f"BaB time limit ({c.timeout:g}s)")
        return BaBResult("certified", 0.5, domains=5, max_depth=2)

    from lit_cert.certify.bab import BaBResult
    monkeypatch.setattr(BranchAndBound, "_search", fake_search)
    out = bab.verify(lb, ub, rows)
    assert seen[0] == (3.0, 0, "babsr", 0)
    assert 9 < seen[1][0] <= 10 and seen[1][1:] == (BaBConfig().root_steps, "fsb", BaBConfig().attack_restarts)
    assert out.status == "certified" and out.domains == 12 and out.max_depth == 3
    assert bab.config.timeout == 10  # the caller's settings are left as they were
    seen.clear()
    BranchAndBound(net, BaBConfig(timeout=10, quick_share=0)).verify(lb, ub, rows)
    assert len(seen) == 1 and seen[0][2] == "fsb"  # no quick phase


def _hard_certified(min_domains=12, dtype=torch.float64):
    """A sample whose certificate needs a real search (many domains), with its leaves recorded."""
    for seed in range(40):
        net, lb, ub, rows = problem(seed)
        net, lb, ub, rows = net.to(dtype), lb.to(dtype), ub.to(dtype), rows.to(dtype)
        bab = BranchAndBound(net, BaBConfig(timeout=60, batch=4), dense_blocks=lambda n=net: dense_affine_blocks(n, (3,)))
        bab.record_leaves = True
        r = bab.verify(lb, ub, rows)
        if r.status == "certified" and r.domains >= min_domains and r.leaves:
            return seed, net, lb, ub, rows, r
    raise AssertionError("no hard certified sample in 40 draws")


def _inside(net, x, leaves, relu_idx):
    """Per point of x (N, in), the leaves whose split constraints it satisfies."""
    from lit_cert.bounds.box import flat_layers

    layers, pre, h = flat_layers(net), {}, x
    for i, m in enumerate(layers):
        if i in relu_idx:
            pre[relu_idx.index(i)] = h.reshape(len(x), -1)
        h = m(h)
    ok = torch.ones(len(x), leaves.count, dtype=torch.bool)
    for leaf, p, n, sign in leaves.entries.tolist():
        z = pre[p][:, n]
        ok[:, leaf] &= (z >= 0) if sign > 0 else (z <= 0)
    return ok


def test_a_finished_search_leaves_domains_that_cover_the_box():
    """The recorded leaves of a certified row: every sampled input of the box (and every PGD-like
    corner) lies in at least one of them, and they merge back to the root (Leaves.covers); a set
    with one leaf dropped does not."""
    from lit_cert.certify.bab import Leaves

    _, net, lb, ub, rows, r = _hard_certified()
    relu_idx = [i for i, m in enumerate(net) if isinstance(m, torch.nn.ReLU)]
    g = torch.Generator().manual_seed(0)
    x = lb + (ub - lb) * torch.rand(4000, lb.shape[1], generator=g, dtype=lb.dtype)
    x = torch.cat([x, torch.where(torch.rand(200, lb.shape[1], generator=g) < 0.5, lb, ub)])
    for row, leaves in r.leaves.items():
        assert leaves.count >= 2 and leaves.covers()
        assert bool(_inside(net, x, leaves, relu_idx).any(1).all())
        keep = leaves.entries[leaves.entries[:, 0] != leaves.count - 1]
        assert not Leaves(keep, leaves.count - 1).covers()


def test_the_cover_check_retraces_trees_that_split_a_neuron_at_different_depths():
    """Leaves of a tree that splits neuron a first, then b under a+ and c under a-, and c again
    under a+b+ (so c is split at depths 2 and 3): they cover, though merging sibling pairs in
    the wrong order gets stuck; any leaf dropped, or a sign flipped, breaks the cover."""
    from lit_cert.certify.bab import Leaves

    a, b, c = (0, 1), (0, 2), (1, 5)
    tree = [{a: 1, b: 1, c: 1}, {a: 1, b: 1, c: -1}, {a: 1, b: -1}, {a: -1, c: 1, b: 1}, {a: -1, c: 1, b: -1}, {a: -1, c: -1}]

    def leaves(cubes):
        rows = [[i, p, n, sign] for i, cube in enumerate(cubes) for (p, n), sign in cube.items()]
        return Leaves(torch.tensor(rows, dtype=torch.long).view(-1, 4), len(cubes))

    assert leaves(tree).covers()
    for k in range(len(tree)):
        assert not leaves(tree[:k] + tree[k + 1 :]).covers()
    assert not leaves(tree[:-1] + [{a: -1, c: -1, b: 1}]).covers()
    assert leaves([{}]).covers() and not leaves([]).covers()


def test_a_float32_certificate_is_replayed_in_float64_from_its_leaves():
    """The float64 re-check of a BaB certificate bounds the float32 search's leaves instead of
    searching again: the same verdict as a float64 search from scratch, far fewer domains; leaves
    that do not cover the box are not trusted (the row is searched from its root)."""
    from lit_cert.certify.bab import Leaves

    seed, net32, lb32, ub32, rows32, r32 = _hard_certified(dtype=torch.float32)
    net, lb, ub, rows = problem(seed)
    cfg = BaBConfig(timeout=60, batch=4)
    blocks = lambda: dense_affine_blocks(net, (3,))  # noqa: E731
    again = BranchAndBound(net, cfg, dense_blocks=blocks).replay(lb, ub, rows, r32.leaves)
    scratch = BranchAndBound(net, cfg, dense_blocks=blocks).verify(lb, ub, rows)
    assert again.status == scratch.status == "certified"
    leaves = sum(lv.count for lv in r32.leaves.values())
    assert again.domains < r32.domains and again.domains <= leaves + len(rows)
    check_verdict(net, lb, ub, rows, again)
    # a cover with a leaf missing is not trusted: that row is searched again from its root
    row = next(iter(r32.leaves))
    lv = r32.leaves[row]
    kept = lv.entries[lv.entries[:, 0] != 0].clone()
    kept[:, 0] -= 1
    broken = {**r32.leaves, row: Leaves(kept, lv.count - 1)}
    assert not broken[row].covers()
    searched = []
    original = BranchAndBound._row

    def spy(self, *args):
        searched.append(args[-1] is None)
        return original(self, *args)

    bab = BranchAndBound(net, cfg, dense_blocks=blocks)
    bab._row = spy.__get__(bab)
    partial = bab.replay(lb, ub, rows, broken)
    assert partial.status == "certified" and True in searched


def test_the_cascade_rechecks_a_near_zero_bab_certificate_from_its_leaves(monkeypatch):
    """The cascade's float64 re-check of a BaB certificate replays its leaves on the float64 copy
    of the network (details record the leaves and the float64 domains) instead of a new search."""
    import lit_cert.certify.cascade as cascade_mod

    seed, net32, lb32, ub32, rows32, _ = _hard_certified(dtype=torch.float32)
    monkeypatch.setattr(cascade_mod, "needs_float64_recheck", lambda margin, scale: True)
    replays, real = [], BranchAndBound.replay

    def spy(self, lb, ub, rows, leaves, phase="full"):
        replays.append((lb.dtype, sum(lv.count for lv in leaves.values()), phase))
        return real(self, lb, ub, rows, leaves, phase)

    monkeypatch.setattr(BranchAndBound, "replay", spy)
    net, lb, ub, _ = problem(seed)
    x = ((lb + ub) / 2).float()
    y = net32(x).argmax(1)
    res = Cascade(net32, CascadeConfig(eps=0.15, stages=("bab",), bab=BaBConfig(timeout=60, batch=4))).run(x, y, [0])
    rec = res[0].details["float64_recheck"]
    assert res[0].status == "certified" and rec["held"] and rec["leaves"] >= 2
    assert replays == [(torch.float64, rec["leaves"], replays[0][2])]
    # each leaf bounded once (+ a root per row), a few split further where the root's slopes prove less
    assert rec["float64_domains"] <= res[0].details["bab"]["domains"]


# --------------------------------------------------------------------------- the seams
def test_each_search_gets_its_settings_and_parts_as_arguments(monkeypatch):
    """The quick and the full phase each build their own bounding and branching from their own
    settings; the verifier's settings are never swapped (two searches could share it)."""
    from lit_cert.certify.bab import BetaCrown
    from lit_cert.certify.branching import FSB, BaBSR

    net, lb, ub, rows = problem(2)
    bab = BranchAndBound(net, BaBConfig(timeout=10, quick_share=0.3, fsb_candidates=5))
    seen = []

    def fake_search(self, lb, ub, rows, run, replay=None):
        assert self.config.timeout == 10 and self.config.quick_share == 0.3  # untouched during the search
        seen.append(run)
        return BaBResult("unknown", domains=1, reason="BaB time limit (3s)") if len(seen) == 1 else BaBResult("certified", 1.0)

    from lit_cert.certify.bab import BaBResult
    monkeypatch.setattr(BranchAndBound, "_search", fake_search)
    bab.verify(lb, ub, rows)
    quick, full = seen
    assert isinstance(quick.branching, BaBSR) and isinstance(full.branching, FSB) and full.branching.candidates == 5
    assert isinstance(quick.bounds, BetaCrown) and quick.bounds.config is quick.config and quick.config.root_steps == 0
    assert full.bounds.config is full.config and full.config.root_steps == BaBConfig().root_steps


def test_a_new_branching_heuristic_plugs_in_and_keeps_the_verdicts():
    """Any object with ``choose`` is a heuristic: splitting the first unstable neuron (a poor
    rule) reaches the same verdicts as BaBSR, with the same soundness check."""
    from lit_cert.certify.bab import BetaCrown, _Search

    class FirstUnstable:
        def choose(self, engine, splits, context):
            out = []
            for d in range(engine.lb.shape[0]):
                pick = [-1, -1]
                for p, idx in enumerate(context.relu_idx):
                    l, u = (t[d].flatten() for t in engine.pre_bounds[idx])
                    free = ((l < 0) & (u > 0) & (splits[idx][d].flatten() == 0)).nonzero().flatten()
                    if len(free):
                        pick = [p, int(free[0])]
                        break
                out.append(pick)
            return torch.tensor(out, dtype=torch.long)

    for seed in range(6):
        net, lb, ub, rows = problem(seed, sizes=(2, 4, 3), eps=0.4)
        cfg = BaBConfig(timeout=60, batch=4, quick_share=0.0)
        bab = BranchAndBound(net, cfg, dense_blocks=lambda n=net: dense_affine_blocks(n, (2,)))
        reference = bab.verify(lb, ub, rows)
        custom = bab._search(lb, ub, rows, _Search(cfg, BetaCrown(bab.layers, cfg), FirstUnstable()))
        assert custom.status == reference.status, seed
        check_verdict(net, lb, ub, rows, custom)


def test_the_exact_leaf_lp_is_the_milp_module_s_highs_model(monkeypatch):
    """A fully split domain's LP goes through lit_cert.certify.milp's builder: one HiGHS model per
    leaf, no second LP code path."""
    import lit_cert.certify.milp as milp

    built = []
    original = milp.build_highs

    def counting(*args, **kwargs):
        built.append(args[-1].any())  # integrality: an LP has none
        return original(*args, **kwargs)

    monkeypatch.setattr(milp, "build_highs", counting)
    net, lb, ub, rows = problem(10, sizes=(2, 4, 3), eps=0.4)
    bab = BranchAndBound(net, BaBConfig(timeout=60, batch=4, steps=0, root_steps=0, attack_restarts=0, first_attack_restarts=0,
                                                  beta=False, pgd_every=0),
                         dense_blocks=lambda: dense_affine_blocks(net, (2,)))
    result = bab.verify(lb, ub, rows)
    check_verdict(net, lb, ub, rows, result)
    assert built and not any(built)
    import inspect

    import lit_cert.certify.bab as bab_module
    assert "linprog" not in inspect.getsource(bab_module)


def test_the_first_attack_falsifies_before_any_bound_and_its_time_counts(monkeypatch):
    """A non-robust sample is falsified by the attack on all margins before the search starts
    (no domain bounded); with the attack off the search itself has to find it."""
    searched = []
    original = BranchAndBound._search

    def spy(self, *args, **kwargs):
        searched.append(True)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BranchAndBound, "_search", spy)
    found = 0
    for seed in range(12):
        net, lb, ub, rows = problem(seed)
        if exact_min(net, lb, ub, rows) > 0:
            continue
        searched.clear()
        result = BranchAndBound(net, BaBConfig(timeout=30, first_attack_restarts=16, first_attack_steps=50)).verify(lb, ub, rows)
        assert result.status == "falsified"
        check_verdict(net, lb, ub, rows, result)
        if result.phase == "attack":
            assert result.domains == 0 and not searched and result.seconds > 0
            found += 1
    assert found >= 2


def test_the_first_attack_keeps_to_its_share_of_the_time_limit(monkeypatch):
    """The attack before the search stops after the step that passes first_attack_share x timeout
    (on a CNN7 its full 30 x 100 steps took the whole 30 s limit and left a sample the search
    certifies in ~1 s open); the search then gets the rest of the limit."""
    from lit_cert.certify import bab as bab_module

    net, lb, ub, rows = problem(0)
    clock = {"t": 0.0, "passes": 0}

    def slow_net(z):  # every forward pass costs 1 s of the fake clock
        clock["t"] += 1.0
        clock["passes"] += 1
        return net(z)

    monkeypatch.setattr(bab_module.time, "perf_counter", lambda: clock["t"])
    searched = []
    monkeypatch.setattr(BranchAndBound, "_search", lambda self, lb, ub, rows, run, replay=None:
                        searched.append(run.config.timeout) or bab_module.BaBResult("unknown", reason="stub"))
    bab = BranchAndBound(net, BaBConfig(timeout=100, first_attack_restarts=4, first_attack_steps=1000,
                                        first_attack_share=0.2, quick_share=0))
    bab.net = slow_net
    bab.verify(lb, ub, rows)
    assert 20 <= clock["passes"] <= 23  # 20 s of the 100 s limit, then the last step and the margin check
    assert searched and 76 <= searched[0] <= 80  # the search has the rest
