"""What a network needs to know about its dataset."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataInfo:
    """Input shape (C, H, W), number of classes and the normalisation statistics.

    Every DataModule exposes one as ``.info``; the CLI links it into the method, which builds
    its network from it (the network's first layer normalises with ``mean``/``std``)."""

    name: str
    in_shape: tuple[int, ...]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        # accept lists from YAML/JSON round trips
        object.__setattr__(self, "in_shape", tuple(int(v) for v in self.in_shape))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != len(self.std):
            raise ValueError(f"DataInfo: mean {self.mean} and std {self.std} differ in length")
