"""``python -m lit_cert export``: ONNX model + one VNN-LIB property per sample.

The ONNX graph includes the normalisation layer, so its input is the image in [0, 1] pixel
space -- the space of the VNN-LIB input box ``[max(x - eps, 0), min(x + eps, 1)]``. Each
property states the *violation* (as VNN-COMP verifiers such as alpha-beta-CROWN and MN-BaB
expect): some other class scores at least as high as the label, ``Y_j >= Y_label``. Proving it
unsatisfiable proves robustness. ``instances.csv`` lists ``onnx,vnnlib,timeout`` rows;
``reference_outputs.npz`` holds the exported inputs, labels and float32 logits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lit_cert.bounds.region import certified_box
from lit_cert.certify.data import SPLITS, load_run, split_dataset
from lit_cert.commands import CommandParser, eps_value, positive_float, positive_int
from lit_cert.numerics import certified_numerics
from lit_cert.rundir import ensure_writable_dir


def export_onnx(net: torch.nn.Module, in_shape: tuple[int, ...], path: Path) -> None:
    net = net.eval()
    param = next(net.parameters())
    dummy = torch.zeros(1, *in_shape, dtype=param.dtype, device=param.device)
    torch.onnx.export(
        net, (dummy,), str(path), dynamo=False, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
    )


def vnnlib_text(lb: torch.Tensor, ub: torch.Tensor, label: int, num_classes: int, comment: str = "") -> str:
    if bool((lb > ub).any()):
        raise ValueError("VNN-LIB box with lower > upper bounds: every verifier would call it robust")
    lb, ub = lb.flatten().tolist(), ub.flatten().tolist()
    lines = [f"; {comment}" if comment else "; lit_cert robustness property"]
    lines += [f"(declare-const X_{i} Real)" for i in range(len(lb))]
    lines += [f"(declare-const Y_{j} Real)" for j in range(num_classes)]
    for i, (lo, hi) in enumerate(zip(lb, ub)):
        lines.append(f"(assert (<= X_{i} {hi!r}))")
        lines.append(f"(assert (>= X_{i} {lo!r}))")
    others = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(num_classes) if j != label)
    lines.append(f"(assert (or {others}))")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> Path:
    p = CommandParser(prog="python -m lit_cert export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--config", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--eps", type=eps_value, default=None, help="radius in pixel units (default: the model's eps_test)")
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--limit", type=positive_int, default=10)
    p.add_argument("--timeout", type=positive_float, default=300.0, help="per-instance timeout written to instances.csv")
    p.add_argument("--data_dir", default=None)
    args = p.parse_args(argv)
    model, dm = load_run(args.ckpt, args.config, args.data_dir)
    eps = model.eps_test if args.eps is None else args.eps
    out = ensure_writable_dir(args.out, "export folder")
    (out / "vnnlib").mkdir(parents=True, exist_ok=True)
    export_onnx(model.net, model.data_info.in_shape, out / "model.onnx")
    dataset = split_dataset(dm, args.split)
    rows, inputs, labels = [], [], []
    for i in range(min(args.limit, len(dataset))):
        x, y = dataset[i]
        # the box in float64, rounded outward: it contains the exact eps-ball of the float32 image
        lb, ub = certified_box(x.unsqueeze(0).double(), eps)
        name = f"vnnlib/{args.split}_{i:05d}_eps{eps:g}.vnnlib"
        (out / name).write_text(vnnlib_text(lb, ub, int(y), model.num_classes, f"{args.split} sample {i}, label {int(y)}, eps {eps:g}"))
        rows.append(f"model.onnx,{name},{args.timeout:g}")
        inputs.append(x)
        labels.append(int(y))
    (out / "instances.csv").write_text("\n".join(rows) + "\n")
    write_reference_outputs(model.net, torch.stack(inputs), labels, out / "reference_outputs.npz")
    print(f"lit_cert export: model.onnx, {len(rows)} VNN-LIB properties and reference_outputs.npz in {out}")
    return out


def write_reference_outputs(net: torch.nn.Module, x: torch.Tensor, labels: list[int], path: Path) -> None:
    """The exported samples, their labels and the network's float32 logits on them (computed
    with autocast and TF32 off), so a user can check that a verifier loaded the ONNX model as the
    same function before trusting its verdicts."""
    import numpy as np

    with certified_numerics(), torch.no_grad():
        logits = net.eval()(x.to(next(net.parameters()).dtype))
    np.savez(path, inputs=x.cpu().numpy(), labels=np.asarray(labels), logits=logits.cpu().numpy())
