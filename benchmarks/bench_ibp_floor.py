"""Where an IBP training step's time goes, and its floor (issue #37 item 5).

    python benchmarks/bench_ibp_floor.py [--threads 1] [--repeats 5]

Per step of the standard, IBP and IBP with ``bn_statistics: detached`` training (CNN7 of
``bench_train_step.py``: MNIST shape, batch 64, eps 0.1, random init), ``repeats`` steps under
torch's profiler: the total, the time of the dense linear algebra (convolutions forward and
backward, matrix products) and the number of those calls -- what any implementation of the same
gradient must run. IBP with the reference gradient (BatchNorm statistics of the clean pass in
the graph) runs the clean pass, the centre and the radius pass forward *and* backward: three
times the standard step's convolutions.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from lit_cert.data import MNIST
from lit_cert.methods import IBP, Standard
from lit_cert.models import CNN7

LINEAR_ALGEBRA = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::mm", "aten::addmm")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    info = MNIST.info
    x, y = torch.rand(64, *info.in_shape), torch.randint(0, 10, (64,))
    rows = {}
    for name, cls, kw in (("standard", Standard, {}), ("ibp", IBP, {"eps_train": 0.1}),
                          ("ibp_detached", IBP, {"eps_train": 0.1, "bn_statistics": "detached"})):
        torch.manual_seed(1)
        method = cls(network=CNN7(), data_info=info, eps_test=0.1, **kw)
        method.train()
        method.eps, method.kappa, method.beta = 0.1, 0.0, 1.0
        opt = torch.optim.Adam(method.parameters(), lr=1e-5)

        def step():
            loss, _ = method.training_loss(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.repeats):
                step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) / args.repeats / 1e3
        algebra = sum(e.self_cpu_time_total for e in events if e.key in LINEAR_ALGEBRA) / args.repeats / 1e3
        calls = {e.key.replace("aten::", ""): e.count // args.repeats for e in events if e.key in LINEAR_ALGEBRA}
        rows[name] = (total, algebra, calls)
    base = rows["standard"][0]
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} profiled steps each; CNN7, MNIST shape, batch 64, eps 0.1")
    for name, (total, algebra, calls) in rows.items():
        print(f"  {name:<13} {total:7.1f} ms ({total / base:.2f}x)   linear algebra {algebra:7.1f} ms "
              f"({algebra / base:.2f}x standard)   calls {calls}")


if __name__ == "__main__":
    main()
