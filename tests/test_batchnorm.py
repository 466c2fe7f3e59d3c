"""BatchNorm conventions: one value per channel is refused like torch does, the loaders drop a
last batch too small for it, and a fit with such a remainder stays finite."""

import glob

import pytest
import torch
from torch import nn

from lit_cert.commands import main
from lit_cert.data import SyntheticImages
from lit_cert.layers import BatchNorm1d, BatchNorm2d

from .helpers import SYNTHETIC, write_config


@pytest.mark.parametrize("ours,theirs,shape", [(BatchNorm1d(4), nn.BatchNorm1d(4), (1, 4)), (BatchNorm2d(4), nn.BatchNorm2d(4), (1, 4, 1, 1))])
def test_batchnorm_refuses_one_value_per_channel_like_torch(ours, theirs, shape):
    x = torch.randn(shape)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        theirs.train()(x)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        ours.train()(x)
    ours(torch.randn(1, 4, 2, 2)) if isinstance(ours, BatchNorm2d) else ours(torch.randn(2, 4))  # more values: fine


def test_training_loader_drops_a_last_batch_of_one():
    dm = SyntheticImages(train_size=65, val_size=16, test_size=16, batch_size=32)  # 65 % 32 == 1
    dm.setup()
    sizes = [len(y) for _, y in dm.train_dataloader()]
    assert sizes == [32, 32]
    dm = SyntheticImages(train_size=66, val_size=16, test_size=16, batch_size=32)
    dm.setup()
    assert sorted(len(y) for _, y in dm.train_dataloader()) == [2, 32, 32]  # two samples are fine
    assert sum(len(y) for _, y in dm.val_dataloader()) == 16  # evaluation keeps every sample


def test_fit_with_batchnorm_and_a_one_sample_remainder_stays_finite(workdir):
    text = SYNTHETIC.replace("train_size: 64", "train_size: 65").replace("max_epochs: 2", "max_epochs: 1")
    cfg = write_config(workdir, text.replace("  max_epochs: 1", "  max_epochs: 1\n  logger: {class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: logs}}"))
    main(["fit", "--config", cfg, "--trainer.log_every_n_steps=1"])
    import csv

    rows = list(csv.DictReader(open(glob.glob(str(workdir / "logs" / "**" / "metrics.csv"), recursive=True)[0])))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(losses) == 2 and max(losses) < 100  # the 1-sample batch (loss ~1e9 before) is not trained on
