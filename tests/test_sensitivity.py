"""Seed 002 Sec. 4.2: the exact sensitivity measurement (lit_cert/analysis/sensitivity.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from lit_cert.analysis.sensitivity import (
    RELAXATIONS, ExactBounds, Tie, _field, degree, measure, paper_layer_counts, paper_sensitivity, random_network,
)
from lit_cert.commands import main


def test_closed_forms_are_the_layer_by_layer_count():
    """The paper's closed forms (2 * 3^B * M^(B+1); the CROWN-IBP geometric series) are what its
    step-by-step argument gives, with B the ReLU-linear blocks after the first."""
    for relaxation in RELAXATIONS:
        for width in range(1, 7):
            for hidden in range(1, 5):
                assert paper_layer_counts(relaxation, [width] * (hidden + 1))[-1] == paper_sensitivity(relaxation, width, hidden)
    assert paper_sensitivity("deepz", 10, 2) == 2 * 3 * 100 and paper_sensitivity("crown-ibp", 3, 2) == 3 * 7


def test_degree_is_read_off_reduced_fractions():
    _, d = _field()
    assert degree((d + 1) / (d**2 - 1)) == 1  # = 1/(d - 1): a common factor does not count
    K, _ = _field()
    assert degree(d**3 / (d + 2)) == 3 and degree(K(5)) == 0


@pytest.fixture(scope="module")
def rows():
    return [r for w, h in ((1, 1), (2, 1), (3, 1), (4, 1), (2, 2), (3, 2)) for seed in (0, 1) for r in measure(w, h, seed)]


def test_the_replay_is_the_engines_function_on_the_piece(rows):
    """Every relaxation's exact replay equals lit_cert's float64 bound engine at delta0 and at two
    other points of its piece, so the degrees measured are those of lit_cert's relaxations."""
    assert rows and {r["relaxation"] for r in rows} == set(RELAXATIONS)
    assert max(r["engine_gap"] for r in rows) < 1e-10


def test_every_relu_is_unstable_in_the_measured_networks(rows):
    """The paper counts the worst case: every ReLU unstable under every relaxation."""
    assert len({(r["width"], r["hidden"], r["seed"]) for r in rows}) == 12
    for r in rows:
        net = random_network(r["width"], r["hidden"], r["seed"])
        b = ExactBounds(net, r["relaxation"], Fraction(1, 257))
        assert all(b.value(l) < 0 < b.value(u) for ls, us in b.pre for l, u in zip(ls, us))


def test_box_and_hbox_have_sensitivity_one_and_nothing_exceeds_the_papers_count(rows):
    for r in rows:
        assert r["measured_degree"] <= r["paper_degree"], r
        if r["relaxation"] in ("ibp", "hbox"):
            assert r["measured_degree"] <= 1
    out = [r for r in rows if r["output"]]
    # DeepZ is more sensitive than Box on every worst-case network (the paper's point) ...
    assert all(r["measured_degree"] > 1 for r in out if r["relaxation"] == "deepz")
    # ... and reaches the paper's count where the count is tight: one ReLU (M = 1, one hidden layer)
    assert [r["measured_degree"] for r in out if r["relaxation"] == "deepz" and r["width"] == 1] == [2, 2]


def test_deepz_one_hidden_layer_has_degree_width_plus_one(rows):
    """One hidden layer of M unstable ReLUs: the output bound adds M terms u_j l_j / (u_j - l_j)
    (times constants) with distinct linear denominators -- numerator degree M + 1, denominator M --
    so DeepZ's sensitivity there is at most M + 1, below the paper's 2M for M > 1 (its rule 'M
    fractions of R_N sum to R_MN' also multiplies the numerators' degree). It is M + 1 unless two
    denominators coincide, which small integer weights sometimes make happen."""
    out = [r for r in rows if r["output"] and r["relaxation"] == "deepz" and r["hidden"] == 1]
    assert len(out) == 8 and all(r["measured_degree"] <= r["width"] + 1 for r in out)
    assert sum(r["measured_degree"] == r["width"] + 1 for r in out) >= 6


def test_a_tie_is_refused():
    """delta0 on a piece boundary (here zero biases on a box centred at 0: every first-layer
    neuron has l = -u, where CROWN's lower line switches) raises instead of measuring an
    undefined piece."""
    net = random_network(2, 1, 0)
    net.biases[0] = [Fraction(0), Fraction(0)]
    net.direction = ([[Fraction(1), Fraction(1)], [Fraction(1), Fraction(1)]], [Fraction(0), Fraction(0)])
    with pytest.raises(Tie):
        ExactBounds(net, "crown", Fraction(0))


def test_analyze_sensitivity_cli(tmp_path, capsys):
    rows = main(["analyze", "sensitivity", "--widths", "1", "2", "--hidden", "1", "--networks", "1", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert {"sensitivity.csv", "sensitivity-width.png", "sensitivity-hidden.png"} <= {p.name for p in tmp_path.iterdir()}
    assert "deepz: measured max / paper's count: M=1,H=1: 2/2, M=2,H=1: 3/4" in printed
    assert len([r for r in rows if r["output"]]) == 2 * len(RELAXATIONS)
    with pytest.raises(SystemExit) as ex:
        main(["analyze", "sensitivity", "--relaxations", "[alpha-crown]", "--out", str(tmp_path)])
    assert ex.value.code == 2 and capsys.readouterr().err.startswith("lit_cert: error: --relaxations")
