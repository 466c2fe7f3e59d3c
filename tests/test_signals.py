"""How signals end runs and sweeps: SIGTERM saves last.ckpt and exits 143; stopping the sweep
runner stops its running child."""

import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest


from .helpers import SYNTHETIC, write_config


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
        # a sweep run's directory is under the sweep's --out: out/runs/<run id>/runs/lit_cert/<id>/
        _wait_for(lambda: glob.glob(str(workdir / "out" / "runs" / "*" / "runs" / "lit_cert" / "*" / "checkpoints" / "last.ckpt"))
                  or runner.poll() is not None,
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
