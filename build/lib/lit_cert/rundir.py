"""Run directories: every run gets its own ``<root>/runs/lit_cert/<run id>/``, logger or not."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from lit_cert.errors import ConfigError

RUN_ID_ENV = "LIT_CERT_RUN_ID"


def new_run_id() -> str:
    """A fresh run id (time stamp + random suffix). DDP ranks launched by rank 0 (they carry a
    LOCAL_RANK > 0) reuse the id rank 0 put into the environment before launching them."""
    if int(os.environ.get("LOCAL_RANK", 0) or 0) > 0 and os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    os.environ[RUN_ID_ENV] = run_id
    return run_id


def ensure_writable_dir(path: str | Path, what: str = "output directory") -> Path:
    """Create ``path`` (and parents) and check that files can be written there; a ConfigError
    naming the path otherwise (read-only file system, a file in the way, no permission)."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".lit_cert_write_test_{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"cannot write to the {what} {p}: {err.strerror or err}. Choose a writable location.") from None
    return p
