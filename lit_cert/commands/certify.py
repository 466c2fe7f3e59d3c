"""``python -m lit_cert certify``: the cascade over a dataset split, sharded and resumable.

Configured like ``fit``: one nested dataclass (:class:`CertifyCommand` -- the run to certify,
where, and the cascade's :class:`~lit_cert.certify.CascadeSettings`) parsed by jsonargparse, so
``--config certify.yaml``, ``--print_config`` and nested keys (``--bab.timeout 60``,
``--milp.timeout 10``, ``--stages [pgd,ibp,bab]``) work, and the settings that guard a resume
are the dataclass itself. The flags of earlier versions are still accepted and translated
(``--timeout`` -> ``--milp.timeout``, ``--bab_steps`` -> ``--bab.steps``, ``--stages a,b``, a
run's ``config.yaml`` given as ``--config`` -> ``--run_config``; see :data:`LEGACY_FLAGS`).

Results go to ``OUT/shards/shard_NNNNN.json`` (:mod:`lit_cert.certify.shards`); an interrupted
run resumes by skipping finished shards. ``OUT/settings.json`` records what the shards were
computed with -- the checkpoint's *content hash* (SHA-256, not its path: ``last.ckpt`` is
overwritten every epoch), eps, split, sample count and every cascade setting -- and a rerun
with anything different is refused instead of mixing results. ``OUT/summary.json`` and the
printed table summarise natural, PGD and certified accuracy, decisions and time per stage.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal, Optional

import yaml

from lit_cert.certify.settings import STAGE_NAMES, CascadeConfig, CascadeSettings
from lit_cert.commands.args import DeviceName, WorkerSpec, parse_settings, settings_parser
from lit_cert.errors import ConfigError, check
from lit_cert.options import ExistingDir, ExistingFile, PositiveInt, Radius, WritableDir
from typing import Annotated

#: flags of earlier versions -> today's nested keys
LEGACY_FLAGS = {
    "--timeout": "--milp.timeout", "--milp_max_neurons": "--milp.max_neurons",
    "--bab_timeout": "--bab.timeout", "--bab_max_domains": "--bab.max_domains", "--bab_batch": "--bab.batch",
    "--bab_steps": "--bab.steps", "--bab_intermediate": "--bab.intermediate",
    "--pgd_steps": "--pgd.steps", "--pgd_restarts": "--pgd.restarts", "--alpha_steps": "--alpha.steps",
}


@dataclass
class CertifyCommand(CascadeSettings):
    """What ``lit_cert certify`` runs: the cascade's settings plus the run and the samples.

    Args:
        ckpt: checkpoint of a lit_cert run (required).
        run_config: the run's ``config.yaml`` (default: next to its ``checkpoints/`` folder).
        out: output folder (default: ``<run dir>/certify/<split>_eps<eps>``).
        eps: radius in pixel units (default: the model's ``eps_test``).
        split: ``test``, ``val`` (held out of training) or ``train``.
        limit: the first N samples of the split (default: all).
        shard_size: samples per result file (a shard: the unit of resuming and of workers).
        batch_size: samples per cascade call.
        data_dir: where the run's dataset is (default: the run config's).
        device: ``auto`` (the GPU when present; a torchrun worker takes ``cuda:LOCAL_RANK``),
            ``cpu``, ``cuda`` or ``cuda:N``.
        progress: show a progress bar (it moves per sample and names the stage running).
        worker: ``K/N`` -- this process computes the K-th of N interleaved slices of the shards
            into the same ``out`` (:mod:`lit_cert.certify.shards`); ``auto`` reads the rank and
            world size of torchrun or a SLURM array (with its step), else 1/1.
        allow_other_data: certify on data other than the checkpoint was trained on (another
            dataset or split contents): refused unless set.
    """

    ckpt: Annotated[Optional[str], ExistingFile()] = None
    run_config: Annotated[Optional[str], ExistingFile()] = None
    out: Annotated[Optional[str], WritableDir()] = None
    eps: Optional[Radius] = None
    split: Literal["test", "val", "train"] = "test"
    limit: Optional[PositiveInt] = None
    shard_size: PositiveInt = 100
    batch_size: PositiveInt = 100
    data_dir: Annotated[Optional[str], ExistingDir()] = None
    device: DeviceName = "auto"
    progress: bool = True
    worker: WorkerSpec = "auto"
    allow_other_data: bool = False

    def __post_init__(self):
        super().__post_init__()
        check(bool(self.ckpt), "certify needs --ckpt CHECKPOINT (a checkpoint of a lit_cert run)")

    def cascade(self, eps: float) -> CascadeConfig:
        return CascadeConfig(eps=eps, **{f.name: getattr(self, f.name) for f in fields(CascadeSettings)})


def _looks_like_run_config(path: str) -> bool:
    try:
        text = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(text, dict) and "model" in text and "data" in text


def translate_legacy(argv: list[str], certify_flags: bool = True) -> list[str]:
    """Earlier flags (:data:`LEGACY_FLAGS`, ``--stages a,b``, ``--no_progress``, a run's
    ``config.yaml`` as ``--config``) in today's form.

    ``certify_flags=False`` translates only the run config: the flags of :data:`LEGACY_FLAGS` and
    ``--stages`` are the cascade's, and another command (``export --timeout``, ``analyze``) may
    have a flag of the same name that means something else."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if not certify_flags and name != "--config":
            out.append(arg)
        elif name in LEGACY_FLAGS:
            out.append(LEGACY_FLAGS[name] + (eq + value if eq else ""))
        elif name == "--no_progress":
            out.append("--progress=false")
        elif name == "--stages":
            raw = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if not eq:
                i += 1
            if raw.startswith("["):
                out.append(f"--stages={raw}")
            else:
                stages = [s.strip() for s in raw.split(",") if s.strip()]
                if not stages:
                    raise ConfigError("--stages is empty; choose from " + ",".join(STAGE_NAMES))
                out.append(f"--stages=[{','.join(stages)}]")
        elif name == "--config":
            path = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            if not eq:
                i += 1
            out += ["--run_config" if _looks_like_run_config(path) else "--config", path]
        else:
            out.append(arg)
        i += 1
    return out


