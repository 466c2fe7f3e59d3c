"""Branch and bound on the samples the incomplete cascade leaves open (issue #25 item 2): which
lever decides the hard samples of the adversarially-leaning MTL-IBP (alpha 0.01) CONV.

    python benchmarks/certification/hard_samples.py --ckpt RUN/checkpoints/best-epoch019.ckpt \
        --limit 200 --levers default,before --out results/fashion_mnist_conv_eps0.1_20epochs/hard_samples/mtl.jsonl

Runs the cascade up to alpha-CROWN on the first ``--limit`` test images, then gives each open
sample to the ``bab`` stage alone under each lever (:data:`LEVERS`: BaB settings), first with
``--short`` seconds, and the samples still open then with ``--long`` seconds (0: not), at the
run's eps or ``--eps`` (a larger radius makes hard instances to compare the levers on). One JSON row per
(lever, sample, limit), appended as made (a rerun skips finished rows); a summary per lever is
printed: decided at each limit, certified / falsified, seconds per sample, 0 disagreements.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lit_cert.certify import BaBConfig, Cascade, CascadeConfig
from lit_cert.evaluation import batches
from lit_cert.reports import RowCache
from lit_cert.runs import load_run, split_dataset

#: lever name -> BaB settings (everything else the defaults)
LEVERS = {
    "before": {"root_steps": 0, "branching": "babsr", "attack_restarts": 0},  # the search as before #25 item 2
    "optimised-root": {"branching": "babsr", "attack_restarts": 0, "quick_share": 0},  # + optimised intermediate bounds at the root
    "attack": {"branching": "babsr", "quick_share": 0},  # + a targeted PGD per open margin
    "all-levers": {"quick_share": 0},  # + filtered smart branching, every lever from the start
    "default": {},  # today's defaults: the plain search for the first 20% of the limit, then every lever
    "mn2": {"multi_neuron": 2},  # + joint constraints over pairs of unstable ReLUs in the full search (#38)
    "mn3": {"multi_neuron": 3},  # + the same over triples
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--levers", default="default,before")
    p.add_argument("--short", type=float, default=30.0)
    p.add_argument("--long", type=float, default=120.0)
    p.add_argument("--eps", type=float, default=None, help="radius (default: the run's eps_test)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    model, dm = load_run(args.ckpt, None)
    net = model.net.eval()
    ds = split_dataset(dm, "test")
    n = min(args.limit, len(ds))
    x, y = next(batches(ds, n, batch_size=n))
    eps = model.eps_test if args.eps is None else args.eps
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cache = RowCache(out)
    head = cache.get("open")
    if head is None:
        cascade = Cascade(net, CascadeConfig(eps=eps, stages=("pgd", "ibp", "crown-ibp", "crown", "alpha-crown")))
        verdicts = []
        for b in range(0, n, 100):
            verdicts += cascade.run(x[b : b + 100], y[b : b + 100], list(range(b, min(n, b + 100))))
        head = {"run": "open", "ckpt": args.ckpt, "limit": n, "eps": eps,
                "open": [v.index for v in verdicts if v.status == "unknown"],
                "certified": sum(v.status == "certified" for v in verdicts),
                "falsified": sum(v.status == "falsified" for v in verdicts),
                "misclassified": sum(v.status == "misclassified" for v in verdicts)}
        cache.add(head)
    print(json.dumps(head), flush=True)
    for lever in args.levers.split(","):
        settings = LEVERS[lever]
        for limit in (args.short, args.long):
            if limit <= 0:  # --long 0: the short limit only
                continue
            for i in head["open"]:
                key = f"{lever}/{limit:g}/{i}"
                if cache.get(key) is not None:
                    continue
                shorter = cache.get(f"{lever}/{args.short:g}/{i}")
                if limit == args.long and shorter is not None and shorter["status"] != "unknown":
                    continue  # decided within the short limit
                c = Cascade(net, CascadeConfig(eps=eps, stages=("bab",), bab=BaBConfig(timeout=limit, **settings)))
                start = time.perf_counter()
                v = c.run(x[i : i + 1], y[i : i + 1], [i])[0]
                row = {"run": key, "lever": lever, "limit": limit, "index": i, "status": v.status, "margin": v.margin,
                       "reason": v.reason, "seconds": round(time.perf_counter() - start, 2), **v.details.get("bab", {})}
                cache.add(row)
                print(json.dumps(row), flush=True)
    summary(cache, head, args)


def summary(cache: RowCache, head: dict, args) -> None:
    verdicts = {}
    for lever in args.levers.split(","):
        final, seconds = {}, []
        for i in head["open"]:
            short, long_ = cache.get(f"{lever}/{args.short:g}/{i}"), cache.get(f"{lever}/{args.long:g}/{i}")
            if short is None:
                continue
            last = long_ if short["status"] == "unknown" and long_ is not None else short
            final[i] = last["status"]
            seconds.append(short["seconds"] + (long_["seconds"] if long_ is not None and short["status"] == "unknown" else 0))
            if last["status"] != "unknown":
                verdicts.setdefault(i, set()).add(last["status"])
        decided_short = sum(1 for i in final if cache.get(f"{lever}/{args.short:g}/{i}")["status"] != "unknown")
        print(f"{lever}: {len(final)} open samples; decided within {args.short:g} s: {decided_short}; "
              f"within {max(args.short, args.long):g} s: certified {sum(s == 'certified' for s in final.values())}, "
              f"falsified {sum(s == 'falsified' for s in final.values())}, unknown {sum(s == 'unknown' for s in final.values())}; "
              f"seconds (both runs) {sum(seconds):.0f}")
    print("disagreements between levers:", sum(len(s) > 1 for s in verdicts.values()))


if __name__ == "__main__":
    main()
