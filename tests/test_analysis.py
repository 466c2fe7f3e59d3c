"""The analyze commands: DLN tightness at init, landscape discontinuities, expected-bound
validity, tightness and CR curve of a checkpoint."""

import csv

import numpy as np
import pytest
import torch

from lit_cert.analysis import box_reconstruction as br
from lit_cert.analysis import ibp_alignment as ia
from lit_cert.analysis.dln import tau_closed_form, tau_depth, tau_depth_approx, tau_monte_carlo, tau_relu_approx
from lit_cert.analysis.examples import paradox_example
from lit_cert.commands import main

from .helpers import trained_run


def test_closed_form_values():
    assert tau_closed_form(500) == pytest.approx(0.056, abs=5e-4)
    assert tau_closed_form(2) == pytest.approx(np.pi / 4)  # sqrt(pi) * Gamma(3/2) / (2 Gamma(1))
    assert tau_closed_form(64) < tau_closed_form(16) < tau_closed_form(4)


@pytest.mark.parametrize("d", [16, 64, 256])
def test_monte_carlo_matches_closed_form(d):
    # stated tolerance: 3% relative with 20 random networks
    assert tau_monte_carlo(d, depth=2, samples=20) == pytest.approx(tau_closed_form(d), rel=0.03)


def test_depth_makes_it_worse():
    assert tau_monte_carlo(64, depth=4, samples=10) < tau_monte_carlo(64, depth=3, samples=10) < tau_monte_carlo(64, depth=2, samples=10)
    assert tau_monte_carlo(256, depth=3, samples=10) == pytest.approx(tau_depth_approx(256, 3), rel=0.1)


@pytest.mark.parametrize("d,depth", [(8, 3), (8, 4), (32, 3), (64, 4)])
def test_depth_closed_form_matches_monte_carlo(d, depth):
    # tau(d)^(L-1) is exact as a ratio of expectations, even at small width (3% with 30 nets)
    assert tau_depth(d, depth) == pytest.approx(tau_closed_form(d) ** (depth - 1))
    assert tau_monte_carlo(d, depth, samples=30) == pytest.approx(tau_depth(d, depth), rel=0.03)
    if d == 8:  # the large-d form is only an approximation, visibly off at small width
        assert tau_depth_approx(d, depth) / tau_depth(d, depth) - 1 > 0.03


