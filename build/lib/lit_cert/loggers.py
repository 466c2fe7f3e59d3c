"""A W&B logger that never needs an account and never prompts.

Mode resolution (first that applies): the ``mode`` argument; the ``WANDB_MODE`` environment
variable; ``online`` when credentials exist (``WANDB_API_KEY`` or an ``api.wandb.ai`` entry in
``~/.netrc``, which ``wandb login`` writes); otherwise ``offline`` -- runs are written under
``save_dir/wandb/offline-run-*`` and can be uploaded later with ``wandb sync``.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Literal, Optional

from lightning.pytorch.loggers import WandbLogger

from lit_cert.rundir import ensure_writable_dir


def wandb_credentials_available() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and netrc.netrc(str(path)).authenticators("api.wandb.ai") is not None
    except (netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: Optional[str] = None) -> str:
    if mode:
        return mode
    env = os.environ.get("WANDB_MODE")
    if env:
        return env
    return "online" if wandb_credentials_available() else "offline"


class AutoWandbLogger(WandbLogger):
    """:class:`~lightning.pytorch.loggers.WandbLogger` with the mode chosen as described above.

    Args:
        save_dir: root of all runs; a run's files (config, checkpoints) go to
            ``save_dir/project/<run id>/`` and W&B's own files to ``save_dir/wandb/``.
        project, name, group, tags, entity: as in ``wandb.init``.
        mode: ``online``, ``offline`` or ``disabled``; ``None`` = automatic.
        id: the W&B run id, which is also the run directory's name (default: a new one). A run
            resumed from its checkpoint sets it to continue that run (``resume="allow"``).
    """

    def __init__(
        self,
        save_dir: str = "runs",
        project: str = "lit_cert",
        name: Optional[str] = None,
        group: Optional[str] = None,
        tags: Optional[list[str]] = None,
        entity: Optional[str] = None,
        mode: Optional[Literal["online", "offline", "disabled"]] = None,
        id: Optional[str] = None,  # noqa: A002 - wandb's name for it
    ):
        ensure_writable_dir(save_dir, "logger's save_dir")
        extra = {k: v for k, v in {"group": group, "tags": tags, "entity": entity}.items() if v}
        super().__init__(save_dir=save_dir, project=project, name=name, mode=resolve_wandb_mode(mode), id=id, **extra)
        self._wandb_init.pop("anonymous", None)  # deprecated in wandb; only produces a warning
