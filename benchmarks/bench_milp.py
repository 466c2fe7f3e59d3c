"""The MILP stage on the 784-20-10-5-5 FC (40 ReLUs) of issue #25 item 3: seconds per sample with
lit_cert's HiGHS options (sub-MIP heuristics RINS/RENS off) next to HiGHS's defaults, on the
same samples, bounds and models; the verdicts must agree. A budget check, not a timed test:
it exits 1 if the median sample takes longer than ``--budget`` seconds with our options.

    python benchmarks/bench_milp.py [--samples 20] [--eps 0.1] [--budget 5] [--threads 1]

The network is trained here (standard training, 300 Adam steps on Fashion-MNIST: a net with
many unstable ReLUs at eps 0.1, the hard case for the MILP); the samples are the first correctly
classified test images.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

import lit_cert.certify.milp as milp_module
from lit_cert.bounds import certified_box, margin_spec
from lit_cert.certify.cascade import Cascade, CascadeConfig
from lit_cert.data import FashionMNIST
from lit_cert.methods import Standard
from lit_cert.models import FC


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--budget", type=float, default=5.0, help="median seconds per sample allowed with lit_cert's options")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dm = FashionMNIST(batch_size=128, val_size=5000)
    dm.setup()
    torch.manual_seed(0)
    m = Standard(network=FC(hidden=[20, 10, 5, 5]), data_info=dm.info, eps_train=args.eps, eps_test=args.eps, lr=1e-3).train()
    opt = m.configure_optimizers()
    for i, (x, y) in enumerate(dm.train_dataloader()):
        opt.zero_grad()
        m.training_loss(x, y)[0].backward()
        opt.step()
        if i >= 300:
            break
    net = m.net.eval()
    cascade = Cascade(net, CascadeConfig(eps=args.eps, stages=("milp",)))
    blocks = cascade.blocks((1, 28, 28))
    ours = dict(milp_module.HIGHS_OPTIONS)
    defaults = {"output_flag": False}
    times: dict[str, list[float]] = {"lit_cert options": [], "HiGHS defaults": []}
    verdicts: dict[str, list[str]] = {k: [] for k in times}
    unstable_counts = []
    i = 0
    while len(unstable_counts) < args.samples and i < len(dm.test_set):
        x, y = dm.test_set[i]
        i += 1
        with torch.no_grad():
            if int(net(x[None]).argmax()) != int(y):
                continue
            lb, ub = certified_box(x[None], args.eps)
            pre = cascade.pre_activation_bounds(lb, ub)
        unstable_counts.append(sum(int(((l < 0) & (u > 0)).sum()) for l, u in pre))
        rows = np.delete(margin_spec(torch.tensor([int(y)]), 10)[0].double().numpy(), int(y), axis=0)
        for name, options in (("lit_cert options", ours), ("HiGHS defaults", defaults)):  # interleaved per sample
            milp_module.HIGHS_OPTIONS = options
            start = time.perf_counter()
            out = milp_module.verify_milp(blocks, lb[0].flatten().double().numpy(), ub[0].flatten().double().numpy(), pre, rows,
                                          args.timeout)
            times[name].append(time.perf_counter() - start)
            verdicts[name].append(out.status)
    milp_module.HIGHS_OPTIONS = ours
    print(f"torch {torch.__version__}, {args.threads} thread(s); {len(unstable_counts)} correctly classified test images, "
          f"eps {args.eps}, unstable ReLUs per sample (of 40): median {statistics.median(unstable_counts)}, max {max(unstable_counts)}")
    for name, t in times.items():
        counts = {s: verdicts[name].count(s) for s in sorted(set(verdicts[name]))}
        print(f"  {name:<17} median {statistics.median(t):6.2f} s  mean {statistics.mean(t):6.2f} s  max {max(t):6.2f} s  {counts}")
    agree = sum(a == b or "unknown" in (a, b) for a, b in zip(*verdicts.values()))
    print(f"  verdicts agree on {agree}/{len(unstable_counts)} (an unknown counts as no disagreement)")
    median = statistics.median(times["lit_cert options"])
    ok = median <= args.budget and agree == len(unstable_counts)
    print(f"  budget: median {median:.2f} s {'<=' if median <= args.budget else '>'} {args.budget:g} s -> {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
