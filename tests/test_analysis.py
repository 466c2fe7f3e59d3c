"""The analyze commands: DLN tightness at init, landscape discontinuities, expected-bound
validity, tightness and CR curve of a checkpoint."""

import csv

import numpy as np
import pytest

from lit_cert.analysis.dln import tau_closed_form, tau_depth_approx, tau_monte_carlo
from lit_cert.analysis.examples import paradox_example
from lit_cert.analysis.landscape import discontinuities, scan
from lit_cert.cli import main

from .test_certify import trained_run


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


def test_landscape_finds_the_crown_and_hbox_jumps():
    import torch

    net, lb, ub = paradox_example(0.5)
    direction = [torch.zeros_like(net[0].weight), torch.tensor([1.0, 0.0], dtype=torch.float64)]
    deltas = np.linspace(-0.7, 0.7, 281)
    found = {r: discontinuities(deltas, scan(net, lb, ub, 0, r, deltas, direction)) for r in ("ibp", "crown", "deepz", "hbox")}
    assert found["ibp"] == [] and found["deepz"] == []
    assert len(found["crown"]) == 1 and found["crown"][0][0] == pytest.approx(-0.5, abs=0.01)  # w = 0
    assert found["crown"][0][1] == pytest.approx(1.0, abs=1e-6)
    assert len(found["hbox"]) == 1 and found["hbox"][0][0] == pytest.approx(0.5, abs=0.01)  # w = 1


def test_analyze_commands_write_their_files(workdir, capsys):
    out = workdir / "an"
    main(["analyze", "dln-init", "--widths", "4", "16", "--depths", "2", "3", "--samples", "3", "--out", str(out)])
    main(["analyze", "landscape", "--steps", "141", "--out", str(out), "--wandb"])  # W&B disabled in tests
    assert "crown  jump +1" in capsys.readouterr().out
    rows = main(["analyze", "expected-bounds", "--n", "5", "--k", "5", "20", "--trials", "3", "--samples", "500", "--out", str(out)])
    assert all(0 < r[2] <= 1 for r in rows)  # coverage of the sampled true interval
    assert rows[-1][3] > 1  # with more hidden units IBP is wider than the expected bounds
    for name in ("dln-init", "landscape", "expected-bounds"):
        assert (out / f"{name}.csv").stat().st_size > 0
        assert (out / f"{name}.png").stat().st_size > 1000


def test_checkpoint_tightness_and_cr_curve(workdir):
    ckpt = trained_run(workdir)
    out = workdir / "an"
    rows = main(["analyze", "tightness", "--ckpt", str(ckpt), "--limit", "32", "--out", str(out)])
    assert 0 < rows[0][1] <= 1
    rows = main(["analyze", "cr-curve", "--ckpt", str(ckpt), "--limit", "32", "--points", "5", "--out", str(out)])
    values = [r[1] for r in rows]
    assert values[0] >= values[-1] and all(b <= a + 1e-9 for a, b in zip(values, values[1:]))
    assert list(csv.reader(open(out / "cr-curve.csv")))[0] == ["eps", "certified_accuracy"]
    assert (out / "cr-curve.png").stat().st_size > 1000
