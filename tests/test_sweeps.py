"""W&B sweep files and the offline sweep runner (grid/random/bayes proposals, shards, resume,
damaged records, malformed specs, metric names)."""

import glob
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from lit_cert.commands import main
from lit_cert.commands.sweep import build_command, load_sweep, parse_shard, propose, shard_of
from lit_cert.runs import finished_runs

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted(glob.glob(str(ROOT / "sweeps" / "*.yaml")))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: Path(p).name)
def test_sweep_files_use_real_cli_keys(path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_sweep(path)
    assert cfg["metric"]["name"] in ("val/cert_acc", "val/pgd_acc", "val/nat_acc")
    for params in propose({"method": "grid", "parameters": cfg["parameters"]}, [], None, 0):
        cmd = build_command(cfg, params)
        assert cmd[:4] == ["/usr/bin/env", sys.executable, "-m", "lit_cert"]
        with pytest.raises(SystemExit) as ex:
            main([*cmd[4:], "--print_config"])
        assert ex.value.code == 0
        printed = yaml.safe_load(capsys.readouterr().out)
        for key, value in params.items():
            if key == "config":  # a whole config file as a sweep parameter: its method is the one printed
                assert printed["model"]["class_path"] == yaml.safe_load(open(ROOT / value))["model"]["class_path"]
                continue
            node = printed
            for part in key.split("."):
                node = node[part]
            assert node == value


def test_grid_and_random_proposals_come_from_the_wandb_engine():
    params = {"a": {"values": [1, 2]}, "b": {"values": ["x", "y", "z"]}, "c": {"value": 7}}
    grid = propose({"method": "grid", "parameters": params}, [], None, 0)
    assert len(grid) == 6 and all(p["c"] == 7 for p in grid) and len({json.dumps(p, sort_keys=True) for p in grid}) == 6
    # every W&B distribution, e.g. q_log_uniform_values, which the hand-written sampler refused
    cfg = {"method": "random", "parameters": {"lam": {"distribution": "uniform", "min": 0.1, "max": 0.9}, "w": {"values": [1, 2]},
                                              "lr": {"distribution": "q_log_uniform_values", "min": 0.001, "max": 0.1, "q": 0.001}}}
    first, again, other = propose(cfg, [], 5, seed=3), propose(cfg, [], 5, seed=3), propose(cfg, [], 5, seed=4)
    assert first == again != other and len(first) == 5
    assert all(0.1 <= p["lam"] <= 0.9 and p["w"] in (1, 2) and 0.001 <= p["lr"] <= 0.1 for p in first)
    assert all(type(p["lam"]) is float for p in first)  # plain Python, not numpy


def test_shards_partition_a_grid():
    runs = propose({"method": "grid", "parameters": {"a": {"values": [1, 2, 3]}, "b": {"values": ["x", "y"]},
                                                     "c": {"values": [0, 1]}}}, [], None, 0)
    for n in (1, 2, 5, 12, 13):
        slices = [shard_of(runs, parse_shard(f"{k}/{n}")) for k in range(1, n + 1)]
        flat = [json.dumps(r, sort_keys=True) for part in slices for r in part]
        assert sorted(flat) == sorted(json.dumps(r, sort_keys=True) for r in runs)  # every run once
        assert max(map(len, slices)) - min(map(len, slices)) <= 1  # balanced
    assert shard_of(runs, None) == runs
    for bad in ("0/2", "3/2", "1", "a/b"):
        with pytest.raises(Exception, match="--shard"):
            parse_shard(bad)


def test_shard_is_refused_for_bayes_sweeps(workdir, capsys):
    (workdir / "s.yaml").write_text("program: lit_cert\nmethod: bayes\nmetric: {name: val/cert_acc, goal: maximize}\n"
                                    "parameters:\n  model.init_args.lr: {min: 0.001, max: 0.1}\n")
    with pytest.raises(SystemExit) as ex:
        main(["sweep", "s.yaml", "--shard", "1/2", "--out", "o"])
    assert ex.value.code == 2
    assert "--shard splits grid and random sweeps" in capsys.readouterr().err


SYNTHETIC = """
seed_everything: 3
model:
  class_path: lit_cert.methods.IBP
  init_args:
    network: {class_path: lit_cert.models.FC, init_args: {hidden: [16]}}
    eps_train: 0.05
    eps_test: 0.05
data:
  class_path: lit_cert.data.SyntheticImages
  init_args: {train_size: 64, val_size: 32, test_size: 32, batch_size: 32}
trainer: {max_epochs: 1, enable_progress_bar: false, enable_model_summary: false}
"""


@pytest.mark.slow
def test_offline_runner_grid_with_a_failure_and_resume(workdir):
    (workdir / "cfg.yaml").write_text(SYNTHETIC)
    (workdir / "sweep.yaml").write_text(
        textwrap.dedent(
            """
            program: lit_cert
            method: grid
            metric: {name: val/cert_acc, goal: maximize}
            parameters:
              model.init_args.eps_train: {values: [0.02, 0.05, -1.0]}
            command:
              - ${env}
              - ${interpreter}
              - -m
              - lit_cert
              - fit
              - --config
              - cfg.yaml
              - ${args}
            """
        )
    )
    # two shards sharing one folder (as two runners would): the second's table covers all three runs
    first = main(["sweep", "sweep.yaml", "--out", "out", "--timeout", "300", "--shard", "1/2"])
    assert sorted(r["params"]["model.init_args.eps_train"] for r in first) == [-1.0, 0.02]
    records = main(["sweep", "sweep.yaml", "--out", "out", "--timeout", "300", "--shard", "2/2"])
    status = {r["params"]["model.init_args.eps_train"]: r for r in records}
    assert status[0.02]["status"] == status[0.05]["status"] == "finished"
    assert status[-1.0]["status"] == "failed" and status[-1.0]["returncode"] == 2
    assert "eps_train: must be a radius" in status[-1.0]["log_tail"]
    assert 0.0 <= status[0.05]["metric"] <= 1.0
    assert status[0.05]["metrics"]["final/eps"] == pytest.approx(0.05)
    rows = (workdir / "out" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("run_id,model.init_args.eps_train,val/cert_acc,status") and len(rows) == 4
    assert (workdir / "out" / "val_cert_acc.png").stat().st_size > 1000
    # each run kept its own config file
    run_dirs = {r["metrics"]["run_dir"] for r in records if r["status"] == "finished"}
    assert len(run_dirs) == 2
    done = finished_runs(workdir / "out")  # what evaluation scripts read: finished runs, their checkpoints
    assert sorted(r["params"]["model.init_args.eps_train"] for r, _ in done) == [0.02, 0.05]
    assert all((d / "checkpoints" / "last.ckpt").is_file() for _, d in done)
    # every artefact of the sweep stays under its --out: no run directory in the working folder
    out = (workdir / "out").resolve()
    assert all(out in d.resolve().parents for _, d in done) and not (workdir / "runs").exists()
    # resume: finished runs are skipped, only the failed one is retried
    lines_before = len((workdir / "out" / "results.jsonl").read_text().splitlines())
    main(["sweep", "sweep.yaml", "--out", "out", "--timeout", "300"])
    new = (workdir / "out" / "results.jsonl").read_text().splitlines()[lines_before:]
    assert [json.loads(line)["params"]["model.init_args.eps_train"] for line in new] == [-1.0]

def test_bayes_proposals_come_from_the_wandb_engine():
    """Offline bayes search: W&B's sweep engine proposes the next run from our records."""
    from lit_cert.commands.sweep import propose

    lam, width = "model.init_args.lam", "model.init_args.network.init_args.width"
    cfg = {"method": "bayes", "metric": {"name": "val/cert_acc", "goal": "maximize"},
           "parameters": {lam: {"min": 0.1, "max": 0.9}, width: {"values": [0.5, 1.0, 2.0]}}}
    first = propose(cfg, [], None, 0)
    records = [{"run_id": f"r{i}", "status": "finished", "params": {lam: l, width: w}, "metric": m}
               for i, (l, w, m) in enumerate([(0.2, 0.5, 0.3), (0.5, 1.0, 0.6), (0.8, 2.0, 0.4)])]
    records.append({"run_id": "r9", "status": "failed", "params": {lam: 0.3, width: 1.0}, "metric": None})
    nxt = propose(cfg, records, None, 0)
    for proposal in (first, nxt):
        assert len(proposal) == 1 and set(proposal[0]) == {lam, width}
        assert 0.1 <= proposal[0][lam] <= 0.9 and proposal[0][width] in (0.5, 1.0, 2.0)
        assert type(proposal[0][lam]) is float  # plain Python, not numpy


FAKE_RUN = """
import json, os, sys
value = float(sys.argv[1].split("=", 1)[1])
json.dump({"val/cert_acc": value / 10, "val/nat_acc": 0.9, "run_dir": "."}, open(os.environ["LIT_CERT_RESULT_FILE"], "w"))
"""


def _fake_sweep(workdir, metric="val/cert_acc", values=(1, 2, 3)):
    """A sweep whose 'runs' are a two-line script writing a result file: the runner's logic without fits."""
    (workdir / "fake.py").write_text(FAKE_RUN)
    (workdir / "s.yaml").write_text(textwrap.dedent(f"""
        method: grid
        metric: {{name: {metric}, goal: maximize}}
        parameters:
          a: {{values: {list(values)}}}
        command:
          - ${{interpreter}}
          - fake.py
          - ${{args}}
        """))
    return str(workdir / "s.yaml")


def test_a_misspelt_sweep_metric_stops_with_the_logged_keys(workdir, capsys):
    sweep = _fake_sweep(workdir, metric="val/cert_accc")
    with pytest.raises(SystemExit) as ex:
        main(["sweep", sweep, "--out", "out"])
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("lit_cert: error:")]
    assert ex.value.code == 2 and len(line) == 1
    assert "'val/cert_accc' is not logged" in line[0] and "val/nat_acc" in line[0] and "Did you mean val/cert_acc?" in line[0]
    assert len((workdir / "out" / "results.jsonl").read_text().splitlines()) == 1  # stopped after the first run
    # fixed name: the finished run is kept (not re-run) and the metric is read from what it logged
    records = main(["sweep", _fake_sweep(workdir), "--out", "out"])
    table = (workdir / "out" / "results.csv").read_text().splitlines()
    assert len(records) == 3 and all(r["status"] == "finished" for r in records)
    assert [row.split(",")[2] for row in table[1:]] == ["0.1", "0.2", "0.3"]
    assert len((workdir / "out" / "results.jsonl").read_text().splitlines()) == 3


def test_a_truncated_last_record_is_rerun_not_a_traceback(workdir, capsys):
    sweep = _fake_sweep(workdir, values=(1, 2))
    main(["sweep", sweep, "--out", "out"])
    log = workdir / "out" / "results.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # a kill mid-append
    records = main(["sweep", sweep, "--out", "out"])
    assert "line 2 is not a valid run record" in capsys.readouterr().err
    assert sorted(r["params"]["a"] for r in records if r["status"] == "finished") == [1, 2]
    assert [json.loads(x)["params"]["a"] for x in log.read_text().splitlines()[2:]] == [2]  # the damaged run reran


@pytest.mark.parametrize("parameters, message", [
    ("{a: 3}", "parameter 'a' must be a mapping"),
    ("{a: {values: []}}", "values must be a non-empty list"),
    ("{a: {min: 3, max: 1}}", "needs values, value, or numeric min <= max"),
    ("[a, b]", "parameters must be a non-empty mapping"),
])
def test_malformed_sweep_parameters_are_one_line(workdir, capsys, parameters, message):
    (workdir / "s.yaml").write_text(f"method: grid\nparameters: {parameters}\n")
    with pytest.raises(SystemExit) as ex:
        main(["sweep", "s.yaml", "--out", "out"])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and "Traceback" not in err and message in err
