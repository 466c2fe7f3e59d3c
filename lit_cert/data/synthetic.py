"""A learnable synthetic dataset for tests and smoke runs (no files, no downloads)."""

from __future__ import annotations

from typing import Annotated, Optional, Sequence

import torch

from lit_cert.data.base import ImageData
from lit_cert.data.info import DataInfo
from lit_cert.options import Check, NonNegativeFloat, NonNegativeInt, PositiveInt, Range, Seed, check_arguments


def _shape_problem(shape) -> str | None:
    return None if len(shape) == 3 else "must be (channels, height, width)"


class SyntheticImagesData(ImageData):
    """Noisy copies of one random prototype image per class, quantised to uint8.

    Deterministic given ``seed``; classes are separable, so every method can lower its loss.

    Args:
        in_shape: image shape (C, H, W).
        num_classes: classes (at least 2).
        train_size: training images (besides the validation ones).
        val_size: validation images.
        test_size: test images.
        noise: standard deviation of the pixel noise around each class's prototype.
        seed: the generator's seed (data and split).
        batch_size: training batch size.
        eval_batch_size: validation/test batch size (default: batch_size).
        crop_padding: random-crop augmentation after padding by this many pixels (0 = off).
        flip: random horizontal flips.
    """

    CONFIG_NAME = "SyntheticImages"

    display_name = "synthetic images"

    def __init__(
        self,
        in_shape: Annotated[Sequence[int], Range(1), Check(_shape_problem, "(C, H, W)", ([1, 2],), item_wise=False)] = (1, 12, 12),
        num_classes: Annotated[int, Range(2)] = 4,
        train_size: PositiveInt = 256,
        val_size: NonNegativeInt = 64,
        test_size: PositiveInt = 64,
        noise: NonNegativeFloat = 0.15,
        seed: Seed = 0,
        batch_size: PositiveInt = 32,
        eval_batch_size: Optional[PositiveInt] = None,
        crop_padding: NonNegativeInt = 0,
        flip: bool = False,
    ):
        check_arguments()
        super().__init__(
            data_dir=None,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            val_size=val_size,
            split_seed=seed,
            download=False,
            crop_padding=crop_padding,
            flip=flip,
        )
        self.in_shape = tuple(int(v) for v in in_shape)
        self.num_classes, self.train_size, self.test_size = num_classes, train_size, test_size
        self.noise, self.seed = noise, seed
        c = self.in_shape[0]
        self.info = DataInfo("synthetic", self.in_shape, num_classes, (0.5,) * c, (0.25,) * c)

    def prepare_data(self) -> None:
        pass

    def source(self) -> str:
        return f"memory (generated, seed {self.seed})"

    def _sample(self, n: int, generator: torch.Generator, prototypes: torch.Tensor):
        y = torch.randint(0, self.num_classes, (n,), generator=generator)
        x = prototypes[y] + self.noise * torch.randn((n, *self.in_shape), generator=generator)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8), y

    def load_arrays(self):
        g = torch.Generator().manual_seed(self.seed)
        prototypes = torch.rand((self.num_classes, *self.in_shape), generator=g)
        train = self._sample(self.train_size + int(self.val_size), g, prototypes)
        test = self._sample(self.test_size, g, prototypes)
        return train, test
