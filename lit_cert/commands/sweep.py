"""``lit_cert sweep SWEEP.yaml``: run a W&B sweep file without a W&B server.

The same YAML that ``wandb sweep`` accepts (``program``, ``method``, ``metric``, ``parameters``,
``command``), checked against W&B's own schema, is turned into runs by W&B's own engine (the
PyPI package ``sweeps``) -- ``grid`` (every combination), ``random`` (``--count`` draws of any
W&B distribution, seeded by ``--seed``) or ``bayes`` -- and each run is one subprocess with the sweep's command (macros ``${env}``,
``${interpreter}``, ``${program}``, ``${args}`` as W&B expands them; ``${interpreter}`` is this
Python). Every run gets ``$LIT_CERT_RESULT_FILE`` and writes its final metrics there.

``OUT/results.jsonl`` records each run (parameters, status, metric, return code, seconds);
a rerun skips finished runs, so an interrupted sweep resumes. Failures are recorded (with the
tail of the run's log) and do not stop the sweep. At the end ``OUT/results.csv`` and
``OUT/<metric>.png`` (the metric against each swept parameter) are written.

Stopping the runner (Ctrl-C, or SIGTERM from a scheduler) stops the run in progress too: the
child runs in its own process group and gets SIGTERM (a lit_cert fit then saves ``last.ckpt``),
then SIGKILL if it has not ended after a grace period. The runner prints one line and exits
with 130 (Ctrl-C) or 143 (SIGTERM); the unfinished run is not recorded and runs again next time.

``--shard K/N`` runs only the K-th of N interleaved slices of a grid or random sweep, so N runners
(processes, machines) can share one sweep -- and one ``--out`` folder: the slices never run the same
parameters, each appends whole lines to ``results.jsonl``, and the table written at the end covers
every run recorded there so far.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import yaml

from lit_cert.errors import ConfigError
from lit_cert.files import RUN_RESULT, SWEEP_IDENTITY, SWEEP_RECORD
from lit_cert.options import Check, ExistingFile, PositiveFloat, PositiveInt, Seed, WritableDir
from lit_cert.persist import DamagedFile, append_line, atomic_path, damage_notice, read_record, write_record
from lit_cert.runs import read_records

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


class SweepInterrupted(Exception):
    """The runner was told to stop (SIGTERM); carries the signal number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def load_sweep(path: str | Path) -> dict:
    if not Path(path).is_file():
        raise ConfigError(f"sweep file {path} does not exist")
    try:
        cfg = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping with 'method' and 'parameters'")
    for key in ("method", "parameters"):
        if key not in cfg:
            raise ConfigError(f"{path}: a sweep needs '{key}'")
    if cfg["method"] not in ("grid", "random", "bayes"):
        raise ConfigError(f"{path}: method must be grid, random or bayes, got {cfg['method']!r}")
    check_parameters(cfg["parameters"], str(path))
    metric = cfg.get("metric")
    if metric is not None and not (isinstance(metric, dict) and isinstance(metric.get("name"), str)):
        raise ConfigError(f"{path}: metric must be a mapping with a name, e.g. {{name: val/cert_acc, goal: maximize}}, got {metric!r}")
    engine = import_sweeps_engine()
    violations = engine.schema_violations_from_proposed_config(_engine_config(cfg))
    if violations:  # W&B's own schema: what `wandb sweep` would refuse, refused here too
        raise ConfigError(f"{path}: not a valid W&B sweep: {' '.join(str(violations[0]).split())[:300]}")
    return cfg


def check_parameters(parameters, where: str) -> None:
    """Each swept parameter is a mapping: ``values: [...]``, ``value: x`` or a distribution with
    ``min``/``max`` (W&B's schema checks the rest); the common mistakes get a line of their own."""
    if not isinstance(parameters, dict) or not parameters:
        raise ConfigError(f"{where}: parameters must be a non-empty mapping of parameter names to specs, got {parameters!r}")
    for name, spec in parameters.items():
        example = "{values: [...]}, {value: x} or {min: a, max: b}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: parameter {name!r} must be a mapping such as {example}, got {spec!r}")
        if "values" in spec:
            if not isinstance(spec["values"], list) or not spec["values"]:
                raise ConfigError(f"{where}: parameter {name!r}: values must be a non-empty list, got {spec['values']!r}")
        elif "value" not in spec:
            lo, hi = spec.get("min"), spec.get("max")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)) or lo > hi:
                raise ConfigError(f"{where}: parameter {name!r} needs values, value, or numeric min <= max; got {spec!r}")


def run_id(params: dict) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]


