"""``python -m lit_cert analyze <analysis> ...``: the seeds' analyses, CSV + PNG.

Each analysis is one module of :mod:`lit_cert.commands.analyses` that owns its settings (a
dataclass whose options carry their constraints) and its report; this module only builds the
parser from them, checks the settings (:func:`lit_cert.options.validate`) before any work, and
runs the analysis inside :func:`lit_cert.persist.staged`: its files in ``--out`` (default
``analysis/``) are replaced only when it finished, so a failure never damages earlier results.
``--config FILE.yaml`` and ``--print_config`` work; list values are given as ``--ckpt A B`` or
``--ckpt [A,B]``; a run's ``config.yaml`` is ``--run_config``. The computations live in
:mod:`lit_cert.analysis` and :mod:`lit_cert.evaluation`."""

from __future__ import annotations

import csv
from dataclasses import fields
from pathlib import Path

from lit_cert.commands.analyses import registry
from lit_cert.rundir import ensure_writable_dir

#: name -> (settings class, what runs it)
ANALYSES = {name: (module.Settings, module.run) for name, module in registry().items()}


def _list_fields(cls) -> set[str]:
    return {f.name for f in fields(cls) if "list" in str(f.type)}


def translate_lists(name: str, argv: list[str]) -> list[str]:
    """``--ckpt A B`` (space-separated values, as earlier versions took them) -> ``--ckpt=[A,B]``,
    a bare switch ``--train`` -> ``--train=true``, ``--config RUN.yaml`` for a run's config ->
    ``--run_config``."""
    from lit_cert.commands.certify import translate_legacy

    cls = ANALYSES[name][0] if name in ANALYSES else None
    lists = _list_fields(cls) if cls else set()
    flags = {f.name for f in fields(cls) if f.type in (bool, "bool")} if cls else set()
    out, i = [], 0
    while i < len(argv):
        key = argv[i][2:] if argv[i].startswith("--") and "=" not in argv[i] else None
        if key in flags and (i + 1 == len(argv) or argv[i + 1].startswith("--")):
            out.append(f"--{key}=true")  # a bare switch, as earlier versions took it
        elif key in lists:
            values = []
            while i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                values.append(argv[i + 1])
                i += 1
            out.append(f"--{key}=[{','.join(values)}]" if values and not values[0].startswith("[") else f"--{key}={''.join(values)}")
        else:
            out.append(argv[i])
        i += 1
    return translate_legacy(out, certify_flags=False)


def build_parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    p = ArgumentParser(prog="lit_cert analyze", description=__doc__, default_env=False, allow_abbrev=False)
    sub = p.add_subcommands(dest="name", required=True)
    for name, (cls, _) in ANALYSES.items():
        s = ArgumentParser(description=(cls.__doc__ or "").strip(), default_env=False, allow_abbrev=False)
        s.add_argument("--config", action=ActionConfigFile, help="a YAML file of these settings (see --print_config)")
        s.add_class_arguments(cls, nested_key=None, as_group=False)
        sub.add_subcommand(name, s, help=(cls.__doc__ or "").strip().split("\n")[0])
    return p


def parse(argv: list[str]):
    from lit_cert.commands.args import build_command
    from lit_cert.commands.parse_errors import parse_one_line

    name = argv[0] if argv else None
    argv = [name, *translate_lists(name, argv[1:])] if name else argv
    cfg = parse_one_line(build_parser(), argv, list(ANALYSES))
    return cfg.name, build_command(cfg[cfg.name], ANALYSES[cfg.name][0])


def main(argv: list[str]):
    from lit_cert.persist import staged

    name, args = parse(argv)
    args.out = Path(args.out)
    ensure_writable_dir(args.out, "analysis output folder")
    with staged():  # every file of the analysis appears only when all of it succeeded
        rows = ANALYSES[name][1](args)
    print(f"lit_cert analyze {name}: wrote {args.out / (name + '.csv')}")
    if args.wandb or active_wandb_run() is not None:
        log_to_wandb(name, args.out)
    return rows


def active_wandb_run():
    """The W&B run already active in this process (e.g. a sweep agent or a notebook calling
    ``main``), else None; never imports wandb just to find out."""
    import sys

    wandb = sys.modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


def log_to_wandb(name: str, out: Path) -> None:
    """Log the CSV(s) as tables and the PNG(s) as images: into the active W&B run if there is
    one, else into a new run of its own (offline unless logged in)."""
    import wandb

    from lit_cert.loggers import resolve_wandb_mode

    run = active_wandb_run()
    own = run is None
    if own:
        run = wandb.init(project="lit_cert", job_type="analysis", name=f"analyze-{name}", dir=str(out), mode=resolve_wandb_mode())
    for path in sorted(out.glob(f"{name}*.csv")):  # e.g. box-reconstruction.csv and ...-trained.csv
        with open(path) as f:
            table = list(csv.reader(f))
        run.log({f"{path.stem}/table": wandb.Table(columns=table[0], data=table[1:])})
        if path.with_suffix(".png").is_file():
            run.log({f"{path.stem}/plot": wandb.Image(str(path.with_suffix(".png")))})
    if own:
        run.finish()