def build_parser():
    return settings_parser("certify", CertifyCommand, __doc__)


def parse(argv: list[str]) -> CertifyCommand:
    return parse_settings(build_parser(), translate_legacy(list(argv)), CertifyCommand)


def certify(cmd: CertifyCommand) -> dict:
    """Run the command: one line and exit status 130 on Ctrl-C (finished shards are kept)."""
    try:
        return _certify(cmd)
    except KeyboardInterrupt:
        print("lit_cert certify: interrupted (Ctrl-C); finished shards are kept in the output folder: rerun the same "
              "command to continue", file=sys.stderr)
        raise SystemExit(130) from None


def _certify(cmd: CertifyCommand) -> dict:
    from lit_cert.certify.cascade import Cascade, summarize
    import os

    from lit_cert.certify.shards import certify_dataset, check_settings, parse_worker
    from lit_cert.checkpoints import file_sha256
    from lit_cert.commands.args import resolve_device
    from lit_cert.files import CERTIFY_SUMMARY
    from lit_cert.persist import write_record
    from lit_cert.rundir import ensure_writable_dir
    from lit_cert.runs import load_run, split_dataset

    worker = parse_worker(cmd.worker)
    device_name = cmd.device
    if device_name == "auto" and worker[1] > 1 and os.environ.get("LOCAL_RANK"):
        import torch

        if torch.cuda.is_available():  # one GPU per torchrun worker
            device_name = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    device = resolve_device(device_name)
    model, dm = load_run(cmd.ckpt, cmd.run_config, cmd.data_dir, allow_other_data=cmd.allow_other_data, split=cmd.split,
                       report=False)
    net = model.net.to(device)
    eps = model.eps_test if cmd.eps is None else cmd.eps
    cfg = cmd.cascade(eps)
    dataset = split_dataset(dm, cmd.split)
    n = len(dataset) if cmd.limit is None else min(cmd.limit, len(dataset))
    out = ensure_writable_dir(Path(cmd.out or Path(cmd.ckpt).resolve().parent.parent / "certify" / f"{cmd.split}_eps{eps:g}"),
                              "certification output folder")
    identity = dm.identity(splits=(cmd.split,))
    data = {"dataset": identity["dataset"], "name": identity["name"], "transforms": identity["transforms"],
            "split": cmd.split, **identity["splits"][cmd.split]}
    settings = {"ckpt_sha256": file_sha256(cmd.ckpt), "split": cmd.split, "samples": n, "shard_size": cmd.shard_size,
                "cascade": json.loads(json.dumps(asdict(cfg))), "data": data}
    fingerprint = check_settings(out, settings)
    dm.report()  # after every check: a refused run prints only its error
    results, missing = certify_dataset(Cascade(net, cfg), dataset, out, list(range(n)), cmd.shard_size, cmd.batch_size, device,
                                       cmd.progress, worker, fingerprint)
    summary = summarize(results, cfg.stages)
    total = -(-n // cmd.shard_size)
    summary.update(eps=eps, split=cmd.split, ckpt=str(Path(cmd.ckpt).resolve()), ckpt_sha256=settings["ckpt_sha256"],
                   data=data, shards={"done": total - missing, "total": total}, complete=missing == 0,
                   bound_methods=stage_bound_methods(cfg))
    write_record(out / "summary.json", CERTIFY_SUMMARY.kind, summary)  # atomic: workers finishing together never tear it
    print_table(summary, out)
    if missing:
        print(f"lit_cert certify: worker {worker[0]}/{worker[1]} done; {missing} of {total} shards are still missing "
              "(other workers); the summary covers the shards present and is rewritten by each finishing worker")
    return summary


def stage_bound_methods(cfg: CascadeConfig) -> dict[str, str]:
    """What each bound stage computes, as the registry prints it (``crown(sparse=True)``): the
    variant is part of the result."""
    from lit_cert.certify.cascade import stage_bound_spec

    return {s: str(spec) for s in cfg.stages if (spec := stage_bound_spec(s, cfg)) is not None}


def print_table(s: dict, out: Path) -> None:
    print(f"lit_cert certify: {s['samples']} samples of {s['split']}, eps={s['eps']:g} -> {out}")
    print(f"  natural accuracy   {100 * s['natural_accuracy']:6.2f}%")
    if s.get("pgd_accuracy") is not None:  # only when the attack ran
        print(f"  PGD accuracy       {100 * s['pgd_accuracy']:6.2f}%")
    print(f"  certified accuracy {100 * s['certified_accuracy']:6.2f}%")
    falsified = s["falsified"]
    by = ", ".join(f"{n} by {stage}" for stage, n in falsified.items() if n)
    print(f"  misclassified {s['misclassified']}, falsified {sum(falsified.values())}{f' ({by})' if by else ''}, "
          f"unknown {s['unknown']}")
    if s.get("float64_rechecks"):
        print(f"  float64 re-checks of near-zero certificates: {s['float64_rechecks']} ({s['float64_rechecks_failed']} did not hold)")
    print(f"  {'stage':<12} {'certified':>9} {'ran on':>7} {'seconds':>9} {'samples/s':>10}")
    for stage, secs in s["stage_seconds"].items():
        rate = s["stage_samples_per_second"][stage]
        rate_text = "-" if rate is None else f"{rate:.1f}"
        method = s.get("bound_methods", {}).get(stage, "")
        print(f"  {stage:<12} {str(s['certified'].get(stage, '-')):>9} {s['stage_samples'][stage]:>7} {secs:>9.3f} {rate_text:>10}"
              f"  {method}".rstrip())


def main(argv: list[str]) -> dict:
    return certify(parse(argv))
