"""``lit_cert reproduce``: a paper's table or figure with one command, the paper's numbers beside
ours and a verdict per claim.

    lit_cert reproduce --list                                   # every experiment, its cost per scale
    lit_cert reproduce seed002-table14 --scale cpu --seeds 3    # train, measure, write the report
    lit_cert reproduce seed002-table14 --dry-run                # the plan and its estimated cost
    lit_cert reproduce seed002-table14 --render_only            # the report from the records alone

An experiment is a spec of :mod:`lit_cert.reproduce.catalog`; each run (a row of the table and a
seed) is trained with ``fit``, measured through ``analyze``/``certify`` and recorded in
``OUT/records.jsonl``; the report (``table.md``, ``table.csv``, ``figure.png``) is written from the
records. Rerunning the same command continues: recorded runs are kept, an interrupted training
continues from its last checkpoint. ``--shard K/N`` splits the runs over N workers that share OUT.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

from lit_cert.errors import ConfigError
from lit_cert.options import Check, OneOf, PositiveFloat, PositiveInt, WritableDir


def _ids():
    from lit_cert.reproduce.catalog import EXPERIMENTS

    return list(EXPERIMENTS)


def _shard_problem(text) -> Optional[str]:
    from lit_cert.commands.sweep import shard_problem

    return shard_problem(text)


@dataclass
class ReproduceCommand:
    """What ``lit_cert reproduce`` runs.

    Args:
        experiment: the experiment's id (positional; ``--list`` shows them).
        list: list every experiment with its claims' paper and its cost at each scale, and stop.
        scale: ``cpu`` (settings a 2-core machine runs in hours) or ``paper`` (the paper's own
            dataset, network and epochs).
        seeds: training seeds 0..N-1 per row (default: the scale's).
        out: folder of the records and the report (default: reproduce/<experiment>).
        work: cache folder of the runs' checkpoints and logs (default:
            $XDG_CACHE_HOME/lit_cert/reproduce).
        shard: run only the K-th of N interleaved slices of the plan (N workers can share --out).
        dry_run: print the plan (each run: recorded or to run, and its command) and its
            estimated cost; run nothing.
        render_only: write the report from the recorded runs; run nothing.
        timeout: seconds per training before the run is recorded as failed.
    """

    experiment: Annotated[Optional[str], OneOf(_ids)] = None
    list: bool = False
    scale: Literal["cpu", "paper"] = "cpu"
    seeds: Optional[PositiveInt] = None
    out: Annotated[Optional[str], WritableDir()] = None
    work: Annotated[Optional[str], WritableDir()] = None
    shard: Annotated[Optional[str], Check(_shard_problem, "K/N", ("3/2", "x"))] = None
    dry_run: bool = False
    render_only: bool = False
    timeout: Optional[PositiveFloat] = None

    def __post_init__(self):
        if not self.list and not self.experiment:
            raise ConfigError("reproduce needs an experiment id (lit_cert reproduce --list shows them)")
        if self.dry_run and self.render_only:
            raise ConfigError("--dry_run and --render_only: choose one")


def build_parser():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="lit_cert reproduce", description=__doc__, default_env=False, allow_abbrev=False)
    parser.add_argument("experiment", type=Optional[str], nargs="?", default=None,
                        help="the experiment's id (--list shows them)")
    parser.add_class_arguments(ReproduceCommand, nested_key=None, as_group=False, skip={"experiment"})
    return parser


FLAGS = ("--list", "--dry_run", "--render_only")


def as_flags(argv: list[str]) -> list[str]:
    """``--list``, ``--dry-run``/``--dry_run`` and ``--render_only`` work as plain switches too
    (``--list`` means ``--list=true``); an explicit value is kept."""
    out = []
    for i, a in enumerate(argv):
        a = "--dry_run" if a == "--dry-run" else a
        following = argv[i + 1].lower() if i + 1 < len(argv) else ""
        out.append(f"{a}=true" if a in FLAGS and following not in ("true", "false") else a)
    return out


def parse(argv: list[str]) -> ReproduceCommand:
    from lit_cert.commands.args import build_command
    from lit_cert.commands.parse_errors import parse_one_line

    return build_command(parse_one_line(build_parser(), as_flags(list(argv))), ReproduceCommand)


def default_work() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lit_cert" / "reproduce"


def listing() -> str:
    """Every experiment: id, paper and target, and per scale rows x seeds and the estimated hours."""
    from lit_cert.reproduce.catalog import EXPERIMENTS
    from lit_cert.reproduce.render import verdict_counts
    from lit_cert.reproduce.runner import current_records, minutes_per_run, read_records
    from lit_cert.reproduce.spec import repo_root

    lines = []
    for exp in EXPERIMENTS.values():
        lines.append(f"{exp.id:26s} {exp.paper} {exp.target}: {exp.title}")
        results = repo_root() / "results" / exp.id
        records = read_records(results) if results.is_dir() else []
        for scale in exp.scales.values():
            minutes, basis = minutes_per_run(scale, records)
            runs = len(scale.rows) * scale.seeds
            lines.append(f"{'':26s}   {scale.name:5s}: {len(scale.rows)} rows x {scale.seeds} seeds = {runs} runs, "
                         f"~{runs * minutes / 60:.1f} h on {scale.hardware} ({minutes:.1f} min per run, {basis})")
            if current_records(exp, scale, records):
                lines.append(f"{'':26s}          results/{exp.id}: {verdict_counts(exp, scale, records)}")
    return "\n".join(lines)


def reproduce(cmd: ReproduceCommand) -> dict:
    from lit_cert.commands.sweep import parse_shard
    from lit_cert.reproduce.catalog import EXPERIMENTS
    from lit_cert.reproduce.render import write_report
    from lit_cert.reproduce.runner import (analysis_command, current_records, execute, minutes_per_run, plan, read_records,
                                           shard_of, shown)
    from lit_cert.reproduce.spec import repo_root
    from lit_cert.rundir import ensure_writable_dir

    if cmd.list:
        print(listing())
        return {}
    exp = EXPERIMENTS[cmd.experiment]
    scale = exp.scale(cmd.scale)
    missing = [r.config for r in scale.rows if r.config and not (repo_root() / r.config).is_file()]
    if missing:
        raise ConfigError(f"{exp.id} trains with the repository's configs ({missing[0]} not found under {repo_root()}): "
                          "run lit_cert reproduce in a clone of lit_cert (git clone, then bash scripts/install.sh)")
    seeds = cmd.seeds or scale.seeds
    out = ensure_writable_dir(Path(cmd.out or Path("reproduce") / exp.id), "reproduce output folder")
    work = Path(cmd.work) if cmd.work else default_work()
    records = read_records(out)
    planned = shard_of(plan(scale, seeds), parse_shard(cmd.shard) if cmd.shard else None)
    found = current_records(exp, scale, records)
    todo = [p for p in planned if (p.row.name, p.seed) not in found]
    minutes, basis = minutes_per_run(scale, records)
    command = f"lit_cert reproduce {exp.id} --scale {scale.name} --seeds {seeds}" + (f" --out {cmd.out}" if cmd.out else "")
    if cmd.dry_run:
        for p in planned:
            state = "recorded" if (p.row.name, p.seed) not in {(t.row.name, t.seed) for t in todo} else "to run"
            what = shown([sys.executable, "-m", "lit_cert", "fit", "--config", p.row.config, *p.row.args,
                          f"--seed_everything={p.seed}"]) if p.row.config else analysis_command(p.row, p.seed)
            print(f"[{state:8s}] {p.row.name!r} seed {p.seed}: {what}")
        print(f"lit_cert reproduce: {exp.id} at scale {scale.name}: {len(planned)} runs planned, {len(planned) - len(todo)} "
              f"recorded, {len(todo)} to run: ~{len(todo) * minutes / 60:.1f} h on {scale.hardware} "
              f"({minutes:.1f} min per run, {basis})")
        return {"planned": len(planned), "todo": len(todo)}
    failed = 0
    if todo and not cmd.render_only:
        work = ensure_writable_dir(work, "reproduce work folder")
        previous = signal.signal(signal.SIGTERM, _interrupted)
        try:
            failed = execute(exp, scale, todo, out, work, cmd.timeout)
        except KeyboardInterrupt:
            done = len(current_records(exp, scale, read_records(out)))
            print(f"lit_cert reproduce: interrupted; {done} finished runs are kept in {out / 'records.jsonl'}; rerun the "
                  "same command to continue (an interrupted training continues from its last checkpoint)", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        records = read_records(out)
    written = write_report(exp, scale, records, out, command)
    done = len(current_records(exp, scale, records))
    print(f"lit_cert reproduce: {exp.id} ({scale.name}): {done} finished runs, {failed} failed this time -> "
          + ", ".join(str(p) for p in written))
    if failed:
        raise SystemExit(1)
    return {"finished": done, "written": [str(p) for p in written]}


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str]) -> dict:
    return reproduce(parse(argv))
