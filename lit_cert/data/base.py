"""Shared DataModule logic: locating files, the train/validation split, loaders, augmentation.

Images are kept in memory as uint8 tensors (N, C, H, W) -- or float32 in [0, 1] when the files
store float pixels -- and served as float in [0, 1]; all normalisation happens inside the network. Augmentation (random crop after zero padding, optional
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
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional, Sequence, Union

import torch
from torch.utils.data import DataLoader, Dataset

from lit_cert.data.info import DataInfo
from lit_cert.errors import ConfigError, DataError
from lit_cert.options import Check, NonNegativeInt, PositiveInt, Seed, check_arguments


def _val_size_problem(value) -> str | None:
    """``val_size``: a count >= 0 (0: no validation split) or a fraction in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a count >= 0 or a fraction in (0, 1)"
    if isinstance(value, float) and not (0 < value < 1):
        return "as a fraction must be in (0, 1) (a count is an integer)"
    if isinstance(value, int) and value < 0:
        return "must be >= 0 (0: no validation split; model selection never uses the test set)"
    return None


class DataNotFoundError(DataError):
    """Raised when a dataset is neither on disk nor downloadable; the message says what to do."""


class ImageTensorDataset(Dataset):
    """Images (N, C, H, W) + int64 labels, served as (float image in [0, 1], label).

    ``images`` are uint8 (0..255, divided by 255 when served) or float32 already in [0, 1]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dim() != 4 or not (images.dtype == torch.uint8 or images.dtype == torch.float32):
            raise ValueError(f"expected uint8 or float32 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if images.dtype == torch.float32 and len(images) and not (0 <= float(images.min()) and float(images.max()) <= 1):
            raise ValueError("float32 images must hold pixel values in [0, 1]")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        if self.images.dtype == torch.uint8:
            return self.images[i].float().div_(255.0), self.labels[i]
        return self.images[i].clone(), self.labels[i]


def pixel_tensor(array, where: str) -> torch.Tensor:
    """Pixels read from a file as a tensor :class:`ImageTensorDataset` serves unchanged in meaning.

    Integer pixels must lie in 0..255 (kept as uint8); float pixels must be finite and in [0, 1]
    (kept as float32, never cast to uint8 -- which would turn [0, 1] images black). Anything else
    is a :class:`~lit_cert.errors.DataError` naming ``where`` and the range found."""
    import numpy as np

    arr = np.asarray(array)
    if arr.size == 0:
        return torch.from_numpy(np.array(arr, dtype=np.uint8))
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: integer pixels range over [{lo}, {hi}], expected 0..255")
        return torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True))
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DataError(f"{where}: float pixels include NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 1:
            raise DataError(f"{where}: float pixels range over [{lo:g}, {hi:g}], expected [0, 1] "
                            "(store 0..255 values as unsigned bytes instead)")
        return torch.from_numpy(np.array(arr, dtype=np.float32, copy=True))
    raise DataError(f"{where}: pixels of type {arr.dtype} are not supported")


def label_tensor(array, where: str) -> torch.Tensor:
    """Integer class labels as int64; float labels must be whole numbers (never truncated)."""
    import numpy as np

    arr = np.asarray(array)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise DataError(f"{where}: labels are not whole numbers")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{where}: labels of type {arr.dtype} are not supported")
    return torch.from_numpy(np.array(arr, dtype=np.int64, copy=True))


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


class ImageData:
    """Base class of all image datasets -- plain Python, no Lightning: certification, export and
    the analyses read data through it without importing Lightning; the DataModules that ``fit``
    uses are these classes with :class:`lightning.LightningDataModule` mixed in
    (:mod:`lit_cert.data.modules`).

    Args:
        data_dir: the folder that holds the data (or its usual subfolders; downloads go here).
            When given -- here or as the ``LIT_CERT_DATA`` environment variable -- only that
            folder is used: if the files are not there (a typo, an empty folder, only some of
            the files) the run stops with an error listing what is missing, and never falls
            back to another copy. When neither is set, ``./data`` is searched, then the system
            copies (e.g. Debian's ``dataset-fashion-mnist``). ``setup`` prints one line saying
            which dataset was read from where, with the split sizes.
        batch_size: training batch size (global per process).
        eval_batch_size: validation/test batch size (defaults to ``batch_size``).
        val_size: samples carved out of the *training* set for validation (int) or a fraction;
            ``0``: no validation split -- train on every training image and keep the last
            checkpoint (the paradox authors' choice, seed 002); the test set is never used for
            model selection either way.
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
    #: the dataset's name in configs (``data.class_path``), set by each built-in dataset class;
    #: a user's own subclass of ImageData has none and is named by its dotted path (public_name)
    CONFIG_NAME: str | None = None
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
        batch_size: PositiveInt = 128,
        eval_batch_size: Optional[PositiveInt] = None,
        val_size: Annotated[Union[int, float], Check(_val_size_problem, "a count >= 0 or a fraction in (0, 1)", (-1, 1.5))] = 5000,
        split_seed: Seed = 0,
        num_workers: NonNegativeInt = 0,
        download: bool = True,
        crop_padding: NonNegativeInt = 0,
        flip: bool = False,
        padding_mode: Literal["zeros", "edge"] = "zeros",
        normalize: bool = True,
        downsample: Optional[PositiveInt] = None,
        train_size: Optional[PositiveInt] = None,
    ):
        check_arguments()
        super().__init__()
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

    @property
    def root_named_by_user(self) -> bool:
        """Whether the user named the data folder (``data_dir`` or ``$LIT_CERT_DATA``)."""
        return bool(self.data_dir or os.environ.get("LIT_CERT_DATA"))

    def user_dirs(self) -> list[Path]:
        """The data folder and its usual subfolders (torchvision's layout, ...)."""
        return [self.root] + [self.root / s for s in self.subdirs]

    def candidate_dirs(self) -> list[Path]:
        """Where we look, in order: the data folder (and its usual subfolders), then -- only
        when the user named no folder -- the system copies."""
        system = [] if self.root_named_by_user else [Path(d) for d in self.system_dirs]
        return self.user_dirs() + system

    def missing_files(self, directory: Path) -> list[str]:
        return [f for f in self.required_files if self._resolve(directory, f) is None]

    def check_partial_copies(self) -> None:
        """A folder of the user's that holds some but not all files of the dataset is a mistake
        (a half-finished copy, or only the user's own training files): stop and say what is
        missing rather than read another copy."""
        for d in self.user_dirs():
            missing = self.missing_files(d)
            if missing and len(missing) < len(self.required_files):
                present = [f for f in self.required_files if f not in missing]
                raise DataNotFoundError(
                    f"{self.display_name}: {d} holds only part of the dataset ({', '.join(present)}); missing: "
                    f"{', '.join(missing)} (plain or .gz). Add the missing files there, or point "
                    "--data.init_args.data_dir at a complete copy.")

    def has_files(self, directory: Path) -> bool:
        return all(self._resolve(directory, f) is not None for f in self.required_files)

    @staticmethod
    def _resolve(directory: Path, name: str) -> Path | None:
        for candidate in (directory / name, directory / (name + ".gz")):
            if candidate.is_file():
                return candidate
        return None

    def locate(self) -> Path | None:
        self.check_partial_copies()
        for d in self.candidate_dirs():
            if self.has_files(d):
                return d
        return None

    def fetch(self, root: Path) -> None:  # pragma: no cover - needs the internet
        """Download into ``root`` (torchvision). Subclasses implement."""
        raise NotImplementedError

    @staticmethod
    def torchvision():
        """torchvision, which only the downloads need (the optional extra ``download``)."""
        try:
            import torchvision
        except ImportError:
            raise RuntimeError("downloads need torchvision: pip install 'lit_cert[download]'") from None
        return torchvision

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
        looked = "; ".join(str(d) + ("" if d.is_dir() else " (no such folder)") for d in self.candidate_dirs())
        files = ", ".join(f"{f}[.gz]" if "idx" in f else f for f in self.required_files)
        if self.root_named_by_user:
            source = "data_dir" if self.data_dir else "$LIT_CERT_DATA"
            where = (f"the {source} folder {self.root} (other copies are not used when a folder is named)")
        else:
            where = "the default folders"
        return (
            f"{self.display_name} not found in {where}: missing {files}. Looked in: {looked} ({reason}). "
            f"What to do: put the files in a folder and pass it as --data.init_args.data_dir=FOLDER "
            f"(or data.init_args.data_dir in the config){self.extra_hint()}, or run once with internet "
            "access and download: true."
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

    def source(self) -> str:
        """Where the data comes from, for the line :meth:`setup` prints."""
        return str(self.locate())

    #: set by a caller that checks the data first and prints :meth:`report` itself afterwards
    defer_report = False

    def report(self) -> None:
        """One line on stderr (rank 0): which dataset was read from where, with the split sizes."""
        if int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)) or 0) != 0:
            return
        shape = "x".join(str(v) for v in self.info.in_shape)
        print(f"lit_cert: data {self.display_name} from {self.source()}: {len(self.train_set)} training / "
              f"{len(self.val_set)} validation / {len(self.test_set)} test images ({shape}, "
              f"{self.info.num_classes} classes)", file=sys.stderr)

    def setup(self, stage: Optional[str] = None) -> None:
        if self.train_set is not None:
            return
        (x_tr, y_tr), (x_te, y_te) = self.load_arrays()
        self.check_arrays(x_tr, y_tr, "training")
        self.check_arrays(x_te, y_te, "test")
        n = len(y_tr)
        n_val = int(round(self.val_size * n)) if isinstance(self.val_size, float) else int(self.val_size)
        if not (0 < n_val < n or (self.val_size == 0 and n > 0)):
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
        if not self.defer_report:
            self.report()

    # ----------------------------------------------------------------- identity
    def public_name(self) -> str:
        """The dataset's name in configs (``FashionMNIST`` for both its plain and its Lightning
        class; a user's own class keeps its dotted path)."""
        for cls in type(self).__mro__:
            if vars(cls).get("CONFIG_NAME"):
                return cls.CONFIG_NAME
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def split_identity(self, split: str) -> dict:
        """Size and content fingerprint (SHA-256 of the served images and labels) of one split;
        cached, so a checkpoint save or a certify run pays for it once."""
        cache = self.__dict__.setdefault("_split_ids", {})
        if split not in cache:
            import hashlib

            ds = {"train": self.train_set, "val": self.val_set, "test": self.test_set}[split]
            if ds is None:
                raise RuntimeError("split_identity needs setup() first")
            digest = hashlib.sha256()
            digest.update(str(ds.images.dtype).encode() + str(tuple(ds.images.shape)).encode())
            digest.update(ds.images.contiguous().numpy().tobytes())
            digest.update(ds.labels.contiguous().numpy().tobytes())
            cache[split] = {"size": len(ds), "fingerprint": digest.hexdigest()}
        return cache[split]

    def identity(self, splits: Sequence[str] = ("train", "val", "test")) -> dict:
        """What the data is (a ``data-identity`` record, :mod:`lit_cert.files`): the dataset, its
        shape, classes and transforms, and each split's size and content fingerprint. Recorded in
        every checkpoint and certify folder, so a network is never evaluated on other data by
        mistake (:func:`lit_cert.runs.check_same_data`)."""
        info = self.info
        return {"dataset": self.public_name(), "name": info.name, "in_shape": list(info.in_shape),
                "num_classes": int(info.num_classes),
                "transforms": {"downsample": self.downsample, "mean": list(info.mean), "std": list(info.std)},
                "splits": {s: self.split_identity(s) for s in splits}}

    @property
    def base_shape(self) -> tuple[int, ...]:
        return self._base_shape or tuple(self.info.in_shape)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """Average-pool images to ``downsample`` x ``downsample`` (uint8 ones rounded back to
        uint8): small inputs for LP-based relaxations, pixel semantics (and eps) unchanged."""
        k = self.base_shape[1] // self.downsample
        pooled = torch.nn.functional.avg_pool2d(x.float(), k)
        if x.dtype != torch.uint8:
            return pooled.clamp(0, 1)
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

    def val_dataloader(self):
        if len(self.val_set) == 0:  # val_size 0: no validation (Lightning skips an empty list)
            return []
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training and (self.crop_padding > 0 or self.flip):
            x, y = batch
            batch = (random_crop_flip(x, self.crop_padding, self.flip, padding_mode=self.padding_mode), y)
        return batch

