"""How much multi-neuron constraints tighten the root of branch and bound on hard samples (#38).

For each open sample of a ``hard_samples.py`` JSONL (its ``open`` row), on one thread: the lowest
margin bound at the root as branch and bound computes it (optimised intermediate bounds and
slopes, :class:`~lit_cert.certify.bab.BetaCrown`), and again with joint constraints over groups of
2 and of 3 neurons (:class:`~lit_cert.certify.bab.MultiNeuron`, the BaB defaults otherwise), with
the seconds each takes; and the smallest margin a strong attack finds on that row (``--starts``
random starts x ``--steps`` PGD steps). The true minimum lies between the best bound and the
attack's margin, so ``closed`` = (multi-neuron bound - bound) / (attack - bound) is the share of
that gap the constraints close. One JSON row per sample appended to ``--out``, a summary printed.

    python benchmarks/certification/multi_neuron_roots.py --ckpt RUN/checkpoints/last.ckpt \\
        --open results/.../pgd003_levers.jsonl --out results/.../multi_neuron_roots.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lit_cert.attacks.pgd import pgd_maximize
from lit_cert.bounds import margin_spec
from lit_cert.bounds.box import flat_layers
from lit_cert.certify import BaBConfig
from lit_cert.certify.bab import BetaCrown, MultiNeuron
from lit_cert.certify.cascade import certified_box
from lit_cert.reports import RowCache
from lit_cert.runs import load_run, split_dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--open", required=True, help="a hard_samples.py JSONL")
    p.add_argument("--starts", type=int, default=32)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    head = next(json.loads(line) for line in open(args.open) if '"run": "open"' in line)
    model, dm = load_run(args.ckpt, None)
    net = model.net.eval()
    layers = flat_layers(net)
    ds = split_dataset(dm, "test")
    cache = RowCache(Path(args.out))
    for i in head["open"]:
        if cache.get(f"root/{i}") is not None:
            continue
        x, y = ds[i][0].unsqueeze(0), int(ds[i][1])
        lb, ub = certified_box(x, head["eps"])
        spec = margin_spec(torch.tensor([y]), 10, x.dtype)[0]
        rows = torch.cat([spec[:y], spec[y + 1:]])
        row = {"run": f"root/{i}", "index": i}
        for name, bounds in (("single", BetaCrown(layers, BaBConfig())), ("mn2", MultiNeuron(layers, BaBConfig(multi_neuron=2))),
                             ("mn3", MultiNeuron(layers, BaBConfig(multi_neuron=3)))):
            start = time.perf_counter()
            lower = bounds.root(lb, ub, rows).lower[0]
            row[name] = lower.tolist()
            row[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
        worst = int(torch.tensor(row["single"]).argmin())
        c = rows[worst]
        n = args.starts
        with torch.enable_grad():  # random starts (the attack's own), ``steps`` signed-gradient steps each
            adv = pgd_maximize(lambda z: -(net(z) @ c), lb.expand(n, *lb.shape[1:]), ub.expand(n, *ub.shape[1:]),
                               steps=args.steps)
        with torch.no_grad():
            row["attack"] = float((net(adv) @ c).min())
        row["worst_row"] = worst
        gap = row["attack"] - row["single"][worst]
        for name in ("mn2", "mn3"):
            row[f"{name}_closed"] = (row[name][worst] - row["single"][worst]) / gap if gap > 0 else None
        cache.add(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("single", "mn2", "mn3")} |
                         {f"{k}_worst": row[k][worst] for k in ("single", "mn2", "mn3")}), flush=True)
    rows = [cache.get(f"root/{i}") for i in head["open"]]
    rows = [r for r in rows if r is not None]
    for name in ("mn2", "mn3"):
        closed = [r[f"{name}_closed"] for r in rows if r[f"{name}_closed"] is not None]
        print(f"{name}: gap closed median {statistics.median(closed):.3f} (min {min(closed):.3f}, max {max(closed):.3f}) "
              f"over {len(closed)} samples; root seconds median {statistics.median(r[f'{name}_seconds'] for r in rows):.1f} "
              f"vs {statistics.median(r['single_seconds'] for r in rows):.1f} without")


if __name__ == "__main__":
    main()
