"""Running a reproduction: the plan (rows x seeds), one training and its measures per run, and one
record per finished run in ``OUT/records.jsonl`` (file kind ``reproduce-run``).

Resumable by construction: a run whose record is there (same fingerprint: config text, arguments,
measures and seed, :func:`lit_cert.reproduce.spec.fingerprint`) is not run again; a record with
another fingerprint is *stale* (its config changed) and the run is made again. A training
interrupted half-way continues from its ``last.ckpt`` (``fit --ckpt_path``). ``--shard K/N``
takes every N-th planned run, so workers sharing ``OUT`` split one experiment.

Checkpoints and logs are a cache (``--work``, default ``$XDG_CACHE_HOME/lit_cert/reproduce``);
``OUT`` holds the records and the report only.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from lit_cert.reproduce.spec import Experiment, Row, Scale, fingerprint, repo_root


@dataclass(frozen=True)
class Planned:
    """One run of the plan: a row and a seed, and the fingerprint its record must carry."""

    row: Row
    seed: int
    fingerprint: str


def plan(scale: Scale, seeds: int) -> list[Planned]:
    return [Planned(row, seed, fingerprint(row, scale, seed)) for row in scale.rows for seed in range(seeds)]


def shard_of(planned: list[Planned], shard: Optional[tuple[int, int]]) -> list[Planned]:
    if shard is None:
        return planned
    k, n = shard
    return [p for i, p in enumerate(planned) if i % n == k - 1]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("_") or "row"


def read_records(out: Path) -> list[dict]:
    from lit_cert.files import REPRODUCE_RUN
    from lit_cert.persist import read_lines

    def warn(number, err):
        print(f"lit_cert reproduce: warning: {out / 'records.jsonl'} line {number} is not a valid record "
              f"({err.reason}); it is ignored and that run runs again", file=sys.stderr)

    return read_lines(out / "records.jsonl", REPRODUCE_RUN.kind, warn)


def current_records(exp: Experiment, scale: Scale, records: list[dict]) -> dict[tuple[str, int], dict]:
    """The latest finished record of each (row, seed) of this scale whose fingerprint is the
    row's today (stale records are left out)."""
    found = {}
    for r in records:
        if r["experiment"] != exp.id or r["scale"] != scale.name or r["status"] != "finished":
            continue
        try:
            row = scale.row(r["row"])
        except KeyError:
            continue
        if r["fingerprint"] == fingerprint(row, scale, r["seed"]):
            found[(r["row"], r["seed"])] = r
    return found


def stale_records(exp: Experiment, scale: Scale, records: list[dict]) -> list[dict]:
    keep = current_records(exp, scale, records)
    return [r for r in records if r["experiment"] == exp.id and r["scale"] == scale.name and r["status"] == "finished"
            and (r["row"], r["seed"]) not in keep]


def minutes_per_run(scale: Scale, records: list[dict]) -> tuple[float, str]:
    """The measured mean minutes of the finished records with timings, or the spec's figure."""
    times = [(r["seconds"].get("train", 0) + r["seconds"].get("measure", 0)) / 60 for r in records
             if r["scale"] == scale.name and r["status"] == "finished" and r["seconds"]]
    if times:
        return sum(times) / len(times), f"measured: mean of {len(times)} recorded runs"
    return scale.minutes_per_run, scale.cost_source


def commit() -> Optional[str]:
    """The source commit (``-dirty`` with uncommitted changes), or None outside a git checkout."""
    try:
        root = repo_root()
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def fit_command(row: Row, seed: int, resume: Optional[Path] = None) -> list[str]:
    cmd = [sys.executable, "-m", "lit_cert", "fit", "--config", str(repo_root() / row.config), *row.args,
           f"--seed_everything={seed}", "--trainer.enable_progress_bar=false"]
    if resume is not None:
        cmd.append(f"--ckpt_path={resume}")
    return cmd


def shown(cmd: list[str]) -> str:
    """A command as the user would type it (``lit_cert`` for the interpreter, configs relative)."""
    root = str(repo_root()) + os.sep
    words = ["lit_cert" if i == 0 else w.replace(root, "") for i, w in enumerate(cmd) if not (i in (1, 2) and w in ("-m", "lit_cert"))]
    return " ".join(shlex.quote(w) for w in words)


def analysis_command(row: Row, seed: int) -> str:
    return shown([sys.executable, "-m", "lit_cert", "analyze", *row.analysis,
                  *(("--seed", str(seed * row.seed_stride)) if row.seed_option else ())])


