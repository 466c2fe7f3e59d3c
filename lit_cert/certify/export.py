"""ONNX model + one VNN-LIB property per sample, for external verifiers (``python -m lit_cert
export``, :mod:`lit_cert.commands.export`, is the surface).

The exported network is the one VNN-COMP verifiers load unchanged (:func:`verifier_network`):
eval-mode BatchNorm is folded into the preceding convolution or linear layer (exact), so the
graph has only Conv/Gemm/ReLU/Flatten; the dataset normalisation ``(x - mean) / std`` is either

* ``normalisation="box"`` (the default): left out of the graph and applied to the VNN-LIB box
  instead, so the ONNX input and the property are in *normalised* space: the box is
  ``[(max(x - eps, 0) - mean) / std, (min(x + eps, 1) - mean) / std]`` per channel, widened
  outward by one float64 ulp -- the same set of networks' inputs;
* ``normalisation="constants"``: kept as ``Sub``/``Div`` with ``[C, 1, 1]`` constants (no batch
  axis, which auto_LiRPA would take for a batched operand); input and box in [0, 1] pixels.

Each property states the *violation* (as VNN-COMP verifiers such as alpha-beta-CROWN and MN-BaB
expect): some other class scores at least as high as the label, ``Y_j >= Y_label``. Proving it
unsatisfiable proves robustness. ``instances.csv`` lists ``onnx,vnnlib,timeout`` rows;
``reference_outputs.npz`` holds the exported inputs, labels and float32 logits.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
from torch import nn

from lit_cert.bounds.coefficients import fused_affine_bn
from lit_cert.bounds.region import certified_box
from lit_cert.numerics import certified_numerics
from lit_cert.persist import atomic_path, staged, write_text


NORMALISATION = ("box", "constants")


class Standardise(nn.Module):
    """``(x - mean) / std`` with ``[C, 1, 1]`` constants: the normalisation as ONNX ``Sub``/``Div``
    without a leading batch axis."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(-1, 1, 1).clone())
        self.register_buffer("std", std.reshape(-1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def fold_batchnorm(layers: list[nn.Module]) -> list[nn.Module]:
    """The layers with each eval-mode BatchNorm folded into the Conv2d/Linear before it (a copy;
    :func:`~lit_cert.bounds.coefficients.fused_affine_bn` in float64): ``W' = W * g / sqrt(v + e)``,
    ``b' = (b - m) * g / sqrt(v + e) + beta``.
    A BatchNorm that does not follow an affine layer is refused (it would stay a batched-constant
    ``Mul``/``Add`` that verifiers misread)."""
    out: list[nn.Module] = []
    for m in layers:
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            out.append(m)
            continue
        prev = out[-1] if out else None
        if not isinstance(prev, (nn.Conv2d, nn.Linear)):
            raise ValueError(f"cannot fold {type(m).__name__} into {type(prev).__name__ if prev else 'nothing'}: "
                             "a BatchNorm must follow a convolution or linear layer to be exported")
        with torch.no_grad():  # the walk's own fusion, in float64
            weight, bias = fused_affine_bn(copy.deepcopy(prev).double(), copy.deepcopy(m).double().eval())
            folded = copy.deepcopy(prev)
            dtype = folded.weight.dtype
            folded.weight.copy_(weight.to(dtype))
            if folded.bias is None:
                folded.bias = nn.Parameter(torch.zeros(len(bias), dtype=dtype, device=folded.weight.device))
            folded.bias.copy_(bias.to(dtype))
        out[-1] = folded
    return out


def verifier_network(net: nn.Module, normalisation: str = "box") -> tuple[nn.Sequential, tuple | None]:
    """``(network to export, (mean, std) or None)``: BatchNorm folded (:func:`fold_batchnorm`);
    with ``"box"`` the leading Normalize removed and returned, to be applied to the VNN-LIB box;
    with ``"constants"`` it is kept as :class:`Standardise`. The argument is not modified."""
    from lit_cert.bounds.box import flat_layers
    from lit_cert.layers import Normalize

    if normalisation not in NORMALISATION:
        raise ValueError(f"normalisation must be one of {NORMALISATION}, got {normalisation!r}")
    layers = fold_batchnorm(list(flat_layers(net.eval())))
    stats = None
    if any(isinstance(m, Normalize) for m in layers[1:]):
        raise ValueError("a Normalize layer after the first cannot be exported")
    if layers and isinstance(layers[0], Normalize):
        mean, std = layers[0].mean.flatten(), layers[0].std.flatten()
        if normalisation == "box":
            stats = (mean.double(), std.double())
            layers = layers[1:]
        else:
            layers = [Standardise(mean, std)] + layers[1:]
    return nn.Sequential(*layers).eval(), stats


def _standardised(x: torch.Tensor, stats: tuple) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a (B, C, ...) tensor, in ``x``'s dtype."""
    mean, std = (t.to(x.dtype).view(1, -1, *([1] * (x.dim() - 2))) for t in stats)
    return (x - mean) / std


def normalised_box(lb: torch.Tensor, ub: torch.Tensor, stats: tuple | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixel box (float64, (1, C, H, W)) in the exported network's input space, rounded
    outward by one ulp (it contains the image of every pixel-space input)."""
    if stats is None:
        return lb, ub
    lo, hi = _standardised(lb, stats), _standardised(ub, stats)
    return torch.nextafter(lo, torch.full_like(lo, -math.inf)), torch.nextafter(hi, torch.full_like(hi, math.inf))


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


def write_reference_outputs(net: torch.nn.Module, x: torch.Tensor, labels: list[int], path: Path,
                            stats: tuple | None = None) -> None:
    """The exported samples (``pixels``; ``inputs``: in the ONNX model's input space), their labels
    and the trained network's float32 logits on them (computed with autocast and TF32 off), so a
    user can check that a verifier loaded the ONNX model as the same function before trusting
    its verdicts."""
    import numpy as np

    with certified_numerics(), torch.no_grad():
        logits = net.eval()(x.to(next(net.parameters()).dtype))
    inputs = x.double() if stats is None else _standardised(x.double(), stats)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, inputs=inputs.float().cpu().numpy(), pixels=x.cpu().numpy(), labels=np.asarray(labels),
                 logits=logits.cpu().numpy())


def export_split(net: torch.nn.Module, in_shape, num_classes: int, dataset, split: str, eps: float, limit: int, timeout: float,
                 out: Path, normalisation: str = "box") -> int:
    """``out/model.onnx`` (:func:`verifier_network`), one VNN-LIB property per sample of the first
    ``limit`` of ``dataset`` (its box in float64, rounded outward: it contains the exact eps-ball
    of the float32 image; in normalised space with ``normalisation="box"``), ``out/instances.csv``
    and ``out/reference_outputs.npz``; returns the number of properties. Every file is written
    atomically and all of them only once all were made (:func:`staged`)."""
    exported, stats = verifier_network(net, normalisation)
    space = "normalised input space ((x - mean) / std per channel)" if stats is not None else "[0, 1] pixel space"
    with staged():
        export_onnx(exported, in_shape, out / "model.onnx")
        rows, inputs, labels = [], [], []
        for i in range(min(limit, len(dataset))):
            x, y = dataset[i]
            lb, ub = normalised_box(*certified_box(x.unsqueeze(0).double(), eps), stats)
            name = f"vnnlib/{split}_{i:05d}_eps{eps:g}.vnnlib"
            write_text(out / name, vnnlib_text(lb, ub, int(y), num_classes,
                                               f"{split} sample {i}, label {int(y)}, eps {eps:g}; X in {space}"))
            rows.append(f"model.onnx,{name},{timeout:g}")
            inputs.append(x)
            labels.append(int(y))
        write_text(out / "instances.csv", "\n".join(rows) + "\n")
        write_reference_outputs(net, torch.stack(inputs), labels, out / "reference_outputs.npz", stats)
    return len(rows)
