"""eps / kappa / beta schedule values, and that a resumed run continues on the same curve."""

import lightning as L
import pytest
import torch

from lit_cert.callbacks import CertifiedSchedule, linear_ramp, smooth_ramp
from lit_cert.data import SyntheticImages
from lit_cert.methods import IBP
from lit_cert.models import CNN3


def test_linear_ramp_values():
    assert [linear_ramp(t) for t in (-1, 0, 0.3, 1, 2)] == [0, 0, 0.3, 1, 1]


def test_smooth_ramp_exact_values():
    mid, p = 0.25, 4.0
    alpha = 1 / (mid**p + p * mid ** (p - 1) * (1 - mid))  # = 1 / (1/256 + 3/64) = 256 / 13
    assert alpha == pytest.approx(256 / 13)
    assert smooth_ramp(0.0) == 0.0
    assert smooth_ramp(0.1) == pytest.approx(alpha * 0.1**4)
    assert smooth_ramp(0.25) == pytest.approx(1 / 13)
    assert smooth_ramp(0.5) == pytest.approx(1 / 13 + (256 / 13) * 4 * 0.25**3 * 0.25)  # = 5/13
    assert smooth_ramp(0.5) == pytest.approx(5 / 13)
    assert smooth_ramp(1.0) == pytest.approx(1.0)
    # continuous slope at the switch: left and right finite differences agree
    h = 1e-6
    left = (smooth_ramp(mid) - smooth_ramp(mid - h)) / h
    right = (smooth_ramp(mid + h) - smooth_ramp(mid)) / h
    assert left == pytest.approx(right, rel=1e-3)


def test_schedule_values_at_steps():
    s = CertifiedSchedule(warmup_epochs=2, ramp_epochs=4, shape="linear", kappa_start=1.0, kappa_end=0.5, beta_start=1.0, beta_end=0.0)
    s.steps_per_epoch = 10
    # warm-up: eps 0, kappa at its start value
    assert s.values_at(0) == {"step": 0, "eps_fraction": 0.0, "eps_start": 0.0, "kappa": 1.0, "beta": 1.0, "progress": 0.0,
                              "warmup": True, "epochs": 0.0}
    assert s.values_at(25)["epochs"] == 2.5  # the training progress every method (COLT) reads
    assert s.values_at(19)["eps_fraction"] == 0.0
    # ramp of 40 steps starting at step 20
    v = s.values_at(30)
    assert v["eps_fraction"] == pytest.approx(0.25)
    assert v["kappa"] == pytest.approx(0.875)
    assert v["beta"] == pytest.approx(0.75)
    assert s.values_at(60)["eps_fraction"] == 1.0 and s.values_at(500)["kappa"] == 0.5
    smooth = CertifiedSchedule(warmup_epochs=2, ramp_epochs=4, shape="smooth")
    smooth.steps_per_epoch = 10
    assert smooth.values_at(30)["eps_fraction"] == pytest.approx(1 / 13)  # a quarter into the ramp
    assert smooth.values_at(40)["eps_fraction"] == pytest.approx(5 / 13)


def test_eps_ramp_can_start_above_zero():
    """The paradox paper's Wong & Kolter-style runs ramp eps from 0.001 to eps_train."""

    s = CertifiedSchedule(warmup_epochs=1, ramp_epochs=2, shape="linear", eps_start=0.001)
    s.steps_per_epoch = 10
    m = IBP(network=CNN3(width=0.5), data_info=SyntheticImages().info, eps_train=0.1, eps_test=0.1)
    s.apply(m, 5)
    assert m.eps == 0.0  # warm-up
    s.apply(m, 10)
    assert m.eps == pytest.approx(0.001)  # the ramp starts at eps_start
    s.apply(m, 20)
    assert m.eps == pytest.approx(0.001 + 0.5 * 0.099)
    s.apply(m, 40)
    assert m.eps == pytest.approx(0.1) and m.ramp_progress == 1.0
    with pytest.raises(ValueError, match="eps_start"):
        CertifiedSchedule(eps_start=-0.1)


def test_invalid_schedules_are_rejected():
    with pytest.raises(ValueError, match="kappa_start"):
        CertifiedSchedule(kappa_start=1.5)
    with pytest.raises(ValueError, match="warmup_epochs"):
        CertifiedSchedule(warmup_epochs=-1)


