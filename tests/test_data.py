"""DataModules read the real on-disk formats (written here in small files) and find local copies."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from lit_cert.data import CIFAR10, MNIST, SVHN, DataNotFoundError, FashionMNIST, SyntheticImages, random_crop_flip
from lit_cert.errors import ConfigError, DataError
from lit_cert.data.mnist import read_idx

from .helpers import make_idx_dataset, write_idx


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_loaders(tmp_path, cls, gz):
    data = make_idx_dataset(tmp_path / "raw", gz=gz)
    dm = cls(data_dir=str(tmp_path / "raw"), batch_size=8, val_size=10, download=False)
    dm.prepare_data()
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (50, 10, 20)
    x, y = dm.test_set[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.from_numpy(data["t10k"][0][3]).float() / 255)
    assert y.item() == data["t10k"][1][3]
    # train + val together are exactly the training file, split by a fixed seed
    all_train = torch.cat([dm.train_set.labels, dm.val_set.labels]).sort().values
    assert torch.equal(all_train, torch.from_numpy(data["train"][1].astype(np.int64)).sort().values)
    dm2 = cls(data_dir=str(tmp_path / "raw"), val_size=10, download=False)
    dm2.setup()
    assert torch.equal(dm.val_set.labels, dm2.val_set.labels)
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (8, 1, 28, 28) and 0 <= xb.min() and xb.max() <= 1


def test_torchvision_layout_is_found(tmp_path):
    make_idx_dataset(tmp_path / "FashionMNIST" / "raw")
    dm = FashionMNIST(data_dir=str(tmp_path), val_size=5, download=False)
    assert dm.locate() == tmp_path / "FashionMNIST" / "raw"


def test_read_idx_rejects_garbage(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(p)


def test_cifar10_pickle_batches(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    expected = {}
    for name, n in [(f"data_batch_{i}", 6) for i in range(1, 6)] + [("test_batch", 7)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        with open(d / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)
        expected[name] = (data, labels)
    dm = CIFAR10(data_dir=str(tmp_path), val_size=5, download=False)
    dm.prepare_data()
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (25, 5, 7)
    x, y = dm.test_set[2]
    assert x.shape == (3, 32, 32)
    assert torch.allclose(x, torch.from_numpy(expected["test_batch"][0][2].reshape(3, 32, 32)).float() / 255)
    assert y.item() == expected["test_batch"][1][2]
    assert dm.crop_padding == 2  # CIFAR default augmentation


def test_svhn_mat_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 5)):
        X = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)  # 10 means digit 0
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": y})
        if split == "test":
            X_test, y_test = X, y
    dm = SVHN(data_dir=str(tmp_path), val_size=2, download=False)
    dm.prepare_data()
    dm.setup()
    assert (len(dm.train_set), len(dm.test_set)) == (10, 5)
    x, label = dm.test_set[4]
    assert torch.allclose(x, torch.from_numpy(X_test[:, :, :, 4].transpose(2, 0, 1).copy()).float() / 255)
    assert label.item() == y_test[4, 0] % 10


def test_missing_data_gives_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "system_dirs", ())
    dm = FashionMNIST(data_dir=str(tmp_path / "nothing"), download=False)
    with pytest.raises(DataNotFoundError) as err:
        dm.prepare_data()
    msg = str(err.value)
    assert "Fashion-MNIST not found" in msg and str(tmp_path / "nothing") in msg
    assert "data_dir" in msg and "apt-get install dataset-fashion-mnist" in msg


def test_failed_download_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "system_dirs", ())

    def no_network(self, root):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(MNIST, "fetch", no_network)
    with pytest.raises(DataNotFoundError, match="download failed: ConnectionError: no route to host"):
        MNIST(data_dir=str(tmp_path)).prepare_data()


DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir() and not os.environ.get("CI"), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no ./data here, and no folder named: the system copy is used
    monkeypatch.delenv("LIT_CERT_DATA", raising=False)
    dm = FashionMNIST(download=False, val_size=5000)
    dm.prepare_data()
    assert dm.locate() == DEBIAN_FMNIST
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (55000, 5000, 10000)
    assert dm.test_set.images.shape == (10000, 1, 28, 28)
    assert sorted(dm.test_set.labels.unique().tolist()) == list(range(10))
    mean = dm.test_set.images.float().mean().item() / 255
    assert abs(mean - FashionMNIST.info.mean[0]) < 0.01
    assert (f"lit_cert: data Fashion-MNIST from {DEBIAN_FMNIST}: 55000 training / 5000 validation / 10000 test images"
            in capsys.readouterr().err)


@pytest.mark.parametrize("idx_type", [np.float32, np.float64])
def test_float_idx_pixels_are_read_as_floats_not_blanked(tmp_path, idx_type):
    """Float IDX images in [0, 1] (types 0x0D/0x0E) keep their values; a cast to bytes would make
    every pixel 0 and train on blank images."""
    data = make_idx_dataset(tmp_path, n_train=30, n_test=10)
    for prefix in ("train", "t10k"):
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").unlink()
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", data[prefix][0] / 255.0, dtype=idx_type)
    dm = MNIST(data_dir=str(tmp_path), val_size=5, download=False, downsample=4)
    dm.setup()
    x, _ = dm.test_set[0]
    expected = torch.nn.functional.avg_pool2d(torch.from_numpy(data["t10k"][0][:1] / 255.0).float()[None], 7)[0]
    assert x.dtype == torch.float32 and x.max() > 0.2
    assert torch.allclose(x, expected, atol=1e-6)
    full = MNIST(data_dir=str(tmp_path), val_size=5, download=False)
    full.setup()
    assert torch.allclose(full.test_set[3][0][0], torch.from_numpy(data["t10k"][0][3]).float() / 255, atol=1e-6)


@pytest.mark.parametrize("values, message", [
    (lambda x: x.astype(np.float32), r"float pixels range over \[0, 255\], expected \[0, 1\]"),
    (lambda x: np.where(x > 128, np.nan, x / 255.0), "NaN or infinite"),
    (lambda x: x.astype(np.int16) * 3, r"integer pixels range over \[0, 765\]"),
])
def test_pixels_outside_their_range_are_refused(tmp_path, values, message):
    data = make_idx_dataset(tmp_path, n_train=30, n_test=10)
    raw = values(data["train"][0])
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    write_idx(tmp_path / "train-images-idx3-ubyte", raw, dtype=raw.dtype if raw.dtype != np.float64 else np.float32)
    with pytest.raises(DataError, match=message):
        MNIST(data_dir=str(tmp_path), val_size=5, download=False).setup()


def test_a_named_folder_is_used_or_refused_never_replaced(tmp_path, monkeypatch):
    """data_dir (or $LIT_CERT_DATA) that lacks the files stops with what is missing -- never the
    system copy instead: a typo, an empty folder, or only some of the files."""
    make_idx_dataset(tmp_path / "system")
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(tmp_path / "system"),))
    monkeypatch.delenv("LIT_CERT_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    partial = tmp_path / "partial"
    make_idx_dataset(partial)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (partial / name).unlink()
    for folder, message in ((tmp_path / "typo", "no such folder"), (tmp_path / "empty", "missing"),
                            (partial, "holds only part of the dataset")):
        dm = FashionMNIST(data_dir=str(folder), download=False)
        with pytest.raises(DataNotFoundError, match=message) as err:
            dm.prepare_data()
        assert str(folder) in str(err.value) and str(tmp_path / "system") not in str(err.value)
        assert "t10k-images-idx3-ubyte" in str(err.value)
    monkeypatch.setenv("LIT_CERT_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError, match=r"\$LIT_CERT_DATA folder"):
        FashionMNIST(download=False).prepare_data()
    monkeypatch.delenv("LIT_CERT_DATA")
    monkeypatch.chdir(tmp_path / "empty")  # nothing named: ./data, then the system copy
    assert FashionMNIST(download=False).locate() == tmp_path / "system"


def test_random_crop_flip_is_a_shift_and_mirror():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    g = torch.Generator().manual_seed(0)
    out = random_crop_flip(x, padding=0, flip=False, generator=g)
    assert torch.equal(out, x)
    out = random_crop_flip(x, padding=2, flip=False, generator=g)
    assert out.shape == x.shape
    # each crop is a translated copy: its non-zero values appear in x in the same order
    for b in range(2):
        vals = out[b][out[b] != 0]
        assert torch.all(torch.isin(vals, x[b]))
    flipped = random_crop_flip(x, padding=0, flip=True, generator=torch.Generator().manual_seed(1))
    for b in range(2):
        assert torch.equal(flipped[b], x[b]) or torch.equal(flipped[b], x[b].flip(-1))


def test_synthetic_is_deterministic_and_learnable_shape():
    a, b = SyntheticImages(seed=3), SyntheticImages(seed=3)
    a.setup()
    b.setup()
    assert torch.equal(a.train_set.images, b.train_set.images)
    assert a.info.in_shape == (1, 12, 12) and a.info.num_classes == 4


def test_downsample_and_train_size(tmp_path):
    data = make_idx_dataset(tmp_path / "raw")
    dm = FashionMNIST(data_dir=str(tmp_path / "raw"), batch_size=8, val_size=10, download=False, downsample=4, train_size=20)
    dm.setup()
    assert dm.info.in_shape == (1, 4, 4) and (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (20, 10, 20)
    x, _ = dm.test_set[0]
    block = torch.from_numpy(data["t10k"][0][0]).float()[:7, :7].mean()  # 7x7 average pooling, as uint8
    assert x.shape == (1, 4, 4) and x[0, 0, 0].item() == pytest.approx(torch.round(block).item() / 255)
    full = FashionMNIST(data_dir=str(tmp_path / "raw"), val_size=10, download=False)
    full.setup()
    assert torch.equal(dm.val_set.labels, full.val_set.labels)  # the same validation split
    assert set(dm.train_set.labels.tolist()) <= set(full.train_set.labels.tolist())
    for bad in ({"downsample": 5}, {"train_size": 0}):
        with pytest.raises(ConfigError):
            FashionMNIST(data_dir=str(tmp_path / "raw"), download=False, **bad)
    with pytest.raises(ConfigError, match="train_size"):
        big = FashionMNIST(data_dir=str(tmp_path / "raw"), val_size=10, download=False, train_size=51)
        big.setup()
