"""IBP training step with the folded walk against the plain layer-by-layer walk (issue #37 item 5).

    python benchmarks/bench_ibp_walk.py [--threads 1] [--repeats 7]

The walk of :func:`lit_cert.bounds.box.interval_bounds` folds each BatchNorm into the Linear/Conv2d
before it and the halves of ``c = (u + l) / 2, r = (u - l) / 2`` into the next weight, and passes
reshapes in either form. ``plain`` is the walk before that -- every layer by its own rule,
converting to (centre, radius) before each affine layer -- patched in for its steps. Both steps,
and a standard step, are interleaved in one process on the CNN7 of ``bench_train_step.py`` (MNIST
shape, batch 64, eps 0.1, random init); the loss and the gradients of both are compared first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_interleaved  # noqa: E402

import lit_cert.bounds.box as box  # noqa: E402
from lit_cert.data import MNIST  # noqa: E402
from lit_cert.methods import IBP, Standard  # noqa: E402
from lit_cert.models import CNN7  # noqa: E402

FOLDED = box._walk


def plain_walk(state, body, trace, rules):
    """Every layer by its own rule (Flatten as a monotone map), as before the folding."""
    plain_rules = {**rules, torch.nn.Flatten: box._monotone, torch.nn.Identity: box._monotone}
    for layer in body:
        state.record(trace, layer)
        state.apply(layer, plain_rules)


def step_of(method, x, y, walk):
    opt = torch.optim.Adam(method.parameters(), lr=1e-5)

    def step():
        box._walk = walk
        try:
            loss, _ = method.training_loss(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            box._walk = FOLDED

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    info = MNIST.info
    x, y = torch.rand(64, *info.in_shape), torch.randint(0, 10, (64,))

    def build(cls, **kw):
        torch.manual_seed(1)
        m = cls(network=CNN7(), data_info=info, eps_test=0.1, **kw)
        m.train()
        m.eps, m.kappa, m.beta = 0.1, 0.0, 1.0
        return m

    # the same loss and gradients first (float64 copies of the same weights)
    grads = {}
    for name, walk in (("folded", FOLDED), ("plain", plain_walk)):
        m = build(IBP, eps_train=0.1).double()
        box._walk = walk
        loss, _ = m.training_loss(x.double(), y)
        box._walk = FOLDED
        loss.backward()
        grads[name] = (float(loss), torch.cat([q.grad.flatten() for q in m.parameters() if q.grad is not None]))
    diff = (grads["folded"][1] - grads["plain"][1]).abs().max() / grads["plain"][1].abs().max()
    print(f"float64: loss {grads['folded'][0]:.12g} vs {grads['plain'][0]:.12g}; gradients differ by {float(diff):.1e} (relative to the largest)")
    fns = {"standard": step_of(build(Standard), x, y, FOLDED),
           "ibp_folded": step_of(build(IBP, eps_train=0.1), x, y, FOLDED),
           "ibp_plain": step_of(build(IBP, eps_train=0.1), x, y, plain_walk)}
    t = time_interleaved(fns, repeats=args.repeats, warmup=1)
    base = t["standard"]
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} interleaved steps; "
          f"CNN7, MNIST shape, batch 64, eps 0.1: standard step {1e3 * base:.1f} ms")
    for name in ("ibp_folded", "ibp_plain"):
        print(f"  {name:<12} {1e3 * t[name]:8.1f} ms   {t[name] / base:5.2f} x standard")


if __name__ == "__main__":
    main()
