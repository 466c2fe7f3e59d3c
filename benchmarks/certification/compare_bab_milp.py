"""Branch and bound vs MILP on the samples the incomplete cascade leaves open (issue #14).

    python benchmarks/certification/compare_bab_milp.py --ckpt RUN/checkpoints/best-epoch019.ckpt --limit 500 \
        --timeout 30 --out results/fashion_mnist_conv_eps0.1_20epochs/bab_vs_milp/bab_vs_milp_<name>.json

Runs the cascade up to alpha-CROWN (PGD, IBP, CROWN-IBP, CROWN, alpha-CROWN) on the first
``--limit`` test samples, then gives every sample still open to *both* complete verifiers with
the same per-sample time limit: the MILP stage and the branch-and-bound stage. Writes one
record per open sample (both verdicts, margins, times, BaB domains/depth) and a summary:
decided by each, certified vs falsified, disagreements (must be 0), seconds per sample.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lit_cert.certify import BaBConfig, Cascade, CascadeConfig, MILPSettings
from lit_cert.runs import load_run, split_dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--limit", type=int, default=500)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    model, dm = load_run(args.ckpt, None)
    net = model.net.eval()
    ds = split_dataset(dm, "test")
    n = min(args.limit, len(ds))
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.tensor([int(ds[i][1]) for i in range(n)])
    eps = model.eps_test
    incomplete = ("pgd", "ibp", "crown-ibp", "crown", "alpha-crown")
    cascade = Cascade(net, CascadeConfig(eps=eps, stages=incomplete))
    verdicts = []
    for b in range(0, n, 100):
        verdicts += cascade.run(x[b : b + 100], y[b : b + 100], list(range(b, min(n, b + 100))))
    open_idx = [v.index for v in verdicts if v.status == "unknown"]
    records = []
    for i in open_idx:
        row = {"index": i, "label": int(y[i])}
        for stage in ("milp", "bab"):
            c = Cascade(net, CascadeConfig(eps=eps, stages=(stage,), bab=BaBConfig(timeout=args.timeout), milp=MILPSettings(timeout=args.timeout)))
            start = time.perf_counter()
            v = c.run(x[i : i + 1], y[i : i + 1], [i])[0]
            row[stage] = {"status": v.status, "margin": v.margin, "reason": v.reason,
                          "seconds": round(time.perf_counter() - start, 3), **v.details.get("bab", {})}
        records.append(row)
        print(json.dumps(row), flush=True)

    def decided(stage):
        return [r for r in records if r[stage]["status"] in ("certified", "falsified")]

    both = [r for r in records if r in decided("milp") and r in decided("bab")]
    summary = {
        "ckpt": str(Path(args.ckpt).resolve()), "eps": eps, "samples": n, "timeout": args.timeout,
        "cascade_before": {s: sum(v.status == s for v in verdicts) for s in ("certified", "falsified", "misclassified", "unknown")},
        "open": len(records),
        **{f"{stage}_{k}": sum(r[stage]["status"] == k for r in records) for stage in ("milp", "bab") for k in ("certified", "falsified", "unknown")},
        "disagreements": sum(r["milp"]["status"] != r["bab"]["status"] for r in both),
        "milp_seconds_per_sample": sum(r["milp"]["seconds"] for r in records) / max(len(records), 1),
        "bab_seconds_per_sample": sum(r["bab"]["seconds"] for r in records) / max(len(records), 1),
        "bab_decided_of_milp_unknown": sum(r["bab"]["status"] != "unknown" for r in records if r["milp"]["status"] == "unknown"),
        "milp_unknown": sum(r["milp"]["status"] == "unknown" for r in records),
    }
    Path(args.out).write_text(json.dumps({"summary": summary, "records": records}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
