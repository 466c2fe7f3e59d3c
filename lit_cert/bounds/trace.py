"""What one interval propagation saw: the box entering each layer it walked.

An :class:`IntervalTrace` is passed *explicitly* to the IBP walk
(:func:`lit_cert.bounds.box.interval_bounds`), which appends one entry per layer: the layer and
the interval entering it. Consumers read what they need by layer type -- the pre-activation
bounds of the ReLUs (ReLU stability, Shi et al.'s regulariser, CROWN-IBP's intermediate bounds)
or the box entering the first affine layer (Shi et al.'s reference radius) -- so the bound engine
has no method-specific hooks. Several walks may append to one trace (TAPS: feature extractor,
then classifier); entries keep the walk order.

Entries are stored in whichever form the walk held (lower/upper or centre/radius) and converted
on first access, so recording costs nothing but keeping references to tensors the walk computed
anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

Interval = tuple[torch.Tensor, torch.Tensor]


@dataclass
class _Entry:
    layer: nn.Module
    form: str  # "lu" (lower, upper) or "cr" (centre, radius)
    a: torch.Tensor
    b: torch.Tensor

    def as_lu(self) -> Interval:
        if self.form == "cr":
            self.form, self.a, self.b = "lu", self.a - self.b, self.a + self.b
        return self.a, self.b


@dataclass
class IntervalTrace:
    """The intervals entering each walked layer, in walk order (see module docstring)."""

    entries: list[_Entry] = field(default_factory=list)

    def add(self, layer: nn.Module, form: str, a: torch.Tensor, b: torch.Tensor) -> None:
        self.entries.append(_Entry(layer, form, a, b))

    def inputs_of(self, kind: type | tuple[type, ...]) -> list[Interval]:
        """Intervals entering every walked layer of the given type(s), as (lower, upper)."""
        return [e.as_lu() for e in self.entries if isinstance(e.layer, kind)]

    @property
    def relu_inputs(self) -> list[Interval]:
        """Pre-activation bounds of every ReLU walked."""
        return self.inputs_of(nn.ReLU)

    @property
    def first_affine_input(self) -> Interval | None:
        """The box entering the first Linear/Conv2d layer (after normalisation), if any."""
        found = self.inputs_of((nn.Linear, nn.Conv2d))
        return found[0] if found else None

    @property
    def has_relus(self) -> bool:
        return any(isinstance(e.layer, nn.ReLU) for e in self.entries)
