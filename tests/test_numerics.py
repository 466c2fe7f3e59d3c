"""Certificates under GPU-style numerics: autocast (Lightning's 16-mixed/bf16-mixed), TF32 and
reduced float32 matmul precision (bf16 on CPUs with AMX) must not change anything reported as
certified. CPU autocast runs the same code path as a GPU's, so this runs here."""

from contextlib import contextmanager

import pytest
import torch

from lit_cert.bounds import BOUND_METHODS, certified_box, compute_bounds, linf_box, margin_bounds_ibp, margin_spec
from lit_cert.certify import Cascade, CascadeConfig, BaBConfig
from lit_cert.data import SyntheticImages
from lit_cert.errors import ConfigError
from lit_cert.methods import IBP
from lit_cert.models import CNN3
from lit_cert.numerics import certified_numerics, precision_state


@contextmanager
def reduced_precision():
    """What a user's GPU training script sets: bf16 autocast plus TF32 / bf16 float32 matmuls."""
    before = precision_state()
    torch.set_float32_matmul_precision("medium")  # oneDNN: bf16 matmuls; CUDA: TF32
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    finally:
        for path, value in before.items():
            node = torch.backends
            for part in path.split("."):
                node = getattr(node, part)
            node.fp32_precision = value


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    dm = SyntheticImages(train_size=64, val_size=64, test_size=16, batch_size=32)
    dm.setup()
    x, y = dm.train_set.images[:32].float() / 255, dm.train_set.labels[:32]
    m = IBP(network=CNN3(), data_info=dm.info, eps_train=0.03, eps_test=0.03, lr=3e-3)
    m.eps, m.kappa = 0.03, 0.5
    opt = m.configure_optimizers()
    m.train()
    for _ in range(10):
        opt.zero_grad()
        m.training_loss(x, y)[0].backward()
        opt.step()
    xv, yv = dm.val_set.images.float() / 255, dm.val_set.labels
    return m.eval(), xv, yv


def test_the_settings_do_change_unguarded_bounds(trained):
    """The control: without the guard, these settings change IBP margins on this machine, so the
    equalities below test the guard and not an accident."""
    m, x, y = trained
    lb, ub = linf_box(x, 0.03)
    spec = margin_spec(y, 4)
    with torch.no_grad():
        exact = margin_bounds_ibp(m.net, lb, ub, spec)
        with reduced_precision():
            sloppy = margin_bounds_ibp(m.net, lb, ub, spec)
    assert (sloppy.float() - exact).abs().max() > 1e-4


@pytest.mark.parametrize("method", [n for n in BOUND_METHODS if n not in ("triangle", "parallelogram")])
def test_registry_bounds_are_float32_whatever_the_settings(trained, method):
    m, x, y = trained
    x, y = x[:8], y[:8]
    lb, ub = certified_box(x, 0.03)
    spec = margin_spec(y, 4)
    with torch.no_grad():
        exact = compute_bounds(m.net, lb, ub, spec, method)
        before = precision_state()
        with reduced_precision():
            inner = precision_state()
            guarded = compute_bounds(m.net, lb, ub, spec, method)
            assert precision_state() == inner  # the caller's settings are restored afterwards
        assert precision_state() == before
    assert guarded.dtype == torch.float32 and torch.equal(guarded, exact)


def test_validation_metrics_are_float32_under_autocast(trained):
    m, x, y = trained
    results = []
    for ctx in (certified_numerics, reduced_precision):
        for metric in m.metrics["val"].values():
            metric.reset()
        with torch.no_grad(), ctx():
            m._evaluate((x, y), "val")
            margins = m.certify_margins(x, y, m.eps_test)
        results.append((m.metrics["val"]["nat_acc"].compute(), m.metrics["val"]["cert_acc"].compute(),
                        m.metrics["val"]["rob_loss"].compute(), margins))
    (nat, cert, rob, margins), (nat2, cert2, rob2, margins2) = results
    assert 0 < cert < 1  # certified and uncertified samples both occur
    assert torch.equal(nat, nat2) and torch.equal(cert, cert2) and torch.equal(rob, rob2) and torch.equal(margins, margins2)


def test_cascade_verdicts_are_float32_under_autocast(trained):
    m, x, y = trained
    x, y = x[:12], y[:12]
    cfg = CascadeConfig(eps=0.03, stages=("ibp", "crown", "alpha-crown", "bab"), bab=BaBConfig(timeout=5))
    torch.manual_seed(0)
    exact = Cascade(m.net, cfg).run(x, y, list(range(12)))
    torch.manual_seed(0)
    with reduced_precision():
        guarded = Cascade(m.net, cfg).run(x, y, list(range(12)))
    assert [(v.status, v.stage, v.margin) for v in exact] == [(v.status, v.stage, v.margin) for v in guarded]
    assert any(v.status == "certified" for v in exact)


def test_half_precision_weights_are_refused(trained):
    m, x, y = trained
    half = CNN3().build(SyntheticImages().info).bfloat16()
    lb, ub = linf_box(x[:2], 0.03)
    with pytest.raises(ConfigError, match="bfloat16 weights"):
        compute_bounds(half, lb, ub, margin_spec(y[:2], 4), "ibp")


def test_certified_box_contains_the_exact_ball():
    """float32 ``x - eps`` rounds to nearest; the certified box is rounded outward."""
    x = torch.rand(20000)
    for eps in (0.1, 2 / 255, 0.3):
        lb, ub = certified_box(x, eps)
        exact_lo, exact_hi = (x.double() - eps).clamp(0, 1), (x.double() + eps).clamp(0, 1)
        assert torch.all(lb.double() <= exact_lo) and torch.all(ub.double() >= exact_hi)
        assert (lb - linf_box(x, eps)[0]).abs().max() <= 2.5e-7  # at most a couple of ulps wider
        naive = linf_box(x, eps)[0]
        if eps == 0.1:
            assert (naive.double() > exact_lo).any()  # the naive box does lie inside the ball


def test_lightning_bf16_mixed_validation_reports_the_float32_certificates(trained):
    """The real path: a Trainer with precision bf16-mixed autocasts the validation step."""
    import lightning as L

    m, _, _ = trained
    dm = SyntheticImages(train_size=64, val_size=64, test_size=16, batch_size=32)
    out = {}
    for precision in ("32-true", "bf16-mixed"):
        trainer = L.Trainer(accelerator="cpu", precision=precision, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False)
        out[precision] = trainer.validate(m, datamodule=dm, verbose=False)[0]
    assert 0 < out["32-true"]["val/cert_acc"] < 1
    for key in ("val/nat_acc", "val/cert_acc", "val/rob_loss"):
        assert out["bf16-mixed"][key] == out["32-true"][key], key


def test_true_half_precision_is_refused_before_training(workdir, capsys):
    from lit_cert.commands import main

    from .helpers import write_config

    with pytest.raises(SystemExit) as ex:
        main(["fit", "--config", write_config(workdir), "--trainer.precision=bf16-true"])
    assert ex.value.code == 2 and "bf16-true" in capsys.readouterr().err
