"""Reading checkpoints safely: existence, integrity, content hash and shape checks.

Every command that takes a checkpoint (``fit --ckpt_path``, ``test``, ``certify``, ``export``,
``analyze``) reads it through :func:`read_checkpoint`, so a missing, truncated or foreign file
is one clear :class:`~lit_cert.errors.ConfigError` before anything is built or written.
Checkpoints hold plain data only and are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from lit_cert.errors import ConfigError


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents (on the CPU); a ConfigError if it is missing or unreadable."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - zip, pickle and EOF errors all mean "not readable"
        raise ConfigError(f"{path} is not a readable checkpoint (truncated or corrupt?): {type(err).__name__}: {err}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(f"{path} is not a Lightning checkpoint (no state_dict)")
    return ckpt


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes: identifies a checkpoint's *contents*, not its path."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_state_fits(module: nn.Module, state_dict: dict, source: str) -> None:
    """ConfigError naming the first mismatches if ``state_dict`` does not fit ``module``."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
             for k, v in own.items() if k in state_dict and hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(wrong)} tensors of another shape ({'; '.join(wrong[:3])})" if wrong else "",
                 f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else ""]
        raise ConfigError(f"{source} does not fit this model/data: " + ", ".join(p for p in parts if p)
                          + ". Was it trained with another network, dataset or number of classes?")
