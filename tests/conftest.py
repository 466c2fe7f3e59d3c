"""Shared test set-up: W&B disabled, small thread count, deterministic seeds."""

import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Run in a fresh directory so run folders of different tests never mix."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