@pytest.mark.parametrize("cls, settings, message", [
    ("COLT", {"kappa_start": 1.0, "kappa_end": 0.5}, "COLT does not use kappa"),
    ("ExpectedTightBounds", {"kappa_start": 0.5}, "ExpectedTightBounds does not use kappa"),
    ("Standard", {"kappa_start": 1.0}, "Standard does not use kappa"),
    ("IBP", {"beta_start": 1.0, "beta_end": 1.0}, "IBP does not use beta"),
])
def test_schedule_refuses_values_the_method_ignores(cls, settings, message):
    from lit_cert import methods
    from lit_cert.errors import ConfigError

    dm = SyntheticImages(train_size=32, val_size=16, test_size=16)
    model = getattr(methods, cls)(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.1, eps_test=0.1)
    with pytest.raises(ConfigError, match=message):
        CertifiedSchedule(**settings).check_method(model)
    CertifiedSchedule().check_method(model)  # the defaults are always fine
    if cls != "IBP":
        CertifiedSchedule(beta_start=1.0, beta_end=1.0).check_method(methods.CROWNIBP(
            network=CNN3(width=0.5), data_info=dm.info, eps_train=0.1, eps_test=0.1))


def test_colt_logs_its_stage_mix_not_kappa():
    """COLT's mixing of the current and previous stage's loss is not the schedule's natural-loss
    weight; it used to be logged as train/kappa."""
    from lit_cert.methods import COLT
    from lit_cert.models import FC

    dm = SyntheticImages(train_size=32, val_size=16, test_size=16)
    dm.setup()
    x, y = dm.train_set.images[:8].float() / 255, dm.train_set.labels[:8]
    m = COLT(network=FC(hidden=[8, 8]), data_info=dm.info, eps_train=0.05, eps_test=0.05, n_rand_proj=4)
    m.train()
    logs = m.training_loss(x, y)[1]
    assert "stage_mix" in logs and "kappa" not in logs


class Recorder(L.Callback):
    """Records (global step, eps, kappa) as used by each training step."""

    def __init__(self):
        self.seen = {}
        self.first_eps = None
        self.optimizer_steps_at_start = None

    def on_train_start(self, trainer, pl_module):
        self.first_eps = pl_module.eps
        state = trainer.optimizers[0].state
        steps = [int(v["step"]) for v in state.values() if "step" in v]
        self.optimizer_steps_at_start = steps[0] if steps else 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen[trainer.global_step - 1] = (pl_module.eps, pl_module.kappa)


def _run(tmp_path, max_epochs, ckpt_path=None, name="a"):
    torch.manual_seed(0)
    dm = SyntheticImages(train_size=128, val_size=32, test_size=32, batch_size=32)
    model = IBP(network=CNN3(), data_info=dm.info, eps_train=0.2, eps_test=0.1)
    schedule = CertifiedSchedule(warmup_epochs=1, ramp_epochs=2, shape="smooth", kappa_start=1.0, kappa_end=0.5)
    rec = Recorder()
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / name, save_last=True)
    trainer = L.Trainer(
        max_epochs=max_epochs,
        callbacks=[schedule, rec, ckpt],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return rec, model, tmp_path / name / "last.ckpt"


def test_resume_continues_the_schedule_and_optimiser(tmp_path):
    full, _, _ = _run(tmp_path, max_epochs=4, name="full")
    first, model_a, last = _run(tmp_path, max_epochs=2, name="part")
    k = 2 * 4  # 4 steps per epoch
    saved_eps = model_a.eps
    resumed, _, _ = _run(tmp_path, max_epochs=4, ckpt_path=str(last), name="resumed")
    assert resumed.first_eps == pytest.approx(saved_eps)  # restored before the first step
    assert resumed.optimizer_steps_at_start == k  # Adam state restored with the step count
    assert sorted(resumed.seen) == list(range(k, 2 * k))
    for step in range(k, 2 * k):
        assert resumed.seen[step] == pytest.approx(full.seen[step])
    # the curve actually moves during the resumed part (this is not a constant being compared)
    assert len({round(v[0], 8) for v in resumed.seen.values()}) > 2
