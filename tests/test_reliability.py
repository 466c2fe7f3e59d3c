"""The silent wrong results of issue #10, each pinned by a test that failed before its fix, and
how signals end runs and sweeps."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from lit_cert.bounds import IntervalTrace, interval_bounds, linf_box
from lit_cert.cli import main
from lit_cert.data import SyntheticImages
from lit_cert.layers import BatchNorm1d, BatchNorm2d
from lit_cert.methods import (COLT, CROWNIBP, IBP, MTLIBP, SABR, STAPS, TAPS, ExpectedTightBounds, PGDTraining, RelaxationTraining,
                              Standard)
from lit_cert.methods.regularizers import shi_regularizers
from lit_cert.models import CNN3, FC

from .test_cli import SYNTHETIC, run_dirs, write_config
from .test_certify import trained_run


# --------------------------------------------------------------------------- certify resume
def test_certify_refuses_to_resume_with_a_changed_checkpoint(workdir, monkeypatch, capsys):
    """``last.ckpt`` is overwritten every epoch: resuming into shards of the old contents would
    blend two models into one summary. The settings record the content hash."""
    ckpt = trained_run(workdir)
    common = ["--ckpt", str(ckpt), "--limit", "20", "--shard_size", "10", "--batch_size", "10",
              "--stages", "pgd,ibp,crown", "--no_progress", "--out", str(workdir / "cert")]
    from lit_cert.certify import cascade as cascade_module

    original, calls = cascade_module.Cascade.run, {"n": 0}

    def interrupted(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(cascade_module.Cascade, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["certify", *common])
    monkeypatch.setattr(cascade_module.Cascade, "run", original)
    # the checkpoint changes under the same path (training went on)
    state = torch.load(ckpt, weights_only=True)
    state["state_dict"] = {k: v + 0.5 if v.is_floating_point() else v for k, v in state["state_dict"].items()}
    torch.save(state, ckpt)
    with pytest.raises(SystemExit) as ex:
        main(["certify", *common])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and "ckpt_sha256" in err and "Resuming would mix them" in err
    # same settings and contents: resumes; other eps: refused as well
    shutil.rmtree(workdir / "cert")
    main(["certify", *common])
    with pytest.raises(SystemExit):
        main(["certify", *common, "--eps", "0.05"])
    assert "eps" in capsys.readouterr().err


def test_vnnlib_refuses_an_inverted_box():
    from lit_cert.certify.export import vnnlib_text

    with pytest.raises(ValueError, match="lower > upper"):
        vnnlib_text(torch.ones(1, 2), torch.zeros(1, 2), 0, 3)


# --------------------------------------------------------------------------- BatchNorm, batch of 1
@pytest.mark.parametrize("ours,theirs,shape", [(BatchNorm1d(4), nn.BatchNorm1d(4), (1, 4)), (BatchNorm2d(4), nn.BatchNorm2d(4), (1, 4, 1, 1))])
def test_batchnorm_refuses_one_value_per_channel_like_torch(ours, theirs, shape):
    x = torch.randn(shape)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        theirs.train()(x)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        ours.train()(x)
    ours(torch.randn(1, 4, 2, 2)) if isinstance(ours, BatchNorm2d) else ours(torch.randn(2, 4))  # more values: fine


def test_training_loader_drops_a_last_batch_of_one():
    dm = SyntheticImages(train_size=65, val_size=16, test_size=16, batch_size=32)  # 65 % 32 == 1
    dm.setup()
    sizes = [len(y) for _, y in dm.train_dataloader()]
    assert sizes == [32, 32]
    dm = SyntheticImages(train_size=66, val_size=16, test_size=16, batch_size=32)
    dm.setup()
    assert sorted(len(y) for _, y in dm.train_dataloader()) == [2, 32, 32]  # two samples are fine
    assert sum(len(y) for _, y in dm.val_dataloader()) == 16  # evaluation keeps every sample


def test_fit_with_batchnorm_and_a_one_sample_remainder_stays_finite(workdir):
    text = SYNTHETIC.replace("train_size: 64", "train_size: 65").replace("max_epochs: 2", "max_epochs: 1")
    cfg = write_config(workdir, text.replace("  max_epochs: 1", "  max_epochs: 1\n  logger: {class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: logs}}"))
    main(["fit", "--config", cfg, "--trainer.log_every_n_steps=1"])
    import csv

    rows = list(csv.DictReader(open(glob.glob(str(workdir / "logs" / "**" / "metrics.csv"), recursive=True)[0])))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(losses) == 2 and max(losses) < 100  # the 1-sample batch (loss ~1e9 before) is not trained on


# --------------------------------------------------------------------------- penalties for every method
METHODS = {
    "IBP": (IBP, {}, True),
    "CROWNIBP": (CROWNIBP, {}, True),
    "CROWNIBP-fused": (CROWNIBP, {"loss_fusion": True}, True),
    "SABR": (SABR, {"lam": 0.5}, False),
    "TAPS": (TAPS, {"ibp_during_ramp": False}, True),
    "STAPS": (STAPS, {"lam": 0.5, "ibp_during_ramp": False}, False),
    "MTLIBP": (MTLIBP, {"alpha": 0.5}, True),
    "PGDTraining": (PGDTraining, {}, True),
    "RelaxationTraining": (RelaxationTraining, {"relaxation": "deepz"}, True),
    "ExpectedTightBounds": (ExpectedTightBounds, {"masks": "ibp"}, True),
    "Standard": (Standard, {}, True),
    "COLT": (COLT, {"n_rand_proj": 8}, False),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_applies_shi_regularisers_and_l1(name):
    """The penalties are added after every method's own loss, in one place: the logged values
    are exactly the difference to the same step without them (the fused CROWN-IBP path used to
    drop them), and for methods whose region is the full ball they equal an independent
    computation from one IBP walk."""
    cls, extra, full_ball = METHODS[name]
    dm = SyntheticImages(train_size=32, val_size=16, test_size=16, batch_size=32)
    dm.setup()
    x, y = dm.train_set.images[:16].float() / 255, dm.train_set.labels[:16]
    net = FC(hidden=[16, 16]) if cls in (RelaxationTraining, ExpectedTightBounds) else CNN3(width=0.5)
    losses, logs = {}, {}
    for penalised in (False, True):
        torch.manual_seed(0)
        m = cls(network=net, data_info=dm.info, eps_train=0.1, eps_test=0.1, shi_reg=0.5 if penalised else 0.0,
                l1=1e-4 if penalised else 0.0, **extra)
        m.train()
        m.eps, m.kappa, m.ramp_progress = 0.04, 0.0, 0.5
        torch.manual_seed(1)
        losses[penalised], logs[penalised] = m.training_loss(x, y)
    assert logs[True]["shi_reg"] > 0 and logs[True]["l1"] > 0
    difference = (losses[True] - losses[False]).item()
    assert difference == pytest.approx((logs[True]["shi_reg"] + logs[True]["l1"]).item(), rel=1e-4, abs=1e-6)
    if full_ball:
        trace = IntervalTrace()
        interval_bounds(m.net, *linf_box(x, 0.04), trace=trace)
        tight, relu = shi_regularizers(trace, 0.5)
        assert logs[True]["shi_reg"].item() == pytest.approx((0.5 * (1 - 0.04 / 0.1) * (tight + relu)).item(), rel=1e-5)


# --------------------------------------------------------------------------- run directories
def test_runs_without_a_logger_get_their_own_directories(workdir):
    cfg = write_config(workdir)
    main(["fit", "--config", cfg, "--trainer.logger=false", "--trainer.max_epochs=1"])
    main(["fit", "--config", cfg, "--trainer.logger=false", "--trainer.max_epochs=1"])
    dirs = run_dirs(workdir)
    assert len(dirs) == 2
    for d in dirs:
        assert (Path(d) / "config.yaml").is_file() and (Path(d) / "checkpoints" / "last.ckpt").is_file()
    assert not (workdir / "checkpoints").exists()


# --------------------------------------------------------------------------- signals
def _wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.mark.slow
def test_sigterm_ends_fit_with_a_nonzero_status_after_saving(workdir):
    cfg = write_config(workdir, SYNTHETIC.replace("max_epochs: 2", "max_epochs: 400"))
    proc = subprocess.Popen([sys.executable, "-m", "lit_cert", "fit", "--config", cfg], cwd=workdir,
                            env={**os.environ, "WANDB_MODE": "disabled"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: glob.glob(str(workdir / "runs" / "lit_cert" / "*" / "checkpoints" / "last.ckpt")) or proc.poll() is not None,
                  240, "a first checkpoint")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM" in err


def _children_of_sweep(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out if int(p) != os.getpid()]


@pytest.mark.slow
@pytest.mark.parametrize("sig,code,name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_stopping_a_sweep_stops_its_running_child(workdir, sig, code, name):
    marker = f"sweepmarker{sig}"
    cfg = workdir / f"{marker}.yaml"
    cfg.write_text(textwrap.dedent(SYNTHETIC.replace("max_epochs: 2", "max_epochs: 400")))
    (workdir / "sweep.yaml").write_text(textwrap.dedent(f"""
        program: lit_cert
        method: grid
        metric: {{name: val/cert_acc, goal: maximize}}
        parameters:
          model.init_args.eps_train: {{values: [0.05, 0.1]}}
        command:
          - ${{env}}
          - ${{interpreter}}
          - -m
          - lit_cert
          - fit
          - --config
          - {cfg}
          - ${{args}}
        """))
    env = {**os.environ, "WANDB_MODE": "disabled"}
    # a shell's background job (e.g. `nohup pytest &`) inherits SIGINT as ignored, and Python then keeps
    # ignoring it: give the runner the default disposition a user's terminal would
    runner = subprocess.Popen([sys.executable, "-m", "lit_cert", "sweep", "sweep.yaml", "--out", "out"], cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(lambda: glob.glob(str(workdir / "runs" / "lit_cert" / "*" / "checkpoints" / "last.ckpt")) or runner.poll() is not None,
                  240, "the child's first epoch")
        assert runner.poll() is None, runner.stderr.read()
        assert _children_of_sweep(str(cfg))  # the child is running
        runner.send_signal(sig)
        _, err = runner.communicate(timeout=150)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == code, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("lit_cert sweep: interrupted")]
    assert len(lines) == 1 and name in lines[0]
    _wait_for(lambda: not _children_of_sweep(str(cfg)), 30, "the child to end")  # no orphan keeps training
    records = [json.loads(line) for line in (workdir / "out" / "results.jsonl").read_text().splitlines()] \
        if (workdir / "out" / "results.jsonl").is_file() else []
    assert not any(r["status"] == "finished" for r in records)  # the stopped run is not recorded as done


# --------------------------------------------------------------------------- every accepted option acts
SHARED_OPTIONS = {"elision": False, "relu_shrinkage": 0.5, "bn_statistics": "detached"}


def _loss_and_gradients(cls, extra, option, bn):
    dm = SyntheticImages(train_size=32, val_size=16, test_size=16, batch_size=32)
    dm.setup()
    x, y = dm.train_set.images[:16].float() / 255, dm.train_set.labels[:16]
    net = FC(hidden=[16, 16], bn=bn) if cls in (RelaxationTraining, ExpectedTightBounds) else CNN3(width=0.5, bn=bn)
    torch.manual_seed(0)
    m = cls(network=net, data_info=dm.info, eps_train=0.1, eps_test=0.1, **extra, **option)
    m.train()
    m.eps, m.kappa, m.ramp_progress, m.beta = 0.1, 0.0, 1.0, 0.5
    torch.manual_seed(1)
    loss = m.training_loss(x, y)[0]
    grads = torch.autograd.grad(loss, [p for p in m.parameters() if p.requires_grad], allow_unused=True)
    return loss.detach(), [g if g is not None else torch.zeros(()) for g in grads]


@pytest.mark.parametrize("option", sorted(SHARED_OPTIONS))
@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_accepted_option_changes_the_training_signal(name, option):
    """A method that accepts an option must act on it: with it the loss or the gradient differs
    from the default's on the same weights and batch; a method for which the option means
    nothing refuses it (CROWN-IBP used to accept relu_shrinkage and elision: false and ignore both)."""
    from lit_cert.errors import ConfigError

    cls, extra, _ = METHODS[name]
    value = {option: SHARED_OPTIONS[option]}
    try:
        changed = _loss_and_gradients(cls, extra, value, bn=option == "bn_statistics")
    except (ConfigError, TypeError) as err:  # refused: fine, if it says why
        assert option in str(err)
        return
    base = _loss_and_gradients(cls, extra, {}, bn=option == "bn_statistics")
    differs = not torch.allclose(changed[0], base[0], rtol=1e-6, atol=1e-8) or any(
        not torch.allclose(a, b, rtol=1e-5, atol=1e-8) for a, b in zip(changed[1], base[1]))
    assert differs, f"{name} accepts {option}={SHARED_OPTIONS[option]!r} but its training signal is unchanged"
