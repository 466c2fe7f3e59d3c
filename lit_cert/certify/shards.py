"""The cascade over a dataset, sharded and resumable (the library behind ``lit_cert certify``).

Results go to ``OUT/shards/shard_NNNNN.json`` (one file per ``shard_size`` samples, written
atomically: a temporary file renamed into place); a rerun skips finished shards, so an
interrupted run resumes. ``OUT/settings.json`` records what the shards were computed with and a
rerun with anything different is refused instead of mixing results.

Several workers share one run: worker ``K`` of ``N`` computes the shards ``s`` with
``s % N == K - 1`` into the same folder, so no two workers ever write the same shard; the
settings file is created atomically (the first worker creates it, the others compare with it),
and every worker's summary merges whatever shards exist, saying how many are still missing.
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
    """Record ``settings`` in ``out`` -- created atomically, so workers starting together agree
    on one file -- or refuse if the folder's shards were computed with other settings."""
    path = out / "settings.json"
    text = json.dumps(settings, indent=2)
    tmp = out / f".settings.{os.getpid()}.tmp"
    tmp.write_text(text)
    try:
        os.link(tmp, path)  # fails if it exists: the first worker's file wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    old = json.loads(path.read_text())
    differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
    if differ:
        details = "; ".join(f"{k}: {old.get(k)!r} there, {settings.get(k)!r} now" for k in differ[:4])
        raise ConfigError(f"{out} holds results of other settings ({details}). Resuming would mix them: "
                          "choose another --out or delete that folder.")


def parse_worker(text: str, environ=None) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N), or ``"auto"``: the rank and world size that torchrun sets
    (``RANK``/``WORLD_SIZE``) or a SLURM array's task (``SLURM_ARRAY_TASK_ID`` counted from
    ``SLURM_ARRAY_TASK_MIN``, of ``SLURM_ARRAY_TASK_COUNT``), else 1/1."""
    env = os.environ if environ is None else environ
    if text == "auto":
        if env.get("WORLD_SIZE") and env.get("RANK"):
            return int(env["RANK"]) + 1, int(env["WORLD_SIZE"])
        if env.get("SLURM_ARRAY_TASK_COUNT") and env.get("SLURM_ARRAY_TASK_ID"):
            first = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
            return int(env["SLURM_ARRAY_TASK_ID"]) - first + 1, int(env["SLURM_ARRAY_TASK_COUNT"])
        return 1, 1
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--worker takes K/N (e.g. 1/4) or auto, got {text!r}") from None
    if not 1 <= k <= n:
        raise ConfigError(f"--worker K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def shard_path(out: Path, index: int) -> Path:
    return out / "shards" / f"shard_{index:05d}.json"


def certify_dataset(cascade: Cascade, dataset, out: Path, indices: Sequence[int], shard_size: int, batch_size: int,
                    device: torch.device | str = "cpu", progress: bool = True, worker: tuple[int, int] = (1, 1)
                    ) -> tuple[list[Verdict], int]:
    """Run ``cascade`` on ``dataset[i]`` for the ``indices`` (shard ``s`` holds positions
    ``s * shard_size ...`` of that list): this worker's shards (``worker = (K, N)``: the shards
    with ``s % N == K - 1``) that are not in ``out`` yet. Returns the verdicts of every shard
    found in ``out`` afterwards (any worker's) and the number of shards still missing."""
    from tqdm import tqdm

    (out / "shards").mkdir(parents=True, exist_ok=True)
    n = len(indices)
    k, workers = worker
    starts = list(range(0, n, shard_size))
    mine = [start for start in starts if (start // shard_size) % workers == k - 1]
    bar = tqdm(total=sum(min(n, s + shard_size) - s for s in mine), desc=f"certify {k}/{workers}", disable=not progress,
               file=sys.stderr)
    for start in mine:
        path = shard_path(out, start // shard_size)
        stop = min(n, start + shard_size)
        if path.is_file():  # finished before an interruption, with the same settings
            bar.update(stop - start)
            continue
        shard: list[Verdict] = []
        for b in range(start, stop, batch_size):
            idx = list(indices[b : min(stop, b + batch_size)])
            x = torch.stack([dataset[i][0] for i in idx]).to(device)
            y = torch.stack([torch.as_tensor(dataset[i][1]) for i in idx]).to(device)
            shard.extend(cascade.run(x, y, idx))
            bar.update(len(idx))
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([v.to_json() for v in shard]))
        os.replace(tmp, path)
    bar.close()
    results: list[Verdict] = []
    missing = 0
    for start in starts:
        path = shard_path(out, start // shard_size)
        if path.is_file():
            results.extend(Verdict.from_json(r) for r in json.loads(path.read_text()))
        else:
            missing += 1  # another worker's, not finished (yet)
    return results, missing
