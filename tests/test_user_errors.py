"""Every class of bad input stops before anything is trained or written: exit status 2, one
``lit_cert: error:`` line naming the problem, no traceback, no run directory (issue #10)."""

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_cert.commands import main

from .helpers import make_idx_dataset, run_dirs, write_config, write_idx


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny trained run (its last.ckpt and config) shared by the checkpoint cases."""
    root = tmp_path_factory.mktemp("trained")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        cfg = write_config(root)
        main(["fit", "--config", cfg, "--trainer.max_epochs=1"])
    finally:
        os.chdir(cwd)
    return Path(run_dirs(root)[0]) / "checkpoints" / "last.ckpt"


def expect_user_error(capsys, argv, message):
    with pytest.raises(SystemExit) as ex:
        main(argv)
    err = capsys.readouterr().err
    assert ex.value.code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("lit_cert: error:")]
    assert len(lines) == 1 and message in lines[0], err
    return err


def _truncated(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    return dst


def _corrupt(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    data[100:400] = b"\x00" * 300
    dst.write_bytes(bytes(data))
    return dst


def _mnist_dir(root: Path, problem: str) -> Path:
    d = root / "mnist"
    make_idx_dataset(d, n_train=40, n_test=12)
    labels = d / "train-labels-idx1-ubyte.gz"
    if problem == "truncated":
        raw = labels.read_bytes()
        labels.write_bytes(raw[: len(raw) // 2])
    elif problem == "labels":
        write_idx(d / "train-labels-idx1-ubyte", np.full(40, 12, dtype=np.uint8))  # 12 >= 10 classes
    elif problem == "header":
        with gzip.open(d / "t10k-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\x00\x00\x08\x03" + (99).to_bytes(4, "big") + b"\x00" * 64)  # 99 images announced, none there
    return d


MNIST_ARGS = ["--data=lit_cert.data.MNIST", "--data.download=false", "--model.network.init_args.width=0.25"]

FIT_CASES = {
    "batch-size-0": (["--data.init_args.batch_size=0"], "data.init_args.batch_size: must be an integer >= 1"),
    "width-0": (["--model.init_args.network.init_args.width=0"], "model.init_args.network.init_args.width: must be > 0"),
    "ramp-epochs-negative": (["--schedule.ramp_epochs=-1"], "ramp_epochs"),
    "eps-huge": (["--model.eps_train=1e9", "--model.eps_test=0.1"], "model.init_args.eps_train: must be a radius"),
    "eps-test-above-1": (["--model.eps_test=1.5"], "model.init_args.eps_test: must be a radius"),
    "lr-zero": (["--model.lr=0"], "model.init_args.lr: must be > 0"),
    "unknown-certifier": (["--model.certifier=magic"], "model.init_args.certifier: must be one of ibp"),
    # what the config parser (jsonargparse) rejects: one line with the cause, not a usage dump
    "eps-nan": (["--model.eps_train=nan"], "model.init_args.eps_train: must be a finite number, got nan"),
    "eps-inf": (["--model.eps_test=inf"], "model.init_args.eps_test: must be a finite number, got inf"),
    "method-class-typo": (["--model=lit_cert.methods.IPB"], "no class lit_cert.methods.IPB (did you mean lit_cert.methods.IBP?)"),
    "network-class-typo": (["--model.network=lit_cert.models.CNN4"], "model.init_args.network: no class lit_cert.models.CNN4 (did you mean"),
    "data-class-typo": (["--data=lit_cert.data.MNST"], "did you mean lit_cert.data.MNIST?"),
    "model-key-typo": (["--model.init_args.eps_trian=0.1"], "unknown argument 'eps_trian' of lit_cert.methods.IBP (did you mean eps_train?)"),
    "network-key-typo": (["--model.network.init_args.widht=2"], "model.init_args.network.init_args.widht: unknown argument 'widht' of lit_cert.models.CNN3 (did you mean width?)"),
    "trainer-key-typo": (["--trainer.max_epoch=3"], "unknown option --trainer.max_epoch (did you mean --trainer.max_epochs?)"),
    "schedule-key-typo": (["--schedule.ramp_epoch=3"], "did you mean --schedule.ramp_epochs?"),
    "unknown-optimizer": (["--model.optimizer=adm"], "model.init_args.optimizer: must be one of adam, sgd, got 'adm' (did you mean adam?)"),
    "not-a-number": (["--model.lr=fast"], "model.init_args.lr: expected float, got 'fast'"),
    "missing-config": (["--config=missing.yaml"], "missing.yaml' does not exist"),
    "malformed-config": (["--config=malformed.yaml"], "malformed.yaml is not valid YAML"),
    "config-not-a-mapping": (["--config=scalar.yaml"], "scalar.yaml is not a mapping"),
    # a fit that would train nothing (and report untrained weights with --test_after_fit)
    "max-epochs-0": (["--trainer.max_epochs=0", "--test_after_fit=true"], "trainer.max_epochs=0 would train nothing"),
    "max-steps-0": (["--trainer.max_steps=0"], "trainer.max_steps=0 would train nothing"),
    "limit-train-batches-0": (["--trainer.limit_train_batches=0"], "trainer.limit_train_batches=0 would train nothing"),
    "limit-train-batches-0.0": (["--trainer.limit_train_batches=0.0"], "trainer.limit_train_batches=0.0 would train nothing"),
}


@pytest.mark.parametrize("name", sorted(FIT_CASES))
def test_bad_fit_arguments(workdir, capsys, name):
    extra, message = FIT_CASES[name]
    (workdir / "malformed.yaml").write_text("model: [unclosed\n  eps: 1\n")
    (workdir / "scalar.yaml").write_text("just a sentence\n")
    err = expect_user_error(capsys, ["fit", "--config", write_config(workdir), *extra], message)
    assert run_dirs(workdir) == [] and "usage:" not in err and len(err.strip().splitlines()) == 1, err


def test_test_and_validate_need_a_checkpoint(workdir, capsys):
    """Without --ckpt_path they would report the metrics of freshly initialised weights."""
    for command in ("test", "validate"):
        expect_user_error(capsys, [command, "--config", write_config(workdir)], f"{command} needs --ckpt_path")


def test_unknown_command_suggests_one(workdir, capsys):
    expect_user_error(capsys, ["fot", "--config", write_config(workdir)], "unknown command 'fot' (did you mean fit?)")


def test_help_and_print_config_still_print(workdir, capsys):
    for flag in ("--help", "--print_config"):
        with pytest.raises(SystemExit) as ex:
            main(["fit", "--config", write_config(workdir), flag])
        assert ex.value.code == 0
        assert ("usage:" if flag == "--help" else "model:") in capsys.readouterr().out


@pytest.mark.parametrize("problem,message", [
    ("missing", "does not exist"),
    ("truncated", "not a readable checkpoint"),
    ("corrupt", "not a readable checkpoint"),
    ("other-shapes", "does not fit this model/data"),
])
def test_bad_ckpt_path(workdir, capsys, trained, problem, message):
    ckpt = {"missing": lambda: workdir / "none.ckpt",
            "truncated": lambda: _truncated(trained, workdir / "t.ckpt"),
            "corrupt": lambda: _corrupt(trained, workdir / "c.ckpt"),
            "other-shapes": lambda: shutil.copy(trained, workdir / "o.ckpt")}[problem]()
    # trained on 1x12x12 inputs with 4 classes; resumed/tested on 1x8x8 with 3 classes
    extra = ["--data.init_args.in_shape=[1, 8, 8]", "--data.init_args.num_classes=3"] if problem == "other-shapes" else []
    for command in ("fit", "test"):
        expect_user_error(capsys, [command, "--config", write_config(workdir), f"--ckpt_path={ckpt}", *extra], message)
        assert run_dirs(workdir) == []  # no empty run directory left behind


@pytest.mark.parametrize("problem,message", [
    ("truncated", "unreadable (truncated or corrupt?)"),
    ("header", "unreadable (truncated or corrupt?)"),
    ("labels", "labels range over [12, 12]"),
])
def test_bad_dataset_files(workdir, capsys, monkeypatch, problem, message):
    from lit_cert.data import MNIST

    monkeypatch.setattr(MNIST, "system_dirs", ())
    d = _mnist_dir(workdir, problem)
    expect_user_error(capsys, ["fit", "--config", write_config(workdir), *MNIST_ARGS, f"--data.data_dir={d}"], message)
    assert run_dirs(workdir) == []


def test_unwritable_output_directory(workdir, capsys):
    (workdir / "blocker").write_text("a file where a directory should be")
    expect_user_error(capsys, ["fit", "--config", write_config(workdir), f"--trainer.logger.init_args.save_dir={workdir / 'blocker' / 'runs'}"],
                      "cannot write to")
    expect_user_error(capsys, ["fit", "--config", write_config(workdir), "--trainer.logger=false",
                               f"--trainer.default_root_dir={workdir / 'blocker' / 'root'}", "--trainer.max_epochs=1"],
                      "cannot write to")


CERTIFY_CASES = {
    "eps-negative": (["--eps", "-0.1"], "--eps: must be a radius (pixel units) in [0, 1]"),
    "eps-nan": (["--eps", "nan"], "eps: must be a finite number, got nan"),
    "limit-negative": (["--limit", "-5"], "--limit: must be an integer >= 1"),
    "shard-size-0": (["--shard_size", "0"], "--shard_size: must be an integer >= 1"),
    "batch-size-0": (["--batch_size", "0"], "--batch_size: must be an integer >= 1"),
    "timeout-0": (["--timeout", "0"], "--milp.timeout: must be > 0"),  # the legacy flag of --milp.timeout
    "unknown-stage": (["--stages", "pgd,magic"], "unknown stages ['magic']"),
    "empty-stages": (["--stages", ","], "--stages is empty"),
    "no-gpu": (["--device", "cuda:7"], "--device: no CUDA device"),
}


@pytest.mark.parametrize("name", sorted(CERTIFY_CASES))
def test_bad_certify_arguments(workdir, capsys, trained, name):
    if name == "no-gpu" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    extra, message = CERTIFY_CASES[name]
    expect_user_error(capsys, ["certify", "--ckpt", str(trained), "--out", str(workdir / "cert"), *extra], message)
    assert not (workdir / "cert" / "shards").exists() or not any((workdir / "cert" / "shards").iterdir())


@pytest.mark.parametrize("extra,message", [
    (["--eps", "-0.1"], "--eps: must be a radius (pixel units) in [0, 1]"),
    (["--limit", "0"], "--limit: must be an integer >= 1"),
])
def test_bad_export_arguments(workdir, capsys, trained, extra, message):
    expect_user_error(capsys, ["export", "--ckpt", str(trained), "--out", str(workdir / "export"), *extra], message)
    assert not (workdir / "export" / "vnnlib").exists()


ANALYZE_CASES = {
    "dln-widths-0": (["dln-init", "--widths", "0"], "--widths: item 0 must be an integer >= 1"),
    "dln-samples-negative": (["dln-init", "--samples", "-3"], "--samples: must be an integer >= 1"),
    "reconstruction-trials-0": (["box-reconstruction", "--trials", "0"], "--trials: must be an integer >= 1"),
    "reconstruction-k-above-d": (["box-reconstruction", "--d", "4", "--k", "8"], "no (d, k) pair"),
    "landscape-steps-0": (["landscape", "--steps", "0"], "--steps: must be an integer >= 3"),
    "landscape-delta-negative": (["landscape", "--delta", "-1"], "--delta: must be > 0"),
    "expected-samples-0": (["expected-bounds", "--samples", "0"], "--samples: must be an integer >= 1"),
    "tightness-limit-0": (["tightness", "--ckpt", "cfg.yaml", "--limit", "0"], "--limit: must be an integer >= 1"),
    "cr-curve-points-0": (["cr-curve", "--ckpt", "cfg.yaml", "--points", "0"], "--points: must be an integer >= 2"),
    "cr-curve-missing-ckpt": (["cr-curve", "--ckpt", "missing.ckpt"], "does not exist"),
}


@pytest.mark.parametrize("name", sorted(ANALYZE_CASES))
def test_bad_analyze_arguments(workdir, capsys, name):
    extra, message = ANALYZE_CASES[name]
    write_config(workdir)  # an existing file where a checkpoint path is only checked to exist
    expect_user_error(capsys, ["analyze", *extra, "--out", str(workdir / "an")], message)


def test_bad_sweep_file(workdir, capsys):
    expect_user_error(capsys, ["sweep", str(workdir / "none.yaml")], "does not exist")
    (workdir / "s.yaml").write_text("method: grid\n")
    expect_user_error(capsys, ["sweep", str(workdir / "s.yaml")], "a sweep needs 'parameters'")


@pytest.mark.slow
def test_bad_input_through_python_dash_m_prints_one_line(workdir):
    """The real process: exit 2, exactly one stderr line, for a config error and an argument error."""
    import subprocess
    import sys

    env = {**os.environ, "WANDB_MODE": "disabled"}
    for argv in (["fit", "--config", write_config(workdir), "--data.init_args.batch_size=0"],
                 ["certify", "--ckpt", "missing.ckpt", "--eps", "-1"]):
        proc = subprocess.run([sys.executable, "-m", "lit_cert", *argv], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
        lines = [line for line in proc.stderr.splitlines() if line.strip() and "Seed set" not in line]
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("lit_cert: error:"), proc.stderr
