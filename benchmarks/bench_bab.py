"""Branch-and-bound throughput: domains bounded per second, same process.

    python benchmarks/bench_bab.py [--threads 2] [--domains 512] [--ckpt CONV_OR_CNN3.ckpt]

For each network, samples whose alpha-CROWN bound does not prove robustness are searched by
:class:`lit_cert.certify.bab.BranchAndBound` with a fixed domain budget (no time limit) and the
domains per second are printed, next to the rate of a plain CROWN bound of the same network on
a batch of the same size with the intermediate bounds known (the floor of one branch-and-bound
step with ``intermediate: root``: the step adds ``steps`` optimisation passes, the
branching scores and the candidate checks).

Networks: the paradox CONV and CNN3 at Fashion-MNIST shape, random initialisation (eps chosen so
that CROWN fails on most inputs), and optionally a trained checkpoint on real test images.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_interleaved  # noqa: E402

from lit_cert.attacks import pgd_attack  # noqa: E402
from lit_cert.bounds import linf_box, margin_spec  # noqa: E402
from lit_cert.bounds.backsub import LinearBounds  # noqa: E402
from lit_cert.bounds.alpha_crown import alpha_crown_margins  # noqa: E402
from lit_cert.certify.bab import BranchAndBound  # noqa: E402
from lit_cert.certify.settings import BaBConfig  # noqa: E402
from lit_cert.data import FashionMNIST  # noqa: E402
from lit_cert.models import CNN3, CONV  # noqa: E402


def open_samples(net, x, y, eps, want):
    """Indices of the samples the cascade before branch and bound leaves open: classified right,
    not falsified by PGD (50 steps, 3 restarts), not certified by alpha-CROWN."""
    lb, ub = linf_box(x, eps)
    spec = margin_spec(y, 10)
    with torch.no_grad():
        ok = net(x).argmax(1) == y
        ok &= net(pgd_attack(net, x, y, eps, steps=50, restarts=3, loss="margin")).argmax(1) == y
    bounds = alpha_crown_margins(net, lb, ub, spec, steps=20)
    others = torch.ones_like(bounds, dtype=torch.bool)
    others[torch.arange(len(y)), y] = False
    proven = torch.where(others, bounds > 0, torch.ones_like(others)).all(1)
    return [i for i in range(len(y)) if ok[i] and not proven[i]][:want]


def run(label, net, x, y, eps, domains, batch, samples, timeout):
    net = net.eval()
    idx = open_samples(net, x, y, eps, samples)
    if not idx:
        print(f"\n{label}, eps {eps:g}: every sample certified or misclassified; nothing to branch")
        return
    lb, ub = linf_box(x, eps)
    spec = margin_spec(y, 10)
    bab = BranchAndBound(net, BaBConfig(timeout=timeout, max_domains=domains, batch=batch))
    total_domains, total_time, verdicts = 0, 0.0, []
    for i in idx:
        rows = torch.cat([spec[i, : y[i]], spec[i, y[i] + 1 :]])
        start = time.perf_counter()
        out = bab.verify(lb[i : i + 1], ub[i : i + 1], rows)
        total_time += time.perf_counter() - start
        total_domains += out.domains
        verdicts.append(out.status)
    d = 2 * batch
    blb, bub = lb[idx[0] : idx[0] + 1].expand(d, *lb.shape[1:]), ub[idx[0] : idx[0] + 1].expand(d, *ub.shape[1:])
    row = spec[idx[0] : idx[0] + 1, :1].expand(d, 1, 10)
    with torch.no_grad():
        root = LinearBounds(net, blb[:1], bub[:1], "crown", "same")
        root.output_bounds(row[:1], need_upper=False)
        known = {i: (l.expand(d, *l.shape[1:]), u.expand(d, *u.shape[1:])) for i, (l, u) in root.pre_bounds.items()}

        def output_row():  # what one domain costs at least: one row walked with known intermediate bounds
            LinearBounds(net, blb, bub, "crown", "same", prior_bounds=known, reuse_prior_upto=10**9).output_bounds(row, need_upper=False)

        crown = time_interleaved({"crown": output_row}, repeats=3, warmup=1)["crown"]
    rate = total_domains / total_time
    print(f"\n{label}, eps {eps:g}, {len(idx)} open samples, limits {domains} domains / {timeout:g} s each, batch {batch}")
    print(f"  branch and bound       {rate:9.1f} domains/s   ({total_domains} domains in {total_time:.1f} s; "
          f"verdicts {', '.join(f'{v} {verdicts.count(v)}' for v in sorted(set(verdicts)))})")
    print(f"  CROWN row, batch {d:<4}  {d / crown:9.1f} domains/s   (one output row, known intermediate bounds, no optimisation)")
    print(f"  ratio                  {d / crown / rate:9.2f} x slower than the floor")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--domains", type=int, default=100_000, help="domain budget per sample")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per sample")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--ckpt", default=None, help="a trained lit_cert checkpoint (Fashion-MNIST) to add")
    p.add_argument("--eps", type=float, default=None, help="eps for the checkpoint (default: its eps_test)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    info = FashionMNIST.info
    print(f"torch {torch.__version__}, {args.threads} threads")
    x = torch.rand(64, *info.in_shape)
    for label, arch, eps in (("CONV, random init", CONV(), 0.008), ("CNN3, random init", CNN3(), 0.004)):
        net = arch.build(info)
        with torch.no_grad():
            y = net(x).argmax(1)  # the network's own predictions: every sample "correct"
        run(label, net, x, y, eps, args.domains, args.batch, args.samples, args.timeout)
    if args.ckpt:
        from lit_cert.runs import load_run, split_dataset

        model, dm = load_run(args.ckpt, None)
        ds = split_dataset(dm, "test")
        xs = torch.stack([ds[i][0] for i in range(200)])
        ys = torch.tensor([int(ds[i][1]) for i in range(200)])
        run(f"trained {args.ckpt}", model.net, xs, ys, model.eps_test if args.eps is None else args.eps, args.domains,
            args.batch, args.samples, args.timeout)


if __name__ == "__main__":
    main()
