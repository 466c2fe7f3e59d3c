"""The float64 re-check of branch-and-bound certificates: replaying the leaves vs searching again.

    python benchmarks/bench_bab_recheck.py --ckpt RUN/checkpoints/last.ckpt --limit 1000 [--threads 1] [--timeout 30]

A float32 BaB certificate whose margin is near 0 is re-checked in float64 by the cascade. Before,
that re-check ran the whole search again in float64; now it bounds the float32 search's leaves
(the pruned domains, which cover the box) once each and searches further only where a leaf is
not proven (:meth:`lit_cert.certify.bab.BranchAndBound.replay`). For every sample of the first
``--limit`` test images that alpha-CROWN leaves open and the float32 search certifies, both
re-checks run on the same float64 box, in alternating order, and their verdict, domains and
seconds are printed; the summary gives the median and total seconds of each and how often the
verdicts agree. The samples are found as the cascade finds them (PGD, IBP, CROWN, alpha-CROWN).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30.0, help="BaB seconds per sample (each search and re-check)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from lit_cert.bounds import margin_spec
    from lit_cert.bounds.affine import dense_affine_blocks
    from lit_cert.bounds.region import certified_box
    from lit_cert.certify.bab import BranchAndBound
    from lit_cert.certify.cascade import Cascade, CascadeConfig
    from lit_cert.certify.settings import BaBConfig
    from lit_cert.runs import load_run, split_dataset

    model, dm = load_run(args.ckpt, None)
    net, eps = model.net.eval(), model.eps_test
    ds = split_dataset(dm, "test")
    n = min(args.limit, len(ds))
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.tensor([int(ds[i][1]) for i in range(n)])
    start = time.perf_counter()
    verdicts = Cascade(net, CascadeConfig(eps=eps, stages=("pgd", "ibp", "crown", "alpha-crown"))).run(x, y, list(range(n)))
    open_ = [v.index for v in verdicts if v.status == "unknown"]
    print(f"{len(open_)} of {n} test images open after alpha-CROWN ({time.perf_counter() - start:.0f} s)", flush=True)

    cfg = BaBConfig(timeout=args.timeout)
    in_shape = tuple(x.shape[1:])
    blocks32 = dense_affine_blocks(net, in_shape)
    net64 = copy.deepcopy(net).double().eval()
    spec = margin_spec(y, 10)
    rows_ = []
    for i in open_:
        rows = torch.cat([spec[i, : y[i]], spec[i, y[i] + 1 :]])
        lb, ub = certified_box(x[i : i + 1], eps)
        bab = BranchAndBound(net, cfg, dense_blocks=lambda: blocks32)
        bab.record_leaves = True
        first = bab.verify(lb, ub, rows)
        if first.status != "certified":
            continue
        lb64, ub64 = certified_box(x[i : i + 1].double(), eps)
        leaves = first.leaves or {}
        runs = {}
        order = ("replay", "search") if len(rows_) % 2 == 0 else ("search", "replay")  # alternate: noise hits both alike
        for name in order:
            b64 = BranchAndBound(net64, cfg, dense_blocks=lambda: blocks32)
            t = time.perf_counter()
            out = b64.replay(lb64, ub64, rows.double(), leaves, first.phase) if name == "replay" else b64.verify(lb64, ub64, rows.double())
            runs[name] = (out, time.perf_counter() - t)
        row = {"index": i, "phase": first.phase, "float32_seconds": first.seconds, "float32_domains": first.domains,
               "leaves": sum(lv.count for lv in leaves.values()),
               **{f"{k}_{f}": v for k, (o, s) in runs.items() for f, v in (("status", o.status), ("domains", o.domains), ("seconds", s))}}
        rows_.append(row)
        print(row, flush=True)
    if not rows_:
        print("no sample certified by branch and bound")
        return
    agree = sum(r["replay_status"] == r["search_status"] for r in rows_)
    for name in ("search", "replay"):
        secs = [r[f"{name}_seconds"] for r in rows_]
        print(f"float64 {name:6s}: median {statistics.median(secs):.2f} s, total {sum(secs):.1f} s, "
              f"domains {sum(r[f'{name}_domains'] for r in rows_)}, certified {sum(r[f'{name}_status'] == 'certified' for r in rows_)}")
    print(f"{len(rows_)} float32 BaB certificates; verdicts agree on {agree}; float32 searches: "
          f"{sum(r['float32_seconds'] for r in rows_):.1f} s, {sum(r['float32_domains'] for r in rows_)} domains")


if __name__ == "__main__":
    main()
