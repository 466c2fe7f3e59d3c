"""Shared DataModule logic: locating files, the train/validation split, loaders, augmentation.

Images are kept as uint8 tensors (N, C, H, W) in memory and served as float in [0, 1]; all
normalisation happens inside the network. Augmentation (random crop after zero padding, optional
horizontal flip) is applied batch-wise after the batch reached its device, only while training.

Files are checked when they are read (a truncated or corrupt file, images of the wrong shape,
labels outside ``[0, num_classes)``): a :class:`~lit_cert.errors.DataError` names the file and the
problem before any training starts. The training loader drops a last batch that would hold a
single sample (BatchNorm cannot normalise one value per channel; torch refuses it too).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from lit_cert.data.info import DataInfo
from lit_cert.errors import ConfigError, DataError


class DataNotFoundError(DataError):
    """Raised when a dataset is neither on disk nor downloadable; the message says what to do."""


class ImageTensorDataset(Dataset):
    """uint8 images (N, C, H, W) + int64 labels, served as (float image in [0, 1], label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i].float().div_(255.0), self.labels[i]


def random_crop_flip(x: torch.Tensor, padding: int, flip: bool, generator: torch.Generator | None = None,
                     padding_mode: str = "zeros") -> torch.Tensor:
    """Batch-wise random crop (after padding by ``padding`` pixels with zeros or, ``edge``, the
    border pixels) and horizontal flip."""
    b, _, h, w = x.shape
    if padding > 0:
        mode = "replicate" if padding_mode == "edge" else "constant"
        padded = torch.nn.functional.pad(x, (padding, padding, padding, padding), mode=mode)
        dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # (B, H)
        cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])  # (B, W)
        bidx = torch.arange(b, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(b, device=x.device, generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


class ImageDataModule(L.LightningDataModule):
    """Base class of all image datasets.

    Args:
        data_dir: where the user keeps data (searched first, downloads go here). Default: the
            ``LIT_CERT_DATA`` environment variable, else ``./data``.
        batch_size: training batch size (global per process).
        eval_batch_size: validation/test batch size (defaults to ``batch_size``).
        val_size: samples carved out of the *training* set for validation (int) or a fraction.
        split_seed: seed of that split (fixed, independent of the run seed).
        num_workers: DataLoader workers.
        download: try torchvision's download when no local copy is found.
        crop_padding: random-crop augmentation after padding by this many pixels (0 = off).
        padding_mode: ``zeros`` or ``edge`` (repeat the border pixels, as CTBench's CIFAR-10).
        flip: random horizontal flips.
        normalize: ``true`` (default): the network's first layer normalises with the dataset's
            mean/std; ``false``: mean 0, std 1 (CTBench's MNIST networks see raw [0, 1] pixels).
        downsample: average-pool the images to ``downsample`` x ``downsample`` pixels (e.g. 4:
            16 inputs, small enough for the LP relaxations; seed 002 App. K.3 used 16 PCA
            features instead, which are not [0, 1] pixels). Pixel values, and so eps, keep
            their meaning.
        train_size: train on a random subset of this many samples (after the validation split).
    """

    info: DataInfo
    #: human-readable name and the files that make a complete copy (for messages)
    display_name: str = "dataset"
    required_files: Sequence[str] = ()
    #: directories searched after the user's data_dir (e.g. Debian's dataset packages)
    system_dirs: Sequence[str] = ()
    #: subdirectories of data_dir where downloads/other tools put the files
    subdirs: Sequence[str] = ()

    def __init__(
        self,
        data_dir: Optional[str] = None,
        batch_size: int = 128,
        eval_batch_size: Optional[int] = None,
        val_size: Union[int, float] = 5000,
        split_seed: int = 0,
        num_workers: int = 0,
        download: bool = True,
        crop_padding: int = 0,
        flip: bool = False,
        padding_mode: str = "zeros",
        normalize: bool = True,
        downsample: Optional[int] = None,
        train_size: Optional[int] = None,
    ):
        super().__init__()
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ConfigError(f"data.batch_size and eval_batch_size must be >= 1, got {batch_size}, {eval_batch_size}")
        if isinstance(val_size, float) and not 0 < val_size < 1:
            raise ConfigError(f"data.val_size as a fraction must be in (0, 1), got {val_size}")
        if isinstance(val_size, int) and val_size < 1:
            raise ConfigError(f"data.val_size must be >= 1 (model selection never uses the test set), got {val_size}")
        if crop_padding < 0 or num_workers < 0:
            raise ConfigError(f"data.crop_padding and num_workers must be >= 0, got {crop_padding}, {num_workers}")
        if padding_mode not in ("zeros", "edge"):
            raise ConfigError(f"data.padding_mode must be 'zeros' or 'edge', got {padding_mode!r}")
        if not normalize:  # an instance-level DataInfo: raw pixels into the network
            c = len(self.info.mean)
            self.info = dataclasses.replace(self.info, mean=(0.0,) * c, std=(1.0,) * c)
        # the stored images' shape (before ``downsample``); subclasses that set ``info`` later keep theirs
        self._base_shape = tuple(self.info.in_shape) if hasattr(self, "info") else None
        if downsample is not None:
            if self._base_shape is None:
                raise ConfigError(f"data.downsample is not available for {type(self).__name__}")
            h, w = self._base_shape[1:]
            if downsample < 1 or h % downsample or w % downsample:
                raise ConfigError(f"data.downsample must divide the image size {h}x{w}, got {downsample}")
            self.info = dataclasses.replace(self.info, in_shape=(self._base_shape[0], downsample, downsample))
        if train_size is not None and train_size < 1:
            raise ConfigError(f"data.train_size must be >= 1, got {train_size}")
        self.downsample, self.train_size = downsample, train_size
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.download = download
        self.crop_padding = crop_padding
        self.flip = flip
        self.padding_mode = padding_mode
        self.train_set = self.val_set = self.test_set = None

    # ----------------------------------------------------------------- discovery
    @property
    def root(self) -> Path:
        return Path(self.data_dir or os.environ.get("LIT_CERT_DATA") or "data").expanduser()

    def candidate_dirs(self) -> list[Path]:
        """Where we look, in order: the user's data_dir (and its usual subfolders), system copies."""
        dirs = [self.root] + [self.root / s for s in self.subdirs]
        return dirs + [Path(d) for d in self.system_dirs]

    def has_files(self, directory: Path) -> bool:
        return all(self._resolve(directory, f) is not None for f in self.required_files)

    @staticmethod
    def _resolve(directory: Path, name: str) -> Path | None:
        for candidate in (directory / name, directory / (name + ".gz")):
            if candidate.is_file():
                return candidate
        return None

    def locate(self) -> Path | None:
        for d in self.candidate_dirs():
            if self.has_files(d):
                return d
        return None

    def fetch(self, root: Path) -> None:  # pragma: no cover - needs the internet
        """Download into ``root`` (torchvision). Subclasses implement."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        if self.locate() is not None:
            return
        reason = "download disabled (download: false)"
        if self.download:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                self.fetch(self.root)
            except Exception as err:  # noqa: BLE001 - any failure becomes one clear message
                reason = f"download failed: {type(err).__name__}: {err}"
            else:
                if self.locate() is not None:
                    return
                reason = "download finished but the expected files are not there"
        raise DataNotFoundError(self.not_found_message(reason))

    def not_found_message(self, reason: str) -> str:
        looked = "\n".join(f"  - {d}" for d in self.candidate_dirs())
        files = ", ".join(f"{f}[.gz]" if "idx" in f else f for f in self.required_files)
        return (
            f"{self.display_name} not found. Needed files: {files}.\nLooked in:\n{looked}\n"
            f"({reason}).\nWhat to do: put the files in a folder and pass it as "
            f"--data.init_args.data_dir=FOLDER (or data.init_args.data_dir in the config)"
            f"{self.extra_hint()}, or run once with internet access and download: true."
        )

    def extra_hint(self) -> str:
        return ""

    # ----------------------------------------------------------------- loading
    def read_split(self, directory: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images (N, C, H, W), int64 labels) of the train or test split."""
        raise NotImplementedError

    def load_arrays(self):
        directory = self.locate()
        if directory is None:
            raise DataNotFoundError(self.not_found_message("prepare_data was not run or the files vanished"))
        splits = []
        for train in (True, False):
            try:
                splits.append(self.read_split(directory, train))
            except DataError:
                raise
            except Exception as err:  # noqa: BLE001 - zlib/gzip/pickle/struct/shape errors all mean "corrupt"
                raise DataError(
                    f"{self.display_name}: the {'training' if train else 'test'} files in {directory} are unreadable "
                    f"(truncated or corrupt?): {type(err).__name__}: {err}. Replace them with complete copies."
                ) from None
        return splits[0], splits[1]

    def check_arrays(self, x: torch.Tensor, y: torch.Tensor, split: str) -> None:
        """Images of this dataset's shape and labels in ``[0, num_classes)``, or a DataError."""
        info = self.info
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(self.base_shape):
            raise DataError(f"{self.display_name} {split} images have shape {tuple(x.shape[1:])}, expected {tuple(self.base_shape)}")
        if len(x) != len(y) or len(y) == 0:
            raise DataError(f"{self.display_name} {split} split has {len(x)} images and {len(y)} labels")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= info.num_classes:
            raise DataError(f"{self.display_name} {split} labels range over [{lo}, {hi}] but the dataset has "
                            f"{info.num_classes} classes (labels 0..{info.num_classes - 1}): the files are corrupt or of another dataset")

    def setup(self, stage: Optional[str] = None) -> None:
        if self.train_set is not None:
            return
        (x_tr, y_tr), (x_te, y_te) = self.load_arrays()
        self.check_arrays(x_tr, y_tr, "training")
        self.check_arrays(x_te, y_te, "test")
        n = len(y_tr)
        n_val = int(round(self.val_size * n)) if isinstance(self.val_size, float) else int(self.val_size)
        if not 0 < n_val < n:
            raise ConfigError(f"data.val_size={self.val_size} leaves no training data ({n} training samples)")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        if self.train_size is not None:  # a random subset of the rest (same seed: reproducible)
            if self.train_size > len(train_idx):
                raise ConfigError(f"data.train_size={self.train_size} exceeds the {len(train_idx)} training samples left after validation")
            train_idx = train_idx[: self.train_size]
        if self.downsample is not None:
            x_tr, x_te = self._pool(x_tr), self._pool(x_te)
        self.train_set = ImageTensorDataset(x_tr[train_idx], y_tr[train_idx])
        self.val_set = ImageTensorDataset(x_tr[val_idx], y_tr[val_idx])
        self.test_set = ImageTensorDataset(x_te, y_te)

    @property
    def base_shape(self) -> tuple[int, ...]:
        return self._base_shape or tuple(self.info.in_shape)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """Average-pool uint8 images to ``downsample`` x ``downsample`` (rounded back to uint8):
        small inputs for LP-based relaxations, pixel semantics (and eps) unchanged."""
        k = self.base_shape[1] // self.downsample
        pooled = torch.nn.functional.avg_pool2d(x.float(), k)
        return pooled.round().clamp(0, 255).to(torch.uint8)

    def _world_size(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1

    def _loader(self, ds: Dataset, train: bool) -> DataLoader:
        # a last training batch of one sample (per process) would break BatchNorm: drop it
        per_rank = math.ceil(len(ds) / self._world_size())
        return DataLoader(
            ds,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train and per_rank % self.batch_size == 1,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training and (self.crop_padding > 0 or self.flip):
            x, y = batch
            batch = (random_crop_flip(x, self.crop_padding, self.flip, padding_mode=self.padding_mode), y)
        return batch