def interrupted_checkpoint(folder: Path) -> Optional[Path]:
    found = sorted(folder.glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def train(row: Row, seed: int, folder: Path, timeout: Optional[float]) -> tuple[Path, float, str]:
    """Train one run in a child process (its files under ``folder``); ``(run dir, seconds, command)``.
    A failed training raises :class:`RunFailed` with the log's tail."""
    from lit_cert.commands.sweep import stop_child
    from lit_cert.files import RUN_RESULT
    from lit_cert.persist import DamagedFile, read_record

    folder.mkdir(parents=True, exist_ok=True)
    result = folder / "result.json"
    done = _finished_training(result)
    if done is not None:  # trained before, its measurement failed or was interrupted: not trained again
        return done, 0.0, shown(fit_command(row, seed))
    resume = interrupted_checkpoint(folder)
    result.unlink(missing_ok=True)
    cmd = fit_command(row, seed, resume)
    env = {**os.environ, "LIT_CERT_RESULT_FILE": str(result), "LIT_CERT_ROOT_DIR": str(folder.resolve())}
    env.setdefault("WANDB_MODE", "offline")
    start = time.perf_counter()
    with open(folder / "log.txt", "a") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_child(proc)
            code = "timeout"
        except BaseException:  # Ctrl-C: the child saves last.ckpt; the next run continues from it
            stop_child(proc)
            raise
    seconds = time.perf_counter() - start
    try:
        metrics = read_record(result, RUN_RESULT.kind)
    except (FileNotFoundError, DamagedFile):
        metrics = {}
    if code != 0 or "run_dir" not in metrics:
        tail = (folder / "log.txt").read_text()[-1500:]
        raise RunFailed(f"training exited with {code}; log {folder / 'log.txt'}", tail)
    return Path(metrics["run_dir"]), seconds, shown(fit_command(row, seed))


def _finished_training(result: Path) -> Optional[Path]:
    from lit_cert.files import RUN_RESULT
    from lit_cert.persist import DamagedFile, read_record

    try:
        run_dir = Path(read_record(result, RUN_RESULT.kind)["run_dir"])
    except (FileNotFoundError, DamagedFile, KeyError):
        return None
    return run_dir if (run_dir / "checkpoints" / "last.ckpt").is_file() else None


def run_folder(work: Path, exp: Experiment, scale: Scale, p: Planned) -> Path:
    """The run's cache folder; a folder left by another fingerprint (the config changed) is
    emptied first, so its checkpoint is neither resumed nor measured."""
    import shutil

    folder = work / exp.id / scale.name / slug(p.row.name) / f"seed{p.seed}"
    stamp = folder / "fingerprint"
    if folder.is_dir() and (not stamp.is_file() or stamp.read_text().strip() != p.fingerprint):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(p.fingerprint + "\n")
    return folder


class RunFailed(Exception):
    def __init__(self, message: str, tail: str = ""):
        super().__init__(message)
        self.tail = tail


def measure(scale: Scale, row: Row, ckpt: Optional[str], where: Path, seed: int = 0) -> tuple[dict, float]:
    from lit_cert.reproduce.measures import MEASURES, RunContext

    where.mkdir(parents=True, exist_ok=True)
    analysis = row.analysis + (("--seed", str(seed * row.seed_stride)) if row.seed_option else ())
    context = RunContext(ckpt, analysis, where, {**row.values, "row": row.name})
    start = time.perf_counter()
    metrics = {}
    for m in scale.measures:
        metrics.update(MEASURES[m.kind](context, dict(m.options)))
    return metrics, time.perf_counter() - start


def execute(exp: Experiment, scale: Scale, todo: list[Planned], out: Path, work: Path, timeout: Optional[float]) -> int:
    """Run and record every planned run; the number that failed."""
    from lit_cert.errors import UserError
    from lit_cert.files import REPRODUCE_RUN
    from lit_cert.persist import append_line

    failed = 0
    source = commit()
    for i, p in enumerate(todo, 1):
        print(f"lit_cert reproduce: [{i}/{len(todo)}] {exp.id} {scale.name} {p.row.name!r} seed {p.seed}", flush=True)
        record = {"experiment": exp.id, "scale": scale.name, "row": p.row.name, "seed": p.seed,
                  "fingerprint": p.fingerprint, "commit": source, "run_dir": None, "source": None}
        try:
            if p.row.config:
                folder = run_folder(work, exp, scale, p)
                run_dir, train_seconds, command = train(p.row, p.seed, folder, timeout)
                metrics, measure_seconds = measure(scale, p.row, str(run_dir / "checkpoints" / "last.ckpt"), folder)
                record["run_dir"] = str(run_dir)
            else:
                command = analysis_command(p.row, p.seed)
                train_seconds = 0.0
                metrics, measure_seconds = measure(scale, p.row, None, out / "analyses" / slug(p.row.name) / f"seed{p.seed}",
                                                   p.seed)
            record.update(status="finished", metrics=metrics, command=command,
                          seconds={"train": round(train_seconds, 1), "measure": round(measure_seconds, 1)})
        except (RunFailed, UserError) as err:
            failed += 1
            print(f"lit_cert reproduce: run failed: {err}\n{getattr(err, 'tail', '')}".rstrip(), file=sys.stderr)
            record.update(status="failed", metrics={}, seconds={}, command=shown(fit_command(p.row, p.seed)))
        append_line(out / "records.jsonl", REPRODUCE_RUN.kind, record)
    return failed
