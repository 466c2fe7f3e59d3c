"""Network building blocks that the bound engine understands.

Only two layers are our own; everything else is plain ``torch.nn``:

* :class:`Normalize` -- per-channel ``(x - mean) / std`` as the *first* layer of every network, so
  that eps, attacks and clamping to the image domain all live in [0, 1] pixel space.
* :class:`BatchNorm1d` / :class:`BatchNorm2d` -- BatchNorm that remembers the statistics of the
  last training-mode forward pass. Certified training computes bounds with exactly the statistics
  of the clean batch (CTBench/TAPS convention); torch's BatchNorm does not expose them, so we
  normalise explicitly with stored tensors and let the bound engine reuse them. By default the
  stored statistics stay *functions of the parameters* (gradients of the bound flow back through
  the batch mean and variance into the clean pass), exactly as in CTBench and auto_LiRPA;
  :func:`set_batch_statistics_mode` switches a network to constant (detached) statistics.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """``(x - mean) / std`` with per-channel statistics stored as buffers (saved in checkpoints)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        mean_t = torch.as_tensor(list(mean), dtype=torch.float32)
        std_t = torch.as_tensor(list(std), dtype=torch.float32)
        if torch.any(std_t <= 0):
            raise ValueError(f"Normalize: std must be positive, got {list(std)}")
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    def _shaped(self, x: torch.Tensor):
        if x.dim() == 4:
            return self.mean, self.std
        # flat inputs (e.g. tabular / toy 2-D data): one statistic per feature or a scalar
        return self.mean.flatten(), self.std.flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._shaped(x)
        return (x - mean) / std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


def _scale_shift(bn: nn.Module, mean: torch.Tensor, var: torch.Tensor):
    """BatchNorm as a per-channel affine map ``y = x * scale + shift``."""
    inv = torch.rsqrt(var + bn.eps)
    scale = inv if bn.weight is None else bn.weight * inv
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


#: how the bounds see the clean batch's BatchNorm statistics in training mode
BN_STATISTICS = ("differentiable", "detached")


class _RecordingBatchNorm:
    """Mixin: normalise with explicitly computed batch statistics and keep them.

    In training mode the batch mean and (biased) variance are computed, stored in
    ``batch_mean``/``batch_var`` and the running statistics are updated like torch does. In eval
    mode the running statistics are used. :meth:`affine_params` returns the per-channel scale and
    shift that the *last* forward pass applied -- what the bound engine must use.

    ``statistics`` (see :data:`BN_STATISTICS`): ``"differentiable"`` (default, the references'
    training signal) keeps the stored statistics attached to the clean pass's graph;
    ``"detached"`` makes the bounds (and frozen forward passes) use them as constants -- a faster
    training step with a different gradient (benchmarks/RESULTS.md).
    """

    batch_mean: torch.Tensor | None
    batch_var: torch.Tensor | None

    def _init_records(self) -> None:
        self.batch_mean = None
        self.batch_var = None
        self.frozen = False
        self.statistics = "differentiable"

    def __getstate__(self):
        # the recorded statistics belong to one forward pass (and its graph): copies and pickles
        # of the layer start without them, like a freshly built layer
        state = super().__getstate__()
        state = dict(state)
        state["batch_mean"] = state["batch_var"] = None
        return state

    def _recorded(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.statistics == "detached":
            return self.batch_mean.detach(), self.batch_var.detach()
        return self.batch_mean, self.batch_var

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        self._check_input_dim(x)
        if self.training and self.frozen and self.batch_mean is not None:
            mean, var = self._recorded()  # reuse the clean batch's statistics
        elif self.training:
            n = x.numel() // x.shape[1]
            if n <= 1:  # as torch's BatchNorm: one value per channel has no variance
                raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
            dims = [0] + list(range(2, x.dim()))
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            self.batch_mean, self.batch_var = mean, var
            if self.track_running_stats:
                momentum = 0.1 if self.momentum is None else self.momentum
                with torch.no_grad():
                    unbiased = var.detach() * (n / (n - 1))
                    self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                    self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
                    self.num_batches_tracked.add_(1)
        else:
            mean, var = self.running_mean, self.running_var
        scale, shift = _scale_shift(self, mean, var)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.view(shape) + shift.view(shape)

    def affine_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (scale, shift) with ``y = x * scale + shift`` as used by the last forward.

        In training mode these come from the clean batch's statistics, attached to its graph or
        detached according to ``statistics``. Training mode needs a preceding clean forward
        pass; otherwise there are no batch statistics to reuse and we refuse rather than
        silently bound a different function.
        """
        if self.training:
            if self.batch_mean is None:
                raise RuntimeError(
                    f"{type(self).__name__} is in training mode but has no batch statistics: run the "
                    "network on the clean batch before computing bounds (or call .eval())."
                )
            return _scale_shift(self, *self._recorded())
        return _scale_shift(self, self.running_mean, self.running_var)


class BatchNorm1d(_RecordingBatchNorm, nn.BatchNorm1d):
    """BatchNorm1d whose training-mode statistics are reused by the bound engine."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_records()


class BatchNorm2d(_RecordingBatchNorm, nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are reused by the bound engine."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_records()


def recording_batchnorms(net: nn.Module) -> list[_RecordingBatchNorm]:
    return [m for m in net.modules() if isinstance(m, _RecordingBatchNorm)]


def set_batch_statistics_mode(net: nn.Module, mode: str) -> None:
    """Make every lit_cert BatchNorm of ``net`` use ``mode`` (see :data:`BN_STATISTICS`)."""
    if mode not in BN_STATISTICS:
        raise ValueError(f"BatchNorm statistics mode must be one of {BN_STATISTICS}, got {mode!r}")
    for m in recording_batchnorms(net):
        m.statistics = mode


@contextmanager
def frozen_batch_stats(net: nn.Module):
    """Within this block, training-mode lit_cert BatchNorm layers reuse the statistics of the last
    clean forward pass instead of computing (and recording) new ones, and leave the running
    statistics alone. Use it to attack or sample a network in training mode so that the function
    evaluated is exactly the one the bounds describe (including, in the default mode, the
    gradient through the clean batch's statistics, as CTBench's adversarial losses have)."""
    layers = recording_batchnorms(net)
    previous = [m.frozen for m in layers]
    for m in layers:
        m.frozen = True
    try:
        yield net
    finally:
        for m, p in zip(layers, previous):
            m.frozen = p


def bn_affine_params(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of any BatchNorm layer; torch's own BatchNorm only in eval mode."""
    if isinstance(bn, _RecordingBatchNorm):
        return bn.affine_params()
    if bn.training:
        raise RuntimeError(
            f"torch.nn.{type(bn).__name__} in training mode does not expose its batch statistics; "
            "use lit_cert.layers.BatchNorm1d/2d or put the network in eval mode before bounding."
        )
    return _scale_shift(bn, bn.running_mean, bn.running_var)
