"""The cascade over a dataset, sharded and resumable (the library behind ``lit_cert certify``).

Results go to ``OUT/shards/shard_NNNNN.json`` (one file per ``shard_size`` samples, written
atomically: a temporary file renamed into place); a rerun skips finished shards, so an
interrupted run resumes. ``OUT/settings.json`` records what the shards were computed with and a
rerun with anything different is refused instead of mixing results.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Sequence

import torch

from lit_cert.certify.cascade import Cascade, Verdict
from lit_cert.errors import ConfigError


def check_settings(out: Path, settings: dict) -> None:
    """Refuse to resume into ``out`` if its shards were computed with other settings; else
    record ``settings`` there."""
    path = out / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if differ:
            details = "; ".join(f"{k}: {old.get(k)!r} there, {settings.get(k)!r} now" for k in differ[:4])
            raise ConfigError(f"{out} holds results of other settings ({details}). Resuming would mix them: "
                              "choose another --out or delete that folder.")
    path.write_text(json.dumps(settings, indent=2))


def shard_path(out: Path, index: int) -> Path:
    return out / "shards" / f"shard_{index:05d}.json"


def certify_dataset(cascade: Cascade, dataset, out: Path, indices: Sequence[int], shard_size: int, batch_size: int,
                    device: torch.device | str = "cpu", progress: bool = True) -> list[Verdict]:
    """Run ``cascade`` on ``dataset[i]`` for the ``indices`` (shard ``k`` holds positions
    ``k * shard_size ...`` of that list), skipping shards already in ``out``; returns every
    verdict, finished shards included."""
    from tqdm import tqdm

    (out / "shards").mkdir(parents=True, exist_ok=True)
    results: list[Verdict] = []
    n = len(indices)
    bar = tqdm(total=n, desc="certify", disable=not progress, file=sys.stderr)
    for start in range(0, n, shard_size):
        path = shard_path(out, start // shard_size)
        stop = min(n, start + shard_size)
        if path.is_file():  # finished before an interruption, with the same settings
            results.extend(Verdict.from_json(r) for r in json.loads(path.read_text()))
            bar.update(stop - start)
            continue
        shard: list[Verdict] = []
        for b in range(start, stop, batch_size):
            idx = list(indices[b : min(stop, b + batch_size)])
            x = torch.stack([dataset[i][0] for i in idx]).to(device)
            y = torch.stack([torch.as_tensor(dataset[i][1]) for i in idx]).to(device)
            shard.extend(cascade.run(x, y, idx))
            bar.update(len(idx))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([v.to_json() for v in shard]))
        os.replace(tmp, path)
        results.extend(shard)
    bar.close()
    return results
