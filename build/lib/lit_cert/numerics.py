"""Sound numerics for everything reported as *certified*.

A bound computed in reduced precision is not a bound. Three settings outside our code can lower
the precision of a float32 computation without a word:

* autocast -- Lightning's ``precision: 16-mixed | bf16-mixed`` wraps every training *and*
  evaluation step in ``torch.autocast`` (on CPU too); matmuls and convolutions then run in
  half precision (measured: IBP margins of a quick-start net differ from float32 by up to 0.18,
  and 2 of 2,000 test images came out certified that float32 does not certify);
* TF32 on NVIDIA GPUs -- cuDNN convolutions use it by default (``torch.backends.cudnn.conv``),
  matmuls after ``torch.set_float32_matmul_precision("high")``;
* bf16 on CPUs with AMX/AVX512-BF16 -- ``torch.set_float32_matmul_precision("medium")`` makes
  oneDNN run float32 matmuls in bfloat16 (measured on our Xeon: errors of 0.26 on a 512-term
  product).

:func:`certified_numerics` turns all of them off for the block it guards -- autocast disabled on
every device type, every float32 precision flag set to IEEE -- and restores the caller's settings
afterwards, whatever they were. :func:`full_precision` casts half-precision inputs back to
float32 (autocast may have produced them). The bound registry, the validation/test step of every
method, the certification cascade and the export's reference outputs run inside it; training
losses do not (see :class:`lit_cert.methods.CertifiedMethod`).
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator

import torch

from lit_cert.errors import ConfigError

#: the per-backend float32 precision switches of torch >= 2.9 (``fp32_precision``: "ieee",
#: "tf32", "bf16" or "none" = inherit); legacy flags (``allow_tf32``,
#: ``set_float32_matmul_precision``) are views of these
_PRECISION_LEAVES = ("cuda.matmul", "cudnn.conv", "cudnn.rnn", "mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn")
#: what autocast is disabled for (those this torch build knows)
_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")
#: dtypes a certified computation refuses as *weights* and upcasts as *inputs*
HALF_DTYPES = (torch.float16, torch.bfloat16)


def _leaves() -> list:
    out = []
    for path in _PRECISION_LEAVES:
        node = torch.backends
        for part in path.split("."):
            node = getattr(node, part, None)
        if node is not None and hasattr(node, "fp32_precision"):
            out.append(node)
    return out


def precision_state() -> dict[str, str]:
    """The current float32 precision of every backend leaf (for tests and reports)."""
    return {path: node.fp32_precision for path, node in zip(_PRECISION_LEAVES, _leaves())}


@contextmanager
def certified_numerics() -> Iterator[None]:
    """Full float32 (IEEE) arithmetic, no autocast, on every device, restored on exit."""
    leaves = _leaves()
    saved = [leaf.fp32_precision for leaf in leaves]
    legacy = None
    if not leaves:  # an older torch: the legacy switches
        legacy = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision())
    with ExitStack() as stack:
        for device in _AUTOCAST_DEVICES:
            if torch.amp.is_autocast_available(device):
                stack.enter_context(torch.autocast(device_type=device, enabled=False))
        try:
            if leaves:
                for leaf in leaves:
                    leaf.fp32_precision = "ieee"
            else:
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
                torch.set_float32_matmul_precision("highest")
            yield
        finally:
            for leaf, value in zip(leaves, saved):
                leaf.fp32_precision = value
            if legacy is not None:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = legacy[:2]
                torch.set_float32_matmul_precision(legacy[2])


def full_precision(*tensors: torch.Tensor):
    """The tensors with half-precision floats cast to float32 (float32/float64 and integer
    tensors unchanged): what autocast handed back is brought to the precision of the bounds."""
    out = tuple(t.float() if isinstance(t, torch.Tensor) and t.dtype in HALF_DTYPES else t for t in tensors)
    return out if len(out) != 1 else out[0]


def check_full_precision_weights(net: torch.nn.Module, what: str = "certified bounds") -> None:
    """Refuse a network whose weights are half precision (``precision: 16-true | bf16-true``):
    its bounds would be computed in that precision."""
    for p in net.parameters():
        if p.dtype in HALF_DTYPES:
            raise ConfigError(
                f"{what} need float32 (or float64) weights, but the network holds {p.dtype} weights "
                "(trainer precision 16-true / bf16-true?): use precision 16-mixed or bf16-mixed, which keep "
                "float32 weights, or 32-true")
