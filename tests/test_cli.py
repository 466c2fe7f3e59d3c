"""The command line: in-process and subprocess fits, override precedence, clear errors."""

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lit_cert.commands import main

from .helpers import SYNTHETIC, run_dirs, write_config

ROOT = Path(__file__).resolve().parents[1]

def test_fit_in_process_saves_config_checkpoints_and_tests(workdir, capsys):
    cfg = write_config(workdir)
    main(["fit", "--config", cfg, "--test_after_fit", "true"])
    dirs = run_dirs(workdir)
    assert len(dirs) == 1
    saved = yaml.safe_load(open(Path(dirs[0]) / "config.yaml"))
    assert saved["seed_everything"] == 7
    assert saved["model"]["init_args"]["eps_test"] == 0.1  # interpolation resolved
    ckpts = sorted(os.listdir(Path(dirs[0]) / "checkpoints"))
    assert "last.ckpt" in ckpts and any(c.startswith("best-") for c in ckpts)
    out = capsys.readouterr().out
    assert "test natural accuracy" in out and "certified accuracy (IBP, eps=0.1)" in out
    # a second run gets its own directory and config (no shared config.yaml)
    main(["fit", "--config", cfg, "--model.eps_train=0.2", "--trainer.max_epochs=1"])
    dirs = run_dirs(workdir)
    assert len(dirs) == 2
    configs = [yaml.safe_load(open(Path(d) / "config.yaml")) for d in dirs]
    assert sorted(c["model"]["init_args"]["eps_train"] for c in configs) == [0.1, 0.2]


def test_overrides_win_over_interpolated_values(workdir, capsys):
    cfg = write_config(workdir)
    with pytest.raises(SystemExit) as ex:
        main(["fit", "--config", cfg, "--model.init_args.eps_train=0.3", "--print_config"])
    assert ex.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    init = printed["model"]["init_args"]
    assert init["eps_train"] == 0.3 and init["eps_test"] == 0.3  # interpolation sees the override
    with pytest.raises(SystemExit):
        main(["fit", "--config", cfg, "--model.eps_train=0.3", "--model.eps_test=0.05", "--print_config"])
    init = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    assert (init["eps_train"], init["eps_test"]) == (0.3, 0.05)  # explicit beats interpolated


BAD = [
    (["--model.eps_train=-0.1"], "eps_train: must be a radius (pixel units) in [0, 1]"),
    (["--model.network.class_path=lit_cert.models.NoSuchNet"], "NoSuchNet"),
    (["--data.class_path=lit_cert.data.NoSuchData"], "NoSuchData"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=["negative-eps", "unknown-model", "unknown-dataset"])
def test_bad_configs_fail_clearly_before_training(workdir, capsys, extra, message):
    cfg = write_config(workdir)
    with pytest.raises(SystemExit) as ex:
        main(["fit", "--config", cfg, *extra])
    assert ex.value.code not in (0, None)
    assert message in capsys.readouterr().err
    assert run_dirs(workdir) == []  # nothing trained, nothing written


def test_missing_eps_test_fails_clearly(workdir, capsys):
    cfg = write_config(workdir, SYNTHETIC.replace("    eps_test: ${model.init_args.eps_train}\n", ""))
    with pytest.raises(SystemExit) as ex:
        main(["fit", "--config", cfg])
    assert ex.value.code == 2
    assert "eps_test is missing" in capsys.readouterr().err
    assert run_dirs(workdir) == []


def test_missing_data_fails_clearly(workdir, capsys, monkeypatch):
    from lit_cert.data import MNIST

    monkeypatch.setattr(MNIST, "system_dirs", ())
    cfg = write_config(workdir)
    with pytest.raises(SystemExit) as ex:
        main(["fit", "--config", cfg, "--data=lit_cert.data.MNIST", f"--data.data_dir={workdir / 'none'}", "--data.download=false"])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert "MNIST not found" in err and "data_dir" in err


def test_resume_with_ckpt_path_through_the_cli(workdir):
    cfg = write_config(workdir)
    main(["fit", "--config", cfg, "--trainer.max_epochs=1"])
    last = Path(run_dirs(workdir)[0]) / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=False)
    assert state["global_step"] == 2
    main(["fit", "--config", cfg, "--trainer.max_epochs=2", f"--ckpt_path={last}"])
    # the resumed run continues *that* run: one run directory, its W&B run id, its best checkpoint
    assert len(run_dirs(workdir)) == 1
    resumed = torch.load(last, weights_only=False)
    assert resumed["global_step"] == 4 and resumed["epoch"] == 1
    sched = resumed["callbacks"]["CertifiedSchedule"]["applied"]
    assert sched["step"] == 3 and sched["eps_fraction"] == 1.0 and sched["progress"] == 1.0  # the schedule keeps its progress
    run = Path(run_dirs(workdir)[0])
    import yaml

    logged = yaml.safe_load((run / "config.yaml").read_text())["trainer"]["logger"]["init_args"]
    assert logged["id"] == run.name
    best = [v for k, v in resumed["callbacks"].items() if "val/cert_acc" in k][0]
    assert len(best["best_k_models"]) == 1 and Path(best["best_model_path"]).is_file()  # tracked across both parts
    assert sorted(p.name for p in (run / "checkpoints").glob("best-*.ckpt")) == [Path(best["best_model_path"]).name]
    # a deliberate fork starts a new run from the checkpoint
    main(["fit", "--config", cfg, "--trainer.max_epochs=3", f"--ckpt_path={last}", "--fork=true"])
    assert len(run_dirs(workdir)) == 2


