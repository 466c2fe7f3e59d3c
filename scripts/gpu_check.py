"""The Python checks of ``scripts/gpu_check.sh``: what only a GPU can show.

    python scripts/gpu_check.py bounds  --out DIR   # CPU vs CUDA bounds, TF32 on/off side by side
    python scripts/gpu_check.py steps   --out DIR   # one training step of every method on CUDA
    python scripts/gpu_check.py cascade --out DIR   # the certify cascade incl. BaB on CUDA vs CPU
    python scripts/gpu_check.py all --dry-run       # imports and builds everything, runs nothing

``bounds``: every registered bound method on the same weights (CNN7 with BatchNorm at MNIST
shape, the paradox CONV at Fashion-MNIST shape) on the CPU in float64 (the reference), and on
CUDA three ways: through the registry (the certified path: TF32 and autocast off inside), and
the raw engine with TF32 *on* and *off* -- so the effect of TF32 on an unguarded bound is shown
next to the guard's result. The registry's CUDA bounds must equal the CPU's to 1e-5 relative.

Each check writes a CSV/JSON into ``--out`` and exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lit_cert import methods as M  # noqa: E402
from lit_cert.bounds import BOUND_METHODS, certified_box, compute_bounds, margin_spec  # noqa: E402
from lit_cert.bounds.registry import bound_method  # noqa: E402
from lit_cert.certify import Cascade, CascadeConfig, BaBConfig, MILPSettings  # noqa: E402
from lit_cert.data import MNIST, FashionMNIST, SyntheticImages  # noqa: E402
from lit_cert.models import CNN3, CNN7, CONV, FC  # noqa: E402

#: bound methods checked on each network (full CROWN-style methods only on the smaller CONV)
NETWORKS = {
    "cnn7-mnist": (lambda: CNN7(bn=True).build(MNIST.info), MNIST.info, 16, 0.1, ("ibp", "crown-ibp")),
    "conv-fmnist": (lambda: CONV().build(FashionMNIST.info), FashionMNIST.info, 8, 0.1,
                    tuple(n for n in BOUND_METHODS if n not in ("triangle", "parallelogram"))),
}
STEP_METHODS = [("IBP", {}), ("CROWNIBP", {}), ("CROWNIBP", {"loss_fusion": True}), ("SABR", {"lam": 0.4}),
                ("TAPS", {"ibp_during_ramp": False}), ("STAPS", {"lam": 0.4, "ibp_during_ramp": False}), ("MTLIBP", {}),
                ("PGDTraining", {}), ("RelaxationTraining", {"relaxation": "crown"}), ("RelaxationTraining", {"relaxation": "deepz"}),
                ("RelaxationTraining", {"relaxation": "hbox"}), ("ExpectedTightBounds", {"masks": "ibp"}), ("COLT", {"n_rand_proj": 8}),
                ("Standard", {}), ("LPRelaxationTraining", {"relaxation": "triangle"})]


def set_tf32(on: bool) -> None:
    mode = "tf32" if on else "ieee"
    torch.backends.cuda.matmul.fp32_precision = mode
    torch.backends.cudnn.conv.fp32_precision = mode


def raw_bound(name: str):
    """The engine behind a registry entry, without the registry's precision guard."""
    return bound_method(name).fn


DEVICE = "cuda"  # --device: cpu runs the same logic on a machine without a GPU (to test this script)


def sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def check_bounds(out: Path, dry_run: bool) -> bool:
    rows, ok = [], True
    for label, (factory, info, batch, eps, names) in NETWORKS.items():
        torch.manual_seed(0)
        net = factory().eval()
        x = torch.rand(batch, *info.in_shape)
        y = torch.randint(0, info.num_classes, (batch,))
        if dry_run:
            continue
        lb, ub = certified_box(x, eps)
        spec = margin_spec(y, info.num_classes)
        net64, gpu = copy.deepcopy(net).double(), copy.deepcopy(net).to(DEVICE)
        args = (lb.to(DEVICE), ub.to(DEVICE), spec.to(DEVICE))
        for name in names:
            with torch.no_grad():
                ref = compute_bounds(net64, lb.double(), ub.double(), spec.double(), name)
                cpu32 = compute_bounds(net, lb, ub, spec, name)
                guarded = compute_bounds(gpu, *args, name).cpu()
                set_tf32(True)
                tf32 = raw_bound(name)(gpu, *args, None).cpu()
                set_tf32(False)
                ieee = raw_bound(name)(gpu, *args, None).cpu()
                set_tf32(True)  # PyTorch's default for cuDNN convolutions

            def rel(a):
                return float(((a.double() - ref).abs() / (1 + ref.abs())).max())

            row = {"network": label, "method": name, "cpu_float32_vs_float64": rel(cpu32), "cuda_certified_path": rel(guarded),
                   "cuda_raw_tf32_on": rel(tf32), "cuda_raw_tf32_off": rel(ieee),
                   "cuda_vs_cpu_float32": float(((guarded - cpu32).abs() / (1 + cpu32.abs())).max())}
            row["pass"] = row["cuda_vs_cpu_float32"] <= 1e-5
            ok &= row["pass"]
            rows.append(row)
            print(json.dumps(row))
    if rows:
        with open(out / "bounds_cpu_vs_cuda.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return ok


def check_steps(out: Path, dry_run: bool) -> bool:
    dm = SyntheticImages(in_shape=(1, 28, 28), num_classes=10, train_size=64, val_size=16, test_size=16)
    dm.setup()
    x, y = dm.train_set.images[:32].float() / 255, dm.train_set.labels[:32]
    small = SyntheticImages(in_shape=(1, 4, 4), num_classes=10, train_size=16, val_size=8, test_size=8)
    rows, ok = [], True
    for cls_name, extra in STEP_METHODS:
        cls = getattr(M, cls_name)
        lp = cls is M.LPRelaxationTraining
        net = FC(hidden=[12, 10]) if lp else (FC(hidden=[64, 32], bn=True) if cls in (M.RelaxationTraining, M.ExpectedTightBounds, M.COLT)
                                             else CNN7(width=0.25, bn=True))
        m = cls(network=net, data_info=small.info if lp else dm.info, eps_train=0.1, eps_test=0.1, **extra)
        if dry_run:
            continue
        m = m.to(DEVICE).train()
        m.eps, m.kappa, m.ramp_progress = 0.1, 0.0, 1.0
        xb = (torch.nn.functional.avg_pool2d(x[:8], 7) if lp else x).to(DEVICE)
        yb = (y[:8] if lp else y).to(DEVICE)
        sync()
        if DEVICE.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        loss = m.training_loss(xb, yb)[0]
        loss.backward()
        sync()
        grads_ok = all(p.grad is None or torch.isfinite(p.grad).all() for p in m.parameters())
        row = {"method": cls_name, "options": json.dumps(extra), "loss": float(loss.detach()), "finite": bool(torch.isfinite(loss)) and grads_ok,
               "seconds": time.perf_counter() - start,
               "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if DEVICE.startswith("cuda") else None,
               "loss_device": str(loss.device)}
        ok &= row["finite"] and row["loss_device"].startswith(DEVICE.split(":")[0])
        rows.append(row)
        print(json.dumps(row))
    if rows:
        with open(out / "train_steps_cuda.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return ok


def check_cascade(out: Path, dry_run: bool) -> bool:
    """Train a small CNN briefly (CUDA), then certify 32 samples on CUDA and on the CPU."""
    torch.manual_seed(0)
    dm = SyntheticImages(in_shape=(1, 12, 12), train_size=256, val_size=64, test_size=64, batch_size=64)
    dm.setup()
    m = M.IBP(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.05, eps_test=0.05, lr=3e-3)
    if dry_run:
        return True
    m = m.to(DEVICE).train()
    m.eps, m.kappa = 0.05, 0.5
    opt = m.configure_optimizers()
    x, y = dm.train_set.images.float().to(DEVICE) / 255, dm.train_set.labels.to(DEVICE)
    for i in range(60):
        sel = slice((i * 64) % 256, (i * 64) % 256 + 64)
        opt.zero_grad()
        m.training_loss(x[sel], y[sel])[0].backward()
        opt.step()
    net = m.net.eval()
    xt, yt = dm.test_set.images[:32].float() / 255, dm.test_set.labels[:32]
    # eps 0.12 on a net trained at 0.05: most samples reach branch and bound (CPU: ~46 s for 32)
    cfg = CascadeConfig(eps=0.12, bab=BaBConfig(timeout=10), milp=MILPSettings(timeout=5))
    result = {}
    for device in (DEVICE, "cpu"):
        start = time.perf_counter()
        verdicts = Cascade(net.to(device), cfg).run(xt.to(device), yt.to(device), list(range(32)))
        result[device] = {"seconds": time.perf_counter() - start, "verdicts": [(v.status, v.stage) for v in verdicts]}
    if DEVICE == "cpu":
        result["cuda"] = result["cpu"]
    statuses = {d: [s for s, _ in r["verdicts"]] for d, r in result.items()}
    # a sample decided on one device is never decided the other way on the other
    contradictions = sum({a, b} == {"certified", "falsified"} for a, b in zip(statuses["cuda"], statuses["cpu"]))
    summary = {d: {"seconds": r["seconds"], **{s: statuses[d].count(s) for s in ("certified", "falsified", "misclassified", "unknown")}}
               for d, r in result.items()}
    summary["contradictions"] = contradictions
    summary["same_verdicts"] = sum(a == b for a, b in zip(result["cuda"]["verdicts"], result["cpu"]["verdicts"]))
    (out / "cascade_cuda_vs_cpu.json").write_text(json.dumps({**summary, "detail": result}, indent=1))
    print(json.dumps(summary))
    return contradictions == 0


CHECKS = {"bounds": check_bounds, "steps": check_steps, "cascade": check_cascade}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("check", choices=[*CHECKS, "all"])
    p.add_argument("--out", default="gpu_check")
    p.add_argument("--dry-run", action="store_true", help="build everything, run nothing (no GPU needed)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu, to test this script without a GPU")
    args = p.parse_args()
    global DEVICE
    DEVICE = args.device
    if not args.dry_run and DEVICE.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ok = True
    for name in (CHECKS if args.check == "all" else [args.check]):
        passed = CHECKS[name](out, args.dry_run)
        print(f"gpu_check {name}: {'dry run ok' if args.dry_run else ('PASS' if passed else 'FAIL')}")
        ok &= passed
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