def build_command(cfg: dict, params: dict) -> list[str]:
    args = [f"--{k}={v}" for k, v in params.items()]
    out: list[str] = []
    for token in cfg.get("command", DEFAULT_COMMAND):
        if token == "${env}":
            out.append("/usr/bin/env")
        elif token == "${interpreter}":
            out.append(sys.executable)
        elif token == "${program}":
            out.append(cfg["program"])
        elif token == "${args}":
            out.extend(args)
        elif token == "${args_no_hyphens}":
            out.extend(a[2:] for a in args)
        else:
            out.append(str(token))
    return out


def append_record(path: Path, record: dict) -> None:
    """Append one ``sweep-record`` line (:mod:`lit_cert.files`); a damaged last line is closed
    off first, so the new record never joins it."""
    append_line(path, SWEEP_RECORD.kind, record)


#: the parts of a sweep file that decide which runs it makes (the metric is not one: each record
#: keeps everything its run logged, so fixing a misspelt metric name re-runs nothing)
DEFINING_KEYS = ("program", "method", "parameters", "command")


def check_sweep_identity(out: Path, cfg: dict, source: str) -> None:
    """``OUT/sweep.json`` records which sweep the folder's runs belong to; another sweep file
    with other parameters, method, program or command is refused (naming what differs) instead
    of mixing its runs into the same table and plot. A damaged record is rewritten."""
    from lit_cert.certify.shards import settings_differences

    definition = json.loads(json.dumps({k: cfg.get(k) for k in DEFINING_KEYS}, default=str))
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    path = out / "sweep.json"
    try:
        old = read_record(path, SWEEP_IDENTITY.kind)
    except FileNotFoundError:
        old = None
    except DamagedFile as err:
        damage_notice(err, "rewritten from this sweep file", "lit_cert sweep")
        old = None
    if old is not None and old["sha256"] != digest:
        differ = settings_differences(old["definition"], definition)
        raise ConfigError(f"{out} holds the runs of another sweep ({old['sweep']}: {'; '.join(differ)}); running "
                          f"{source} there would mix both in one table and plot: choose another --out")
    if old is None:
        write_record(path, SWEEP_IDENTITY.kind, {"sweep": str(source), "sha256": digest, "definition": definition})


def metric_of(record: dict, name: str | None):
    """The sweep metric of a record, read from everything the run logged (so fixing a misspelt
    metric name in the sweep file needs no re-run)."""
    return record.get("metrics", {}).get(name) if name else None


def check_metric_logged(cfg: dict, records: list[dict]) -> None:
    """Stop when finished runs did not log the sweep's metric (a misspelt name would otherwise
    give "finished" runs with an empty metric column, no plot and no warning)."""
    name = (cfg.get("metric") or {}).get("name")
    done = [r for r in records if r["status"] == "finished"]
    if not name or not done or any(name in r.get("metrics", {}) for r in done):
        return
    keys = sorted({k for r in done for k, v in r.get("metrics", {}).items() if isinstance(v, (int, float))})
    match = difflib.get_close_matches(name, keys, n=1)
    hint = f" Did you mean {match[0]}?" if match else ""
    raise ConfigError(f"sweep metric {name!r} is not logged by the runs ({len(done)} finished); they log: "
                      f"{', '.join(keys)}.{hint} Fix metric.name in the sweep file; finished runs are kept and not re-run")


def run_one(cfg: dict, params: dict, out: Path, timeout: float | None) -> dict:
    rid = run_id(params)
    run_dir = out / "runs" / rid
    run_dir.mkdir(parents=True, exist_ok=True)
    result_file = run_dir / "result.json"
    result_file.unlink(missing_ok=True)
    cmd = build_command(cfg, params)
    # every artefact of the run (run directory, checkpoints, W&B files) goes under --out
    env = {**os.environ, "LIT_CERT_RESULT_FILE": str(result_file), "LIT_CERT_ROOT_DIR": str(run_dir.resolve())}
    start = time.perf_counter()
    with open(run_dir / "log.txt", "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_child(proc)
            code = "timeout"
        except BaseException:  # Ctrl-C or SIGTERM of the runner: the run must not outlive it
            stop_child(proc)
            raise
    try:
        metrics = read_record(result_file, RUN_RESULT.kind)
    except FileNotFoundError:
        metrics = {}
    except DamagedFile as err:  # a run killed while writing it: it counts as failed and runs again
        damage_notice(err, "the run is recorded as failed", "lit_cert sweep")
        metrics = {}
    metric = cfg.get("metric", {}).get("name")
    record = {
        "run_id": rid,
        "params": params,
        "status": "finished" if code == 0 and metrics else "failed",
        "returncode": code,
        "seconds": round(time.perf_counter() - start, 2),
        "metric": metrics.get(metric) if metric else None,  # as logged under the name at run time
        "metrics": metrics,
    }
    if record["status"] == "failed":
        record["log_tail"] = (run_dir / "log.txt").read_text()[-2000:]
    return record


def stop_child(proc: subprocess.Popen, grace: float = 60.0) -> None:
    """SIGTERM to the child's process group (lit_cert saves last.ckpt), SIGKILL after ``grace`` s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _plain(run) -> dict:
    """A proposal of W&B's engine as ``{name: value}`` with plain Python values (numpy scalars
    would make run ids, JSON records and command-line overrides unstable)."""
    return {k: getattr(v["value"], "item", lambda: v["value"])() for k, v in run.config.items()}


def _engine_config(cfg: dict) -> dict:
    """The part of a sweep file W&B's engine reads."""
    return {k: cfg[k] for k in ("method", "metric", "parameters") if k in cfg}