@pytest.mark.slow
def test_fit_through_python_dash_m(workdir):
    cfg = write_config(workdir)
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-m", "lit_cert", "fit", "--config", cfg, "--trainer.max_epochs=1", "--test_after_fit=true"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "certified accuracy (IBP" in proc.stdout
    assert len(run_dirs(workdir)) == 1


@pytest.mark.slow
def test_bad_config_through_python_dash_m(workdir):
    cfg = write_config(workdir)
    proc = subprocess.run(
        [sys.executable, "-m", "lit_cert", "fit", "--config", cfg, "--model.eps_test=-1"],
        cwd=workdir, env={**os.environ, "WANDB_MODE": "disabled"}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "lit_cert: error:" in proc.stderr and "Traceback" not in proc.stderr


FULL_CONFIGS = sorted(p for p in glob.glob(str(ROOT / "configs" / "**" / "*.yaml"), recursive=True) if "/trainer/" not in p)


@pytest.mark.parametrize("config", FULL_CONFIGS, ids=lambda p: Path(p).name)
def test_every_shipped_config_parses(config, capsys):
    with pytest.raises(SystemExit) as ex:
        main(["fit", "--config", config, "--print_config"])
    assert ex.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    init = printed["model"]["init_args"]
    assert isinstance(init["eps_test"], float) and isinstance(init["eps_train"], float)
    assert isinstance(init.get("l1", 0.0), float) and isinstance(init.get("lr", 0.0), float)


def test_last_checkpoint_follows_every_epoch_even_without_improvement(workdir):
    """eps_test so large that certified accuracy stays 0: no new best, but last.ckpt moves on."""
    cfg = write_config(workdir)
    main(["fit", "--config", cfg, "--model.eps_test=0.9", "--trainer.max_epochs=3"])
    ckpts = Path(run_dirs(workdir)[0]) / "checkpoints"
    last = torch.load(ckpts / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2 and last["global_step"] == 6
    assert sorted(p.name for p in ckpts.glob("best-*.ckpt")) == ["best-epoch000.ckpt"]


@pytest.mark.slow
def test_sigterm_saves_last_checkpoint_and_resume_continues(workdir):
    """Nothing trained is lost: an interrupted run leaves last.ckpt at the interruption step."""
    import signal
    import time

    cfg = write_config(workdir, SYNTHETIC.replace("max_epochs: 2", "max_epochs: 400").replace("train_size: 64", "train_size: 640"))
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen([sys.executable, "-m", "lit_cert", "fit", "--config", cfg], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not glob.glob(str(workdir / "runs" / "lit_cert" / "*" / "checkpoints" / "last.ckpt")):
            assert time.time() < deadline and proc.poll() is None, "no checkpoint appeared"
            time.sleep(0.5)
        time.sleep(2.0)  # well inside a later epoch
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    last = Path(glob.glob(str(workdir / "runs" / "lit_cert" / "*" / "checkpoints" / "last.ckpt"))[0])
    state = torch.load(last, weights_only=False)
    steps_per_epoch = 20  # 640 samples / batch 32
    assert state["global_step"] > steps_per_epoch  # the progress made before the interruption is kept
    main(["fit", "--config", cfg, f"--ckpt_path={last}", f"--trainer.max_steps={state['global_step'] + 3}"])
    newest = max(glob.glob(str(workdir / "runs" / "lit_cert" / "*" / "checkpoints" / "last.ckpt")), key=os.path.getmtime)
    assert torch.load(newest, weights_only=False)["global_step"] == state["global_step"] + 3


NO_KAPPA = ["--schedule.kappa_start=0", "--schedule.kappa_end=0"]


@pytest.mark.parametrize("method,extra,monitor", [
    ("Standard", NO_KAPPA, "val/nat_acc"),  # (they ignore the config's kappa ramp, so refuse it)
    ("PGDTraining", ["--model.pgd_eval_steps=3"], "val/pgd_acc"),
    ("ExpectedTightBounds", NO_KAPPA, "val/nat_acc"),
    ("IBP", [], "val/cert_acc"),
    ("Standard", [*NO_KAPPA, "--checkpoint.monitor=val/rob_loss", "--checkpoint.mode=min"], "val/rob_loss"),  # explicit wins
])
def test_best_checkpoint_monitor_follows_the_method(workdir, monkeypatch, method, extra, monitor):
    """Standard/PGD training never certifies anything: selecting by val/cert_acc would keep epoch 0."""
    import json

    result = workdir / "result.json"
    monkeypatch.setenv("LIT_CERT_RESULT_FILE", str(result))
    cfg = write_config(workdir)
    main(["fit", "--config", cfg, f"--model=lit_cert.methods.{method}", "--model.eps_test=0.1", "--trainer.max_epochs=3", *extra])
    metrics = json.loads(result.read_text())
    assert f"best/{monitor}" in metrics
    best = [c for c in os.listdir(Path(run_dirs(workdir)[0]) / "checkpoints") if c.startswith("best-")]
    assert len(best) == 1


def test_class_switch_that_drops_an_interpolation_fails_clearly(workdir, capsys):
    cfg = write_config(workdir)  # eps_test: ${model.init_args.eps_train}
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", cfg, "--model=lit_cert.methods.SABR", "--trainer.max_epochs=1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "eps_test (${model.init_args.eps_train} in" in err and "--model.eps_test=VALUE" in err
    assert run_dirs(workdir) == []  # refused before anything was built


def test_default_root_dir_holds_the_run_under_the_default_logger(workdir):
    """--trainer.default_root_dir is where the run directory goes, logger or not (it used to be
    ignored under the default W&B logger, whose save_dir 'runs' is relative to the cwd)."""
    cfg = write_config(workdir)
    main(["fit", "--config", cfg, "--trainer.max_epochs=1", "--trainer.default_root_dir=root"])
    assert run_dirs(workdir) == [] and len(run_dirs(workdir / "root")) == 1
    assert (Path(run_dirs(workdir / "root")[0]) / "checkpoints" / "last.ckpt").is_file()
    main(["fit", "--config", cfg, "--trainer.max_epochs=1", "--trainer.default_root_dir=other", "--trainer.logger=false"])
    assert len(run_dirs(workdir / "other")) == 1 and run_dirs(workdir) == []


def test_no_test_metrics_for_weights_that_were_never_trained(workdir, capsys):
    """An empty training loader (one sample, dropped for BatchNorm's sake) trains nothing: fit
    stops with an error instead of testing the initial weights."""
    cfg = write_config(workdir)
    with pytest.raises(SystemExit) as ex:
        main(["fit", "--config", cfg, "--data.init_args.train_size=1", "--test_after_fit=true"])
    out = capsys.readouterr()
    assert ex.value.code == 2 and "fit ran no training step" in out.err
    assert "test natural accuracy" not in out.out + out.err


def test_two_seeded_runs_give_identical_metrics(workdir, monkeypatch):
    """The quick start's promise: on one machine and thread count a seeded run is deterministic
    (the digits may differ across CPUs and thread counts, README)."""
    cfg = write_config(workdir)
    results = []
    for i in range(2):
        monkeypatch.setenv("LIT_CERT_RESULT_FILE", str(workdir / f"result{i}.json"))
        main(["fit", "--config", cfg, "--test_after_fit", "true", "--data.init_args.crop_padding=1"])
        import json

        metrics = json.loads((workdir / f"result{i}.json").read_text())
        results.append({k: v for k, v in metrics.items() if k.startswith(("test/", "val/", "train/"))})
    assert results[0] and "test/cert_acc" in results[0] and "train/loss" in results[0]
    assert results[0] == results[1]


def test_runs_without_a_logger_get_their_own_directories(workdir):
    cfg = write_config(workdir)
    main(["fit", "--config", cfg, "--trainer.logger=false", "--trainer.max_epochs=1"])
    main(["fit", "--config", cfg, "--trainer.logger=false", "--trainer.max_epochs=1"])
    dirs = run_dirs(workdir)
    assert len(dirs) == 2
    for d in dirs:
        assert (Path(d) / "config.yaml").is_file() and (Path(d) / "checkpoints" / "last.ckpt").is_file()
    assert not (workdir / "checkpoints").exists()


def test_no_validation_split_trains_on_everything_and_keeps_the_last_checkpoint(workdir, capsys):
    """data.val_size 0 (the paradox authors' choice): every training image is trained on, there
    is no validation and no best checkpoint, and --test_after_fit tests the last weights."""
    cfg = write_config(workdir)
    main(["fit", "--config", cfg, "--data.init_args.val_size=0", "--test_after_fit=true", "--trainer.max_epochs=1"])
    out = capsys.readouterr()
    assert "64 training / 0 validation" in out.err and "the last checkpoint is the result" in out.err
    assert "test natural accuracy" in out.out
    ckpts = os.listdir(Path(run_dirs(workdir)[0]) / "checkpoints")
    assert ckpts == ["last.ckpt"]
