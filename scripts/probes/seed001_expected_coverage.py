"""Why expected-bound training at a large eps_train does not give robustness at large eps
(results/seed001-fig5/README.md, point 3): on the trained networks, how often the expected lower
bound of the margin y - j is *violated* by a point PGD finds (the bound is not a bound there), and
how often the expected bound claims a sample robust that PGD breaks.

    python scripts/probes/seed001_expected_coverage.py RUN_DIR[...] --limit 200

RUN_DIR is a fit run directory (``runs/lit_cert/<id>``); last checkpoint, first LIMIT test images,
eps 0.1-0.4, 50-step margin PGD.
"""
import argparse
import json

import torch

from lit_cert.attacks import pgd_attack
from lit_cert.bounds import linf_box, margin_spec
from lit_cert.bounds.expected import expected_bounds
from lit_cert.methods import load_method
from lit_cert.runs import load_run, split_dataset

p = argparse.ArgumentParser()
p.add_argument("runs", nargs="+")
p.add_argument("--limit", type=int, default=200)
args = p.parse_args()
torch.manual_seed(0)
for run in args.runs:
    model, dm = load_run(f"{run}/checkpoints/last.ckpt", None)
    masks = load_method(f"{run}/checkpoints/last.ckpt").masks  # the trained method's mask choice
    net = model.net.eval()
    ds = split_dataset(dm, "test")
    x = torch.stack([ds[i][0] for i in range(args.limit)])
    y = torch.tensor([int(ds[i][1]) for i in range(args.limit)])
    keep = net(x).argmax(1) == y
    x, y = x[keep], y[keep]
    spec = margin_spec(y, 10)
    row = {"run": run, "eps_train": model.eps_train, "correct": int(keep.sum())}
    for eps in (0.1, 0.2, 0.3, 0.4):
        lb, ub = linf_box(x, eps)
        with torch.no_grad():
            low = expected_bounds(net, lb, ub, spec, masks, need_upper=False)[0]  # (n, K) margin lower bounds
        adv = pgd_attack(net, x, y, eps, steps=50)
        with torch.no_grad():
            m = torch.einsum("bmk,bk->bm", spec, net(adv))
        other = torch.nn.functional.one_hot(y, 10).bool().logical_not()
        violated = ((m < low - 1e-5) & other).any(1)
        claims = (low.masked_fill(~other, float("inf")).min(1).values > 0)
        broken = (m.masked_fill(~other, float("inf")).min(1).values <= 0)
        row[f"eps {eps:g}"] = {"bound violated": round(violated.float().mean().item(), 3),
                               "claims robust": round(claims.float().mean().item(), 3),
                               "claims robust but PGD breaks": round((claims & broken).float().mean().item(), 3),
                               "PGD-robust": round((~broken).float().mean().item(), 3)}
    print(json.dumps(row))
