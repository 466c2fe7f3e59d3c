"""``python -m lit_cert certify``: the cascade over a dataset split, sharded and resumable.

Results go to ``OUT/shards/shard_NNNNN.json`` (one file per ``--shard_size`` samples, written
atomically); an interrupted run resumes by skipping finished shards. ``OUT/settings.json``
records what the shards were computed with -- the checkpoint's *content hash* (SHA-256, not its
path: ``last.ckpt`` is overwritten every epoch), eps, split, stages, time limits, attack and
sample counts -- and a rerun with anything different is refused instead of mixing results.
``OUT/summary.json`` and the printed table summarise natural, PGD and certified accuracy,
decisions and time per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from lit_cert.certify.cascade import STAGES, Cascade, CascadeConfig, Verdict, summarize
from lit_cert.certify.data import SPLITS, load_run, split_dataset
from lit_cert.checkpoints import file_sha256
from lit_cert.commands import CommandParser, add_device_argument, eps_value, nonnegative_int, positive_float, positive_int, resolve_device
from lit_cert.errors import ConfigError
from lit_cert.rundir import ensure_writable_dir


def parse_args(argv):
    p = CommandParser(prog="python -m lit_cert certify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint of a lit_cert run")
    p.add_argument("--config", default=None, help="the run's config.yaml (default: next to checkpoints/)")
    p.add_argument("--eps", type=eps_value, default=None, help="radius in pixel units (default: the model's eps_test)")
    p.add_argument("--split", choices=SPLITS, default="test", help="test, val (held out of training) or train")
    p.add_argument("--limit", type=positive_int, default=None, help="first N samples of the split")
    p.add_argument("--out", default=None, help="output folder (default: <run dir>/certify/<split>_eps<eps>)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--timeout", type=positive_float, default=30.0, help="MILP time limit per sample (seconds)")
    p.add_argument("--bab_timeout", type=positive_float, default=30.0, help="branch-and-bound time limit per sample (seconds)")
    p.add_argument("--bab_max_domains", type=positive_int, default=100_000, help="branch-and-bound domains per sample")
    p.add_argument("--bab_batch", type=positive_int, default=64, help="domains split per branch-and-bound step")
    p.add_argument("--bab_steps", type=nonnegative_int, default=10,
                   help="alpha/beta optimisation steps per branch-and-bound bound (0: plain CROWN)")
    p.add_argument("--bab_intermediate", choices=["root", "recompute"], default="root",
                   help="intermediate bounds of a domain: its parent's (root) or recomputed under its splits")
    p.add_argument("--milp_max_neurons", type=nonnegative_int, default=5000)
    p.add_argument("--pgd_steps", type=positive_int, default=50)
    p.add_argument("--pgd_restarts", type=positive_int, default=3)
    p.add_argument("--alpha_steps", type=nonnegative_int, default=20)
    p.add_argument("--batch_size", type=positive_int, default=100)
    p.add_argument("--memory_gb", type=positive_float, default=8.0,
                   help="memory for the CROWN / alpha-CROWN stages: larger networks are bounded in smaller chunks of samples")
    p.add_argument("--shard_size", type=positive_int, default=100)
    p.add_argument("--data_dir", default=None)
    p.add_argument("--no_progress", action="store_true")
    add_device_argument(p)
    args = p.parse_args(argv)
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    if not stages:
        raise ConfigError("--stages is empty; choose from " + ",".join(STAGES))
    args.stage_list = stages
    return args


def check_settings(out: Path, settings: dict) -> None:
    """Refuse to resume into ``out`` if its shards were computed with other settings."""
    path = out / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if differ:
            details = "; ".join(f"{k}: {old.get(k)!r} there, {settings.get(k)!r} now" for k in differ[:4])
            raise ConfigError(f"{out} holds results of other settings ({details}). Resuming would mix them: "
                              "choose another --out or delete that folder.")
    path.write_text(json.dumps(settings, indent=2))


def certify(args) -> dict:
    device = resolve_device(args.device)
    model, dm = load_run(args.ckpt, args.config, args.data_dir)
    net = model.net.to(device)
    eps = model.eps_test if args.eps is None else args.eps
    dataset = split_dataset(dm, args.split)
    n = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    cfg = CascadeConfig(eps=eps, stages=args.stage_list, pgd_steps=args.pgd_steps, pgd_restarts=args.pgd_restarts,
                        alpha_steps=args.alpha_steps, milp_timeout=args.timeout, milp_max_neurons=args.milp_max_neurons,
                        bab_timeout=args.bab_timeout, bab_max_domains=args.bab_max_domains, bab_batch=args.bab_batch,
                        bab_steps=args.bab_steps, bab_intermediate=args.bab_intermediate, memory_gb=args.memory_gb)
    out = ensure_writable_dir(Path(args.out or Path(args.ckpt).resolve().parent.parent / "certify" / f"{args.split}_eps{eps:g}"),
                              "certification output folder")
    (out / "shards").mkdir(exist_ok=True)
    settings = {"ckpt_sha256": file_sha256(args.ckpt), "split": args.split, "samples": n, "shard_size": args.shard_size,
                **{k: v for k, v in vars(cfg).items()}, "stages": list(cfg.stages)}
    check_settings(out, settings)

    cascade = Cascade(net, cfg)
    results: list[Verdict] = []
    bar = tqdm(total=n, desc="certify", disable=args.no_progress, file=sys.stderr)
    for shard_start in range(0, n, args.shard_size):
        shard_path = out / "shards" / f"shard_{shard_start // args.shard_size:05d}.json"
        stop = min(n, shard_start + args.shard_size)
        if shard_path.is_file():  # finished before an interruption, with the same settings
            results.extend(Verdict.from_json(r) for r in json.loads(shard_path.read_text()))
            bar.update(stop - shard_start)
            continue
        shard: list[Verdict] = []
        for b in range(shard_start, stop, args.batch_size):
            idx = list(range(b, min(stop, b + args.batch_size)))
            x = torch.stack([dataset[i][0] for i in idx]).to(device)
            y = torch.stack([torch.as_tensor(dataset[i][1]) for i in idx]).to(device)
            shard.extend(cascade.run(x, y, idx))
            bar.update(len(idx))
        tmp = shard_path.with_suffix(".tmp")
        tmp.write_text(json.dumps([v.to_json() for v in shard]))
        os.replace(tmp, shard_path)
        results.extend(shard)
    bar.close()
    summary = summarize(results, cfg.stages)
    summary.update(eps=eps, split=args.split, ckpt=str(Path(args.ckpt).resolve()), ckpt_sha256=settings["ckpt_sha256"])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_table(summary, out)
    return summary


def print_table(s: dict, out: Path) -> None:
    print(f"lit_cert certify: {s['samples']} samples of {s['split']}, eps={s['eps']:g} -> {out}")
    print(f"  natural accuracy   {100 * s['natural_accuracy']:6.2f}%")
    print(f"  PGD accuracy       {100 * s['pgd_accuracy']:6.2f}%")
    print(f"  certified accuracy {100 * s['certified_accuracy']:6.2f}%")
    print(f"  misclassified {s['misclassified']}, falsified {s['falsified']}, unknown {s['unknown']}")
    print(f"  {'stage':<12} {'certified':>9} {'ran on':>7} {'seconds':>9} {'samples/s':>10}")
    for stage, secs in s["stage_seconds"].items():
        rate = s["stage_samples_per_second"][stage]
        rate_text = "-" if rate is None else f"{rate:.1f}"
        print(f"  {stage:<12} {str(s['certified'].get(stage, '-')):>9} {s['stage_samples'][stage]:>7} {secs:>9.3f} {rate_text:>10}")


def main(argv: list[str]) -> dict:
    return certify(parse_args(argv))
