"""Device- and dtype-clean code, checked without a GPU.

Every tensor a bound engine, method, metric, attack or certify stage creates must follow its
inputs' device and dtype; one created on the default device (CPU) or in the default dtype breaks
-- or silently slows, or changes precision -- on a GPU. Two checks find such places on a CPU:

* a function mode that records every tensor factory (``zeros``, ``eye``, ``arange``, ...) called
  from lit_cert code *during a computation* without an explicit ``device`` (module construction
  is exempt: ``.to(device)`` moves parameters, buffers and metric states);
* the same computations with the default device set to ``meta`` and the default dtype to float64:
  a tensor that relies on the defaults then fails to mix with the real ones, or turns the result
  into float64.

The same workload then runs on every available device (``cuda`` is skipped without a GPU and
runs on one, compared with the CPU).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import pytest
import torch
from torch.overrides import TorchFunctionMode

import lit_cert
from lit_cert import methods as M
from lit_cert.attacks import pgd_attack
from lit_cert.bounds import BOUND_METHODS, IntervalTrace, certified_box, compute_bounds, interval_bounds, linf_box, margin_spec
from lit_cert.certify import Cascade, CascadeConfig, BaBConfig, MILPSettings
from lit_cert.data import SyntheticImages
from lit_cert.metrics import CRCurve, PGDAccuracy, PGDRobustness, PropagationTightness, ReLUStability
from lit_cert.models import CNN3, FC

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]
FACTORIES = {torch.zeros, torch.ones, torch.full, torch.empty, torch.eye, torch.arange, torch.linspace, torch.logspace,
             torch.tensor, torch.as_tensor, torch.rand, torch.randn, torch.randint, torch.randperm}
ROOT = os.path.dirname(lit_cert.__file__)
#: methods and their options for one training step (every IBP-based path, plus the others)
METHODS = [(M.IBP, {}), (M.CROWNIBP, {}), (M.CROWNIBP, {"loss_fusion": True}), (M.SABR, {}), (M.TAPS, {"ibp_during_ramp": False}),
           (M.STAPS, {"ibp_during_ramp": False}), (M.MTLIBP, {}), (M.PGDTraining, {}), (M.RelaxationTraining, {"relaxation": "crown"}),
           (M.RelaxationTraining, {"relaxation": "deepz", "sparse_intermediate": True}), (M.ExpectedTightBounds, {}),
           (M.COLT, {"n_rand_proj": 4}), (M.Standard, {})]


class DefaultDeviceFactories(TorchFunctionMode):
    """Records (file, line, factory) of factories called from lit_cert code without ``device``."""

    def __init__(self):
        super().__init__()
        self.calls: dict[tuple[str, int, str], int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            frame = sys._getframe(1)
            while frame is not None and not frame.f_code.co_filename.startswith(ROOT):
                frame = frame.f_back
            if frame is not None and frame.f_code.co_name != "__init__":
                key = (os.path.relpath(frame.f_code.co_filename, ROOT), frame.f_lineno, func.__name__)
                self.calls[key] = self.calls.get(key, 0) + 1
        return func(*args, **kwargs)


@contextmanager
def foreign_defaults():
    """Default device ``meta`` and default dtype float64 while real tensors are elsewhere/float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.device("meta"):
            yield
    finally:
        torch.set_default_dtype(previous)


def build(device):
    """Everything constructed up front (construction may use the defaults), on ``device``."""
    dm = SyntheticImages(train_size=32, val_size=16, test_size=16, batch_size=16)
    dm.setup()
    x = (dm.train_set.images[:8].float() / 255).to(device)
    y = dm.train_set.labels[:8].to(device)
    torch.manual_seed(0)
    methods = []
    for cls, extra in METHODS:
        net = FC(hidden=[12, 12], bn=True) if cls in (M.RelaxationTraining, M.ExpectedTightBounds, M.COLT) else CNN3(width=0.5, bn=True)
        methods.append(cls(network=net, data_info=dm.info, eps_train=0.1, eps_test=0.1, shi_reg=0.5, **extra).to(device))
    plain = CNN3(width=0.5).build(dm.info).to(device).eval()
    tiny = FC(hidden=[10, 8]).build(SyntheticImages(in_shape=(1, 3, 3)).info).to(device).eval()
    metrics = [m.to(device) for m in (CRCurve([0.01, 0.05], "crown-ibp"), PGDAccuracy(0.05, steps=3, restarts=1),
                                      PGDRobustness(0.05, steps=3, restarts=1), PropagationTightness(0.05), ReLUStability())]
    return dict(x=x, y=y, methods=methods, plain=plain, tiny=tiny, metrics=metrics)