def propose(cfg: dict, records: list[dict], count: int | None, seed: int) -> list[dict] | None:
    """Parameter sets to run next (None: the search is exhausted), all from W&B's own engine:
    ``grid`` -- every combination, in W&B's order (so ``--shard`` can slice it); ``random`` --
    ``count`` draws (default 10) of every W&B distribution, reproducible by ``seed``; ``bayes``
    -- one proposal from the records so far."""
    import random as python_random

    engine = import_sweeps_engine()
    config = _engine_config(cfg)
    if cfg["method"] == "grid":
        from sweeps.grid_search import grid_search_next_runs

        return [_plain(r) for r in grid_search_next_runs([], config, n=10**9) if r is not None]
    if cfg["method"] == "random":
        from sweeps.random_search import random_search_next_runs

        state = python_random.getstate()  # the engine samples with Python's random module
        python_random.seed(seed)
        try:
            return [_plain(r) for r in random_search_next_runs(config, n=count or 10)]
        finally:
            python_random.setstate(state)
    metric = cfg["metric"]["name"]
    runs = [
        engine.SweepRun(
            name=r["run_id"], state=engine.RunState.finished if r["status"] == "finished" else engine.RunState.failed,
            config={k: {"value": v} for k, v in r["params"].items()},
            summary_metrics={metric: metric_of(r, metric)} if metric_of(r, metric) is not None else {},
        )
        for r in records
    ]
    nxt = engine.next_run(config, runs)
    return None if nxt is None else [_plain(nxt)]


def import_sweeps_engine():
    """W&B's sweep engine (the PyPI package ``sweeps``), never a folder named ``sweeps/`` of the
    working directory (this repository has one: its sweep files), which Python would otherwise
    import as an empty namespace package."""
    import importlib

    cwd = {"", ".", os.getcwd()}
    shadow = sys.modules.get("sweeps")
    if shadow is not None and getattr(shadow, "__file__", None) is None:
        del sys.modules["sweeps"]  # the namespace package of a sweeps/ folder
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if p not in cwd and os.path.abspath(p or ".") != os.getcwd()]
    try:
        import warnings

        with warnings.catch_warnings():  # sweeps 0.2 writes pydantic-1 config names: noise under pydantic 2
            warnings.simplefilter("ignore")
            module = importlib.import_module("sweeps")
            importlib.import_module("sweeps.grid_search")
            importlib.import_module("sweeps.random_search")
    except ImportError:
        module = None
    finally:
        sys.path[:] = saved
    if module is None or not hasattr(module, "next_run"):
        raise ConfigError("the sweep runner needs W&B's sweep engine: pip install 'sweeps>=0.2,<0.3' scikit-learn")
    return module


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"--shard takes K/N (e.g. 1/2), got {text!r}") from None
    if not 1 <= k <= n:
        raise ConfigError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def shard_problem(text) -> str | None:
    try:
        parse_shard(text)
    except ConfigError:
        return "must be K/N with 1 <= K <= N (e.g. 1/2)"
    return None


@dataclass
class SweepCommand:
    """What ``lit_cert sweep`` runs.

    Args:
        sweep: a W&B sweep YAML file (positional).
        count: number of runs (random/bayes; grid: at most this many).
        out: output folder (default: sweep_runs/<sweep file name>).
        timeout: seconds per run before it is recorded as failed.
        seed: random-search seed.
        shard: run only the K-th of N interleaved slices of a grid/random sweep (N runners can
            share --out).
    """

    sweep: Annotated[Optional[str], ExistingFile()] = None
    count: Optional[PositiveInt] = None
    out: Annotated[Optional[str], WritableDir()] = None
    timeout: Optional[PositiveFloat] = None
    seed: Seed = 0
    shard: Annotated[Optional[str], Check(shard_problem, "K/N", ("3/2", "x"))] = None


def build_parser():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="lit_cert sweep", description=__doc__, default_env=False, allow_abbrev=False)
    parser.add_argument("sweep", type=str, help="a W&B sweep YAML file")
    parser.add_class_arguments(SweepCommand, nested_key=None, as_group=False, skip={"sweep"})
    return parser


