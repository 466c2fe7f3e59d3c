"""The one loop that evaluates a trained network outside training: every analysis of
checkpoints (tightness, CR curves, PGD robustness), the results scripts and the benchmarks
run their metrics through :func:`evaluate`.

Inside training, Lightning's validation/test loop drives the same metrics
(:meth:`lit_cert.methods.CertifiedMethod.validation_step`). Here the samples are the first
``limit`` of a dataset, in batches on ``device``; each metric is updated with
``metric.update_from_net(net, x, y)`` (the torchmetrics of :mod:`lit_cert.metrics` say how)
and computed at the end. The pass runs with the network in eval mode and in full precision
(:func:`lit_cert.numerics.certified_numerics`): certified metrics are certificates whatever
the caller's autocast or TF32 settings.
"""

from __future__ import annotations

from typing import Iterator, Mapping

import torch
from torch import nn

from lit_cert.numerics import certified_numerics


def batches(dataset, limit: int | None = None, batch_size: int = 100, device: torch.device | str = "cpu"
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) batches of the first ``limit`` samples of ``dataset`` (all when None), on ``device``."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        x = torch.stack([item[0] for item in items]).to(device)
        y = torch.stack([torch.as_tensor(item[1]) for item in items]).to(device)
        yield x, y


def evaluate(net: nn.Module, dataset, metrics: Mapping[str, object], limit: int | None = None, batch_size: int = 100,
             device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """``{name: metric.compute()}`` after one pass of every metric over the samples."""
    net = net.eval().to(device)
    metrics = {name: m.to(device) if hasattr(m, "to") else m for name, m in metrics.items()}
    with certified_numerics():
        for x, y in batches(dataset, limit, batch_size, device):
            for metric in metrics.values():
                metric.update_from_net(net, x, y)
    return {name: metric.compute() for name, metric in metrics.items()}