def workload(parts) -> dict[str, torch.Tensor]:
    """Bounds of every registered method, a training step and an evaluation step of every
    method, every metric, PGD and the whole cascade; returns the results by name."""
    x, y, plain = parts["x"], parts["y"], parts["plain"]
    out = {}
    lb, ub = certified_box(x, 0.05)
    spec = margin_spec(y, 4)
    for name in BOUND_METHODS:
        net, l, u, s = (parts["tiny"], lb[:2, :, :3, :3], ub[:2, :, :3, :3], spec[:2]) if name in ("triangle", "parallelogram") \
            else (plain, lb, ub, spec)
        out[f"bound/{name}"] = compute_bounds(net, l, u, s, name)
    for i, m in enumerate(parts["methods"]):
        m.train()
        m.eps, m.kappa, m.ramp_progress, m.beta = 0.05, 0.2, 0.5, 0.5
        torch.manual_seed(1)
        loss = m.training_loss(x, y)[0]
        loss.backward()
        out[f"train/{i}/{type(m).__name__}"] = loss.detach()
        m.eval()
        with torch.no_grad():
            m._evaluate((x, y), "val")
        for key, metric in m.metrics["val"].items():
            out[f"val/{i}/{key}"] = metric.compute()
            metric.reset()
    crc, pgd_acc, pgd_rob, tight, relu = parts["metrics"]
    crc.update(plain, x, y)
    pgd_acc.update(plain, x, y)
    pgd_rob.update(plain, x)
    tight.update(plain, x, y)
    trace = IntervalTrace()
    interval_bounds(plain, *linf_box(x, 0.05), trace=trace)
    relu.update(trace)
    for name, metric in zip(("cr", "pgd_acc", "pgd_rob", "tightness", "relu"), parts["metrics"]):
        out[f"metric/{name}"] = metric.compute()
    out["pgd"] = pgd_attack(plain, x, y, 0.05, steps=3)
    xs = x[:, :, :3, :3]
    verdicts = Cascade(parts["tiny"], CascadeConfig(eps=0.1, bab=BaBConfig(timeout=2), milp=MILPSettings(timeout=2))).run(xs, y, list(range(len(y))))
    out["cascade"] = torch.tensor([["certified", "falsified", "misclassified", "unknown"].index(v.status) for v in verdicts])
    return out


def test_no_tensor_is_created_on_the_default_device_during_a_computation():
    parts = build("cpu")
    check = DefaultDeviceFactories()
    with check:
        workload(parts)
    assert check.calls == {}, "tensor factories without device= in lit_cert computations: " + ", ".join(
        f"{f}:{line} {fn}" for f, line, fn in sorted(check.calls))


@pytest.mark.parametrize("device", DEVICES)
def test_nothing_relies_on_the_default_device_or_dtype(device):
    parts = build(device)
    with foreign_defaults():
        results = workload(parts)
    for name, value in results.items():
        if isinstance(value, torch.Tensor) and name != "cascade":
            assert value.device.type == torch.device(device).type, name
            if value.is_floating_point() and not name.startswith(("metric/", "val/")):  # metric rates are float64 states
                assert value.dtype == torch.float32, (name, value.dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_the_workload_gives_the_cpu_results_on_every_device(device):
    reference = workload(build("cpu"))
    results = workload(build(device))
    assert results.keys() == reference.keys()
    for name, value in results.items():
        if name.startswith("train/") and "COLT" in name or name in ("pgd", "metric/pgd_acc", "metric/pgd_rob", "cascade"):
            continue  # random projections / attacks: device-specific random streams
        assert torch.allclose(value.cpu().double(), reference[name].double(), rtol=1e-5, atol=1e-5), name


def test_the_prepared_gpu_check_is_ready():
    """scripts/gpu_check.sh --dry-run: every command's files exist, the limits fit 10 minutes, the
    Python checks build (what CI can check without a GPU)."""
    import subprocess

    root = os.path.dirname(ROOT)
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dry run ok (7 steps" in proc.stdout
    for step in ("[env]", "[tests]", "[bounds]", "[steps]", "[cascade]", "[ddp]", "[bench]"):
        assert step in proc.stdout
