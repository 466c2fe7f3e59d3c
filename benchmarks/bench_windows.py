"""Full CROWN on a CNN7: rows walked on their receptive fields (windows) vs on the whole map.

    python benchmarks/bench_windows.py --ckpt RUN/checkpoints/best.ckpt [--samples 3] [--memory_gb 4]
    python benchmarks/bench_windows.py [--width 1] [--eps 0.002] [--samples 2]     # a random CNN7

The cascade's ``crown`` stage bounds every IBP-unstable neuron of a sample by back-substitution;
on a CNN7 that was minutes per sample on one CPU thread (results/lit_cert-cnn7-certify),
because each row of a convolution's neuron was carried on the whole feature map.
:mod:`lit_cert.bounds.windows` carries it on its receptive field instead. Per sample -- with a
checkpoint, the first test images that are classified correctly and that IBP does not certify
(the ones the cascade sends on towards CROWN); else random inputs of a random CNN7 (IBP
initialisation) -- this runs the CROWN bound of the margins (intermediate bounds included,
``coefficient_memory(memory_gb)`` as ``certify`` sets it, no gradient, one thread) with
windows and without, alternating which goes first, and prints both times, their ratio, the
rows walked per ReLU layer (its IBP-unstable neurons; the first layer's bounds are exact
without a walk), the neurons still unstable after CROWN, and the largest difference of the margin bounds.
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def crown(net, lb, ub, spec, windowed: bool, memory_gb: float):
    from lit_cert.bounds.backsub import LinearBounds, coefficient_memory

    with torch.no_grad(), coefficient_memory(memory_gb):
        engine = LinearBounds(net, lb, ub, "crown", "same")
        engine.windowed = windowed
        start = time.perf_counter()
        low = engine.output_bounds(spec, need_upper=False)[0]
        return low, time.perf_counter() - start, engine


def inputs(args):
    """(network, eps, [(x, y)] of the samples to bound)."""
    from lit_cert.bounds import margin_spec  # noqa: F401 (import check before the long work)

    if args.ckpt:
        from lit_cert.bounds.box import interval_bounds
        from lit_cert.bounds.region import certified_box
        from lit_cert.runs import load_run, split_dataset

        model, dm = load_run(args.ckpt, None)
        net, eps = model.net.eval(), model.eps_test
        ds = split_dataset(dm, "test")
        picked = []
        for i in range(len(ds)):
            x, y = ds[i][0].unsqueeze(0), int(ds[i][1])
            with torch.no_grad():
                if int(net(x).argmax()) != y:
                    continue
                lb, ub = certified_box(x, eps)
                low, up = interval_bounds(net, lb, ub)
            others = torch.cat([up[0, :y], up[0, y + 1 :]])
            if bool((low[0, y] > others).all()):  # IBP certifies it: the cascade stops there
                continue
            picked.append((i, x, y))
            if len(picked) == args.samples:
                break
        return net, eps, picked
    from lit_cert.data import FashionMNIST
    from lit_cert.models.architectures import CNN7

    torch.manual_seed(0)
    net = CNN7(width=args.width).build(FashionMNIST.info).eval()
    return net, args.eps, [(i, torch.rand(1, 1, 28, 28), i % 10) for i in range(args.samples)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", default=None)
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--width", type=float, default=1.0, help="random CNN7 only")
    p.add_argument("--eps", type=float, default=0.002, help="random CNN7 only (a checkpoint uses its eps_test)")
    p.add_argument("--memory_gb", type=float, default=4.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    from lit_cert.bounds import margin_spec
    from lit_cert.bounds.region import certified_box

    net, eps, samples = inputs(args)
    print(f"{'checkpoint ' + args.ckpt if args.ckpt else f'random CNN7 width {args.width}'}, eps {eps}, "
          f"memory_gb {args.memory_gb}; uptime: {os.popen('uptime').read().strip()}", flush=True)
    ratios = []
    for n, (i, x, y) in enumerate(samples):
        lb, ub = certified_box(x, eps)
        spec = margin_spec(torch.tensor([y]), 10)
        runs = {}
        for windowed in ((True, False) if n % 2 == 0 else (False, True)):  # alternate: machine noise hits both alike
            runs[windowed] = crown(net, lb, ub, spec, windowed, args.memory_gb)
        (low_w, t_w, engine), (low_d, t_d, _) = runs[True], runs[False]
        walked = [int(((l < 0) & (u > 0)).sum()) for _, (l, u) in sorted(engine._reference.items())]
        unstable = [int(((l < 0) & (u > 0)).sum()) for _, (l, u) in sorted(engine.pre_bounds.items())]
        ratios.append(t_d / t_w)
        print(f"sample {i}: windows {t_w:.1f} s, whole map {t_d:.1f} s, ratio {t_d / t_w:.1f}x; rows walked (IBP-unstable) "
              f"per ReLU layer {walked}, unstable after CROWN {unstable}; max |bound difference| "
              f"{float((low_w - low_d).abs().max()):.2e}", flush=True)
    if ratios:
        print(f"ratio whole map / windows: median {sorted(ratios)[len(ratios) // 2]:.1f}x over {len(ratios)} samples")


if __name__ == "__main__":
    main()
