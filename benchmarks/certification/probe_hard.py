"""What a sample that branch and bound leaves open looks like (issue #25 item 2): its root bounds
(CROWN, alpha-CROWN with one slope set per row, optimised intermediate bounds), the smallest
margin a strong attack finds per row (64 random starts x 200 PGD steps), and the exact MILP stage
with a long limit. The true minimum margin lies between the best bound and the attack's margin.

    python benchmarks/certification/probe_hard.py --ckpt RUN/checkpoints/last.ckpt --index 554 \
        --milp-timeout 600 --out results/fashion_mnist_conv_eps0.1_20epochs/hard_samples/probe_554.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lit_cert.attacks.pgd import pgd_maximize
from lit_cert.bounds import margin_spec
from lit_cert.bounds.alpha_crown import optimised_box_bounds
from lit_cert.certify import Cascade, CascadeConfig, MILPSettings
from lit_cert.certify.cascade import certified_box
from lit_cert.runs import load_run, split_dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--milp-timeout", type=float, default=600.0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.manual_seed(0)
    model, dm = load_run(args.ckpt, None)
    net = model.net.eval()
    ds = split_dataset(dm, "test")
    x, y = ds[args.index][0].unsqueeze(0), int(ds[args.index][1])
    lb, ub = certified_box(x, model.eps_test)
    spec = margin_spec(torch.tensor([y]), 10, x.dtype)[0]
    rows = torch.cat([spec[:y], spec[y + 1 :]])
    out = {"index": args.index, "label": y, "eps": model.eps_test, "ckpt": args.ckpt, "roots": {}}
    for name, steps, inter in (("crown", 0, False), ("alpha (rows' slopes)", 100, False), ("optimised intermediate", 100, True)):
        t = time.perf_counter()
        box = optimised_box_bounds(net, lb, ub, rows.unsqueeze(0), steps, optimise_intermediate=inter)
        out["roots"][name] = {"row_bounds": [round(v, 4) for v in box.lower[0].tolist()], "seconds": round(time.perf_counter() - t, 2),
                              "unstable": {str(k): int(((l < 0) & (u > 0)).sum()) for k, (l, u) in box.pre_bounds.items()}}
    attack = []
    for r in range(len(rows)):
        n = 64
        blb, bub = lb.expand(n, *lb.shape[1:]), ub.expand(n, *ub.shape[1:])
        with torch.enable_grad():
            xs = pgd_maximize(lambda z: -(net(z) @ rows[r]), blb, bub, steps=200)
        with torch.no_grad():
            attack.append(round(float((net(xs) @ rows[r]).min()), 5))
    out["attack_min_margin"] = attack
    c = Cascade(net, CascadeConfig(eps=model.eps_test, stages=("milp",), milp=MILPSettings(timeout=args.milp_timeout)))
    t = time.perf_counter()
    v = c.run(x, torch.tensor([y]), [args.index])[0]
    out["milp"] = {"status": v.status, "margin": v.margin, "reason": v.reason, "seconds": round(time.perf_counter() - t, 1)}
    print(json.dumps(out, indent=1))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