def parse(argv: list[str]) -> SweepCommand:
    from lit_cert.commands.args import build_command
    from lit_cert.commands.parse_errors import parse_one_line

    return build_command(parse_one_line(build_parser(), list(argv)), SweepCommand)


def shard_of(proposals: list[dict], shard: tuple[int, int] | None) -> list[dict]:
    """The K-th of N interleaved slices (every N-th proposal from the K-th)."""
    if shard is None:
        return proposals
    k, n = shard
    return proposals[k - 1::n]


def write_table(cfg: dict, records: list[dict], out: Path) -> None:
    names = list(cfg["parameters"])
    metric = cfg.get("metric", {}).get("name", "metric")
    with atomic_path(out / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run_id", *names, metric, "status", "returncode", "seconds"])
        for r in records:
            w.writerow([r["run_id"], *[r["params"].get(n) for n in names], metric_of(r, metric), r["status"], r["returncode"], r["seconds"]])
    done = [r for r in records if r["status"] == "finished" and metric_of(r, metric) is not None]
    if not done:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # only the parameters the runs varied (a fixed one would be a panel of one x value)
    swept = [n for n in names if len({json.dumps(r["params"].get(n), sort_keys=True, default=str) for r in done}) > 1] or names[:1]
    fig, axes = plt.subplots(1, len(swept), figsize=(4.5 * len(swept), 3.5), squeeze=False)
    for ax, name in zip(axes[0], swept):
        pts = sorted((r["params"][name], metric_of(r, metric)) for r in done if isinstance(r["params"].get(name), (int, float)))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
        ax.set_xlabel(name.split(".")[-1])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(Path(cfg.get("name", "sweep")).name)
    fig.tight_layout()
    with atomic_path(out / f"{metric.replace('/', '_')}.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def main(argv: list[str]) -> list[dict]:
    args = parse(argv)
    args.shard = parse_shard(args.shard) if args.shard is not None else None
    cfg = load_sweep(args.sweep)
    if args.shard is not None and cfg["method"] == "bayes":
        raise ConfigError("--shard splits grid and random sweeps; a bayes sweep proposes one run at a time from all results")
    cfg.setdefault("name", Path(args.sweep).stem)
    from lit_cert.rundir import ensure_writable_dir

    out = ensure_writable_dir(Path(args.out or Path("sweep_runs") / Path(args.sweep).stem), "sweep output folder")
    check_sweep_identity(out, cfg, args.sweep)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        return _run_sweep(cfg, args, out)
    except (KeyboardInterrupt, SweepInterrupted) as err:
        signum = err.signum if isinstance(err, SweepInterrupted) else signal.SIGINT
        done = sum(r["status"] == "finished" for r in read_records(out / "results.jsonl"))
        print(f"lit_cert sweep: interrupted ({signal.Signals(signum).name}); the running run was stopped, {done} finished "
              f"runs are kept in {out / 'results.jsonl'}; rerun the same command to continue", file=sys.stderr)
        raise SystemExit(128 + int(signum)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupted(signum, frame):
    raise SweepInterrupted(signum)


def _run_sweep(cfg: dict, args, out: Path) -> list[dict]:
    log_path = out / "results.jsonl"
    records = read_records(log_path)
    check_metric_logged(cfg, records)
    finished = {r["run_id"] for r in records if r["status"] == "finished"}
    budget = args.count
    started = 0
    while True:
        proposals = propose(cfg, records, args.count, args.seed)
        if proposals is None:
            break
        proposals = shard_of(proposals, args.shard)
        fresh = [pp for pp in proposals if run_id(pp) not in finished]
        if not fresh:
            break
        for params in fresh:
            if budget is not None and started >= budget:
                break
            record = run_one(cfg, params, out, args.timeout)
            started += 1
            records = [r for r in records if r["run_id"] != record["run_id"]] + [record]
            append_record(log_path, record)
            if record["status"] == "finished":
                finished.add(record["run_id"])
            print(f"lit_cert sweep: {record['status']:<8} {params} -> {record['metric']}", file=sys.stderr)
            check_metric_logged(cfg, records)
        if cfg["method"] != "bayes" or (budget is not None and started >= budget):
            break
    # re-read: runners of other shards may have recorded runs in the same folder meanwhile
    latest = {r["run_id"]: r for r in read_records(log_path, warn=False)}
    write_table(cfg, list(latest.values()), out)
    n_ok = sum(r["status"] == "finished" for r in latest.values())
    print(f"lit_cert sweep: {n_ok} finished, {len(latest) - n_ok} failed -> {out / 'results.csv'}")
    return list(latest.values())