@pytest.mark.parametrize("d,depth", [(8, 2), (8, 3), (16, 4), (64, 5)])
def test_corollary_3_8_bound_holds_and_is_the_exact_value_for_two_layers(d, depth):
    from lit_cert.analysis.dln import tau_corollary_bound

    bound = tau_corollary_bound(d, depth)
    assert bound == pytest.approx(tau_closed_form(d) ** (depth // 2))
    assert tau_depth(d, depth) <= bound + 1e-12  # tau(d)^(L-1) <= tau(d)^floor(L/2)
    assert tau_monte_carlo(d, depth, samples=20) <= bound * 1.03
    if depth == 2:
        assert bound == pytest.approx(tau_depth(d, depth))


def test_theorem_3_10_gamma_expression():
    """(ii): E r_opt -> 2 Gamma((k+1)/2) / (sqrt(pi) Gamma(k/2)): 2/pi at k = 1 (not sqrt(2/pi)),
    ~ sqrt(2k/pi) for large k; the Monte Carlo radius at large d approaches it."""
    assert br.optimal_radius_limit(1) == pytest.approx(2 / np.pi)
    assert br.optimal_radius_limit(2) == pytest.approx(1.0) and br.optimal_radius_limit(4) == pytest.approx(1.5)
    assert br.optimal_radius_limit(400) == pytest.approx(np.sqrt(2 * 400 / np.pi), rel=1e-3)
    r = br.monte_carlo(1000, 4, trials=10)
    assert r["optimal_radius"] == pytest.approx(br.optimal_radius_limit(4), rel=0.05)


def test_expected_bound_coverage_grows_with_input_size():
    """Seed 001 Fig. 1a: with more inputs the expected bounds more often contain the true
    interval (paper's construction, eps 0.1; fewer trials and samples than the paper's)."""
    from lit_cert.analysis.expected_validity import corners, gamma_and_ratio

    small = gamma_and_ratio(2, 100, trials=40, samples=2000)
    large = gamma_and_ratio(15, 100, trials=40, samples=2000)
    assert large["gamma"] > small["gamma"] and large["gamma"] > 0.9
    assert large["ibp_over_expected_width"] > 1  # and tighter than IBP
    box = corners(torch.zeros(3), torch.ones(3))
    assert box.shape == (8, 3) and set(box.sum(1).tolist()) == {0.0, 1.0, 2.0, 3.0}


def test_expected_bounds_beyond_one_block_get_tighter_than_ibp_with_depth():
    """Seed 001 Fig. 3a/b: the IBP/expected width ratio grows with depth (n = k, fewer trials and
    a smaller width than the paper's 500); Fig. 1b's Gamma of a deeper network is a coverage in [0, 1]."""
    from lit_cert.analysis.expected_validity import block, gamma_and_ratio, network

    ratios = [gamma_and_ratio(40, 40, trials=10, radius=0.1, layers=d, coverage=False)["ibp_over_expected_width"] for d in (2, 3, 5)]
    assert 1 < ratios[0] < ratios[1] < ratios[2]
    deep = gamma_and_ratio(8, 8, trials=10, samples=2000, layers=4)
    assert 0 <= deep["gamma_min"] <= deep["gamma"] <= 1 and deep["layers"] == 4
    net = network([5, 7, 7, 1], torch.Generator().manual_seed(0))
    assert [m.out_features for m in net if isinstance(m, torch.nn.Linear)] == [7, 7, 1]
    assert sum(isinstance(m, torch.nn.ReLU) for m in net) == 2
    assert len(block(5, 7, torch.Generator().manual_seed(0))) == 3


def test_depth_closed_form_with_unequal_widths():
    assert tau_depth([16, 64]) == pytest.approx(tau_closed_form(16) * tau_closed_form(64))
    with pytest.raises(ValueError):
        tau_depth(16)


@pytest.mark.parametrize("d,depth", [(64, 2), (64, 3), (256, 3)])
def test_relu_init_behaves_like_half_width(d, depth):
    assert tau_monte_carlo(d, depth, samples=30, relu=True) == pytest.approx(tau_relu_approx(d, depth), rel=0.05)


@pytest.mark.parametrize("d", [100, 400])
def test_box_reconstruction_constant_tends_to_two_over_pi(d):
    # Theorem 3.10's constant: layer-wise radius / k, Monte Carlo within 0.02 of 2/pi for d >= 100
    r = br.monte_carlo(d, 16, trials=20)
    assert abs(r["c"] - 2 / np.pi) < 0.02
    assert r["c"] == pytest.approx(br.c_closed_form(d), rel=0.01)  # and our exact finite-d form


def test_box_reconstruction_growth_rates():
    ks = [1, 2, 4, 8, 16, 32]
    runs = [br.monte_carlo(1000, k, trials=5) for k in ks]
    assert br.growth_exponent(ks, [r["ibp_radius"] for r in runs]) == pytest.approx(1.0, abs=0.03)
    assert br.growth_exponent(ks, [r["optimal_radius"] for r in runs]) == pytest.approx(0.5, abs=0.06)
    for k, r in zip(ks, runs):  # d -> infinity limit of the optimal radius, and tightness -> tau(k)
        assert r["optimal_radius"] == pytest.approx(br.optimal_radius_limit(k), rel=0.05)
        assert r["tightness"] == pytest.approx(tau_closed_form(k) if k > 1 else 1.0, rel=0.06)


def test_box_reconstruction_radii_are_true_radii():
    """The PCA radii are those of the exact image box and of IBP, checked independently."""
    import torch

    from lit_cert.bounds.box import interval_bounds

    q = br.random_subspace(30, 4, torch.Generator().manual_seed(1))
    assert torch.allclose(q.T @ q, torch.eye(4, dtype=torch.float64), atol=1e-12)
    optimal, layerwise = br.pca_radii(q)
    net = torch.nn.Sequential(torch.nn.Linear(30, 4, bias=False), torch.nn.Linear(4, 30, bias=False)).double()
    net[0].weight.data, net[1].weight.data = q.T.clone(), q.clone()
    x = torch.zeros(1, 30, dtype=torch.float64)
    lb, ub = interval_bounds(net, x - 1, x + 1)
    assert ((ub - lb) / 2).mean().item() == pytest.approx(layerwise)
    vertices = (torch.randint(0, 2, (20000, 30), generator=torch.Generator().manual_seed(2)) * 2 - 1).double()
    reach = net(vertices).abs().max(0).values  # sampled vertices never exceed the exact radius ...
    exact = (q @ q.T).abs().sum(1)
    assert (reach <= exact + 1e-9).all()
    signs = torch.sign(q @ q.T)  # ... which the sign vertex of each row attains
    assert torch.allclose(net(signs).diagonal(), exact)
    assert optimal == pytest.approx(exact.mean().item())


def test_ibp_training_makes_the_bottleneck_tighter():
    std = br.trained_reconstruction(30, 5, 0.01, "standard", epochs=150, n=200)
    ibp = br.trained_reconstruction(30, 5, 0.01, "ibp", epochs=150, n=200)
    assert ibp["tightness"] > std["tightness"] + 0.1
    assert ibp["ibp_l1_error"] < std["ibp_l1_error"]
    with pytest.raises(ValueError):
        br.trained_reconstruction(30, 5, 0.01, "crown")


def test_refined_jumps_separate_steep_slopes_from_jumps():
    from lit_cert.analysis.landscape import refine_jumps

    deltas = np.linspace(-1, 1, 101)
    steep = lambda t: float(np.tanh(300 * t))  # continuous, but rises by ~1.9 within one grid step
    assert refine_jumps(steep, deltas, [steep(t) for t in deltas]) == []
    # jumps in two neighbouring grid steps (the grid heuristic sees comparable neighbours): both found
    two = lambda t: 0.3 * t + (t > 0.005) * 2.0 - (t > 0.025) * 1.0
    found = refine_jumps(two, deltas, [two(t) for t in deltas])
    assert [round(x, 3) for x, _ in found] == [0.005, 0.025]
    assert [j for _, j in found] == pytest.approx([2.0, -1.0], abs=1e-3)


def test_refined_jumps_on_the_paradox_example():
    import torch

    from lit_cert.analysis.landscape import bound_along, refine_jumps

    net, lb, ub = paradox_example(0.5)
    direction = [torch.zeros_like(net[0].weight), torch.tensor([1.0, 0.0], dtype=torch.float64)]
    deltas = np.linspace(-0.7, 0.7, 141)
    found = {}
    for r in ("ibp", "crown", "deepz", "hbox"):
        f = bound_along(net, lb, ub, 0, r, direction)
        found[r] = refine_jumps(f, deltas, [f(float(d)) for d in deltas])
    assert found["ibp"] == [] and found["deepz"] == []
    assert len(found["crown"]) == 1 and found["crown"][0] == pytest.approx((-0.5, 1.0), abs=1e-4)
    assert len(found["hbox"]) == 1 and found["hbox"][0] == pytest.approx((0.5, 2.0), abs=1e-4)


def test_theorem_3_9_premise_cannot_hold_in_a_two_layer_dln():
    """In W2 W1, W*_ij = |a.b| and W+_ij = |a|.|b| have gradients of equal norm, so the premise
    ||grad W*_ij|| / W*_ij <= 1/2 ||grad W+_ij|| / W+_ij would need W+_ij <= W*_ij / 2 < W+_ij."""
    for seed in range(3):
        ws = ia.dln_weights([6, 5, 4], torch.Generator().manual_seed(seed))
        _, w_star, w_ibp = ia.propagation_matrices(ws)
        for i, j in [(0, 0), (1, 3), (3, 5)]:
            g_star = torch.cat([g.flatten() for g in torch.autograd.grad(w_star[i, j], ws, retain_graph=True)])
            g_ibp = torch.cat([g.flatten() for g in torch.autograd.grad(w_ibp[i, j], ws, retain_graph=True)])
            assert g_star.norm().item() == pytest.approx(g_ibp.norm().item(), rel=1e-12)
            assert w_star[i, j] <= w_ibp[i, j] + 1e-15
        share, cv = ia.premise(ws)
        assert share == 0.0 and cv > 0.1  # no entry meets it, and tightness is far from homogeneous


def test_theorem_3_9_conclusion_and_ibp_training_tighten_dlns():
    """The conclusion measured without the premise: <grad(R(eps) - R(0)), grad tau> < 0 (checked
    against a finite difference of tau along that gradient), and gradient descent on R(eps) ends
    tighter than on R(0) from the same weights, in every trial."""
    rows, training = ia.run([8, 8, 8, 4], [0.05, 0.2], trials=3, samples=64, steps=60, lr=0.1, every=20)
    assert len(rows) == 6 and {r["step"] for r in training} == {0, 20, 40, 60}
    for r in rows:
        assert r["inner"] < 0 and -1 <= r["cosine"] < 0
        assert r["tau_ibp_trained"] > r["tau_standard_trained"] and 0 < r["tau_init"] < 1
    gen = torch.Generator().manual_seed(0)
    ws = ia.dln_weights([8, 8, 8, 4], gen)
    x, y = ia.teacher_data(8, 4, 64, gen)
    inner, _ = ia.alignment(ws, x, y, 0.2)
    diff = ia.ibp_risk(ws, x, y, 0.2) - ia.ibp_risk(ws, x, y, 0.0)
    grads = torch.autograd.grad(diff, ws)
    h = 1e-6
    moved = [(w - h * g).detach() for w, g in zip(ws, grads)]
    change = (ia.tightness(moved) - ia.tightness(ws)).item()
    assert change == pytest.approx(-h * inner, rel=1e-3)


def test_analyze_commands_write_their_files(workdir, capsys):
    out = workdir / "an"
    main(["analyze", "dln-init", "--widths", "4", "16", "--depths", "2", "3", "--samples", "3", "--out", str(out)])
    main(["analyze", "box-reconstruction", "--d", "50", "--k", "1", "4", "--trials", "3", "--train", "--train_d", "20",
          "--train_k", "2", "--train_epochs", "20", "--out", str(out), "--wandb"])
    assert "c = 0.6" in capsys.readouterr().out
    main(["analyze", "landscape", "--steps", "141", "--out", str(out), "--wandb"])  # W&B disabled in tests
    assert "crown  jump +1" in capsys.readouterr().out
    rows = main(["analyze", "expected-bounds", "--n", "5", "--k", "5", "20", "--trials", "3", "--samples", "500", "--eps", "0.5",
                 "--out", str(out)])
    assert all(0 < r["gamma"] <= 1 for r in rows)  # coverage of the sampled true interval
    assert rows[-1]["ibp_over_expected_width"] > 1  # with more hidden units IBP is wider than the expected bounds
    main(["analyze", "ibp-alignment", "--widths", "6", "6", "3", "--trials", "2", "--samples", "32", "--steps", "20",
          "--every", "10", "--out", str(out)])
    assert "IBP-trained tighter than standard-trained in" in capsys.readouterr().out
    for name in ("dln-init", "box-reconstruction", "box-reconstruction-trained", "ibp-alignment", "landscape", "expected-bounds"):
        assert (out / f"{name}.csv").stat().st_size > 0
        assert (out / f"{name}.png").stat().st_size > 1000


def test_checkpoint_tightness_and_cr_curve(workdir):
    ckpt = trained_run(workdir)
    out = workdir / "an"
    rows = main(["analyze", "tightness", "--ckpt", str(ckpt), str(ckpt), "--limit", "32", "--out", str(out)])
    assert len(rows) == 2 and rows[0]["tightness"] == rows[1]["tightness"] and 0 < rows[0]["tightness"] <= 1
    assert 0 <= rows[0]["natural_accuracy"] <= 1 and rows[0]["model"].startswith("IBP (")
    rows = main(["analyze", "cr-curve", "--ckpt", str(ckpt), "--limit", "32", "--points", "5", "--out", str(out),
                 "--certifier", "ibp", "crown"])
    for certifier in ("ibp", "crown"):
        values = [r["certified_accuracy"] for r in rows if r["certifier"] == certifier]
        assert len(values) == 5 and all(b <= a + 1e-9 for a, b in zip(values, values[1:]))
    ibp = [r["certified_accuracy"] for r in rows if r["certifier"] == "ibp"]
    crown = [r["certified_accuracy"] for r in rows if r["certifier"] == "crown"]
    assert all(c >= i - 1e-9 for c, i in zip(crown, ibp)) and sum(crown) > sum(ibp)  # CROWN is tighter on a trained FC
    assert list(csv.reader(open(out / "cr-curve.csv")))[0] == ["model", "certifier", "eps", "certified_accuracy"]
    assert (out / "cr-curve.png").stat().st_size > 1000


def test_analysis_logs_into_an_active_wandb_run(workdir, monkeypatch):
    """Inside an active W&B run (sweep agent, notebook) the tables and plots go to that run."""
    import sys
    import types

    logged = []
    fake_run = types.SimpleNamespace(log=lambda d: logged.append(d), finish=lambda: logged.append("finished"))
    fake = types.SimpleNamespace(run=fake_run, Table=lambda columns, data: ("table", columns, len(data)),
                                 Image=lambda path: ("image", path))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    main(["analyze", "dln-init", "--widths", "4", "--depths", "2", "--samples", "2", "--out", str(workdir / "an")])
    keys = [k for d in logged if isinstance(d, dict) for k in d]
    assert keys == ["dln-init/table", "dln-init/plot"]
    assert logged[0]["dln-init/table"] == ("table", ["width", "depth", "tau_cor38_bound", "tau_closed_form", "tau_large_d",
                                                     "tau_relu_approx", "tau_mc_linear", "tau_mc_relu"], 1)
    assert "finished" not in logged  # not our run to finish


def test_pgd_robustness_against_accuracy(workdir):
    ckpt = trained_run(workdir)
    out = workdir / "an"
    rows = main(["analyze", "pgd-robustness", "--ckpt", str(ckpt), "--limit", "32", "--eps", "0", "0.1", "0.3",
                 "--steps", "10", "--out", str(out)])
    row = rows[0]
    assert row["pgd_robustness@0"] == 1.0  # nothing to attack at eps 0
    assert 1.0 >= row["pgd_robustness@0.1"] >= row["pgd_robustness@0.3"] >= 0.0
    assert row["pgd_robustness_mean"] == pytest.approx((1.0 + row["pgd_robustness@0.1"] + row["pgd_robustness@0.3"]) / 3)
    assert 0 < row["accuracy"] <= 1 and (out / "pgd-robustness.png").stat().st_size > 1000


def test_row_cache_keeps_finished_evaluations_across_reruns(tmp_path):
    """The results scripts' evaluation cache: rows appended as made, read back by run id."""
    from lit_cert.reports import RowCache

    path = tmp_path / "cache.jsonl"
    first = RowCache(path)
    assert first.get("a") is None
    first.add({"run": "a", "acc": 0.5})
    first.add({"run": "b", "acc": 0.25})
    again = RowCache(path)
    assert again.get("a") == {"run": "a", "acc": 0.5} and again.get("b")["acc"] == 0.25 and len(again.rows) == 2


def test_expected_bounds_against_exact_milp_ranges():
    """Seed 001 Table 1's measurement: each logit's exact range (MILP) equals the exact optimum
    of tests/exact.py, lies inside IBP's interval, and Gamma is the covered share of it."""
    import numpy as np

    from lit_cert.analysis.expected_validity import exact_coverage

    from .exact import min_linear_objective, tiny_relu_net

    net = tiny_relu_net((3, 8, 6, 3), seed=4)
    x = torch.full((1, 3), 0.5, dtype=torch.float64)
    out = exact_coverage(net.float(), x.float(), 0.2, timeout=30)
    assert next(net.parameters()).dtype == torch.float32  # the caller's network is untouched (a float64 copy is bounded)
    net.double()
    assert out["all_optimal"]
    lb, ub = np.full(3, 0.3), np.full(3, 0.7)
    for j in range(3):
        row = np.eye(3)[j]
        low, high = min_linear_objective(net, lb, ub, row), -min_linear_objective(net, lb, ub, -row)
        assert out["exact_width"][j] == pytest.approx(high - low, abs=1e-6)
    assert (out["ibp_width"] >= out["exact_width"] - 1e-9).all()
    assert ((0 <= out["gamma"]) & (out["gamma"] <= 1)).all()
