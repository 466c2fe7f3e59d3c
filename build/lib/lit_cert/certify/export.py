"""ONNX model + one VNN-LIB property per sample, for external verifiers (``python -m lit_cert
export``, :mod:`lit_cert.commands.export`, is the surface).

The ONNX graph includes the normalisation layer, so its input is the image in [0, 1] pixel
space -- the space of the VNN-LIB input box ``[max(x - eps, 0), min(x + eps, 1)]``. Each
property states the *violation* (as VNN-COMP verifiers such as alpha-beta-CROWN and MN-BaB
expect): some other class scores at least as high as the label, ``Y_j >= Y_label``. Proving it
unsatisfiable proves robustness. ``instances.csv`` lists ``onnx,vnnlib,timeout`` rows;
``reference_outputs.npz`` holds the exported inputs, labels and float32 logits.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lit_cert.bounds.region import certified_box
from lit_cert.numerics import certified_numerics
from lit_cert.persist import atomic_path, staged, write_text


def export_onnx(net: torch.nn.Module, in_shape: tuple[int, ...], path: Path) -> None:
    net = net.eval()
    param = next(net.parameters())
    dummy = torch.zeros(1, *in_shape, dtype=param.dtype, device=param.device)
    with atomic_path(path) as tmp:
        torch.onnx.export(
            net, (dummy,), str(tmp), dynamo=False, input_names=["input"], output_names=["logits"],
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


def write_reference_outputs(net: torch.nn.Module, x: torch.Tensor, labels: list[int], path: Path) -> None:
    """The exported samples, their labels and the network's float32 logits on them (computed
    with autocast and TF32 off), so a user can check that a verifier loaded the ONNX model as the
    same function before trusting its verdicts."""
    import numpy as np

    with certified_numerics(), torch.no_grad():
        logits = net.eval()(x.to(next(net.parameters()).dtype))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, inputs=x.cpu().numpy(), labels=np.asarray(labels), logits=logits.cpu().numpy())


def export_split(net: torch.nn.Module, in_shape, num_classes: int, dataset, split: str, eps: float, limit: int, timeout: float,
                 out: Path) -> int:
    """``out/model.onnx``, one VNN-LIB property per sample of the first ``limit`` of ``dataset``
    (its box in float64, rounded outward: it contains the exact eps-ball of the float32 image),
    ``out/instances.csv`` and ``out/reference_outputs.npz``; returns the number of properties.
    Every file is written atomically and all of them only once all were made (:func:`staged`)."""
    with staged():
        export_onnx(net, in_shape, out / "model.onnx")
        rows, inputs, labels = [], [], []
        for i in range(min(limit, len(dataset))):
            x, y = dataset[i]
            lb, ub = certified_box(x.unsqueeze(0).double(), eps)
            name = f"vnnlib/{split}_{i:05d}_eps{eps:g}.vnnlib"
            write_text(out / name, vnnlib_text(lb, ub, int(y), num_classes, f"{split} sample {i}, label {int(y)}, eps {eps:g}"))
            rows.append(f"model.onnx,{name},{timeout:g}")
            inputs.append(x)
            labels.append(int(y))
        write_text(out / "instances.csv", "\n".join(rows) + "\n")
        write_reference_outputs(net, torch.stack(inputs), labels, out / "reference_outputs.npz")
    return len(rows)
