"""The cascade over a dataset, sharded and resumable (the library behind ``lit_cert certify``).

Results go to ``OUT/shards/shard_NNNNN.json`` (one ``certify-shard`` file per ``shard_size``
samples, :mod:`lit_cert.files`, written atomically); a rerun skips finished shards, so an
interrupted run resumes. ``OUT/settings.json`` records what the shards were computed with -- the
checkpoint's content, the data's identity, the split, the cascade -- and a rerun with anything
different is refused, naming the settings that differ, instead of mixing results. Every shard
also carries the fingerprint of those settings, so a damaged ``settings.json`` is rewritten
rather than fatal, and a damaged, foreign or mismatched shard is recomputed with a notice.

Several workers share one run: worker ``K`` of ``N`` computes the shards ``s`` with
``s % N == K - 1`` into the same folder, so no two workers ever write the same shard; the
settings file is created atomically (the first worker creates it, the others compare with it),
and every worker's summary merges whatever shards exist, saying how many are still missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import torch

from lit_cert.certify.cascade import Cascade, Verdict
from lit_cert.errors import ConfigError
from lit_cert.files import CERTIFY_SETTINGS, CERTIFY_SHARD
from lit_cert.persist import DamagedFile, damage_notice, flatten, read_record, stamp, write_record


def settings_fingerprint(settings: dict) -> str:
    """SHA-256 of the settings' canonical JSON: what each shard carries to say what it belongs to."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def settings_differences(old: dict, new: dict, limit: int = 4) -> list[str]:
    """The settings that differ, by dotted key, with the value there and now (short)."""
    a, b = flatten(old), flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))

    def short(v):
        text = "not recorded" if v == "<absent>" else repr(v)
        return text if len(text) <= 24 else text[:10] + "..." + text[-8:]

    out = [f"{k}: {short(a.get(k, '<absent>'))} there, {short(b.get(k, '<absent>'))} now" for k in keys[:limit]]
    if len(keys) > limit:
        out.append(f"and {len(keys) - limit} more")
    return out


def check_settings(out: Path, settings: dict) -> str:
    """Record ``settings`` in ``out`` -- created atomically, so workers starting together agree
    on one file -- or refuse if the folder's shards were computed with other settings (naming
    the settings that differ). A damaged settings file is rewritten with a notice. Returns the
    settings' fingerprint, which every shard carries."""
    path = out / "settings.json"
    tmp = out / f".settings.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(stamp(CERTIFY_SETTINGS.kind, settings), indent=2))
    try:
        os.link(tmp, path)  # fails if it exists: the first worker's file wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    try:
        old = read_record(path, CERTIFY_SETTINGS.kind)
    except (DamagedFile, FileNotFoundError) as err:
        if isinstance(err, DamagedFile):
            damage_notice(err, "rewritten from this run's settings; each shard is checked by its own settings fingerprint",
                          "lit_cert certify")
        write_record(path, CERTIFY_SETTINGS.kind, settings)
        return settings_fingerprint(settings)
    differ = settings_differences(old, settings)
    if differ:
        raise ConfigError(f"{out} holds results of other settings ({'; '.join(differ)}). Resuming would mix them: "
                          "choose another --out")
    return settings_fingerprint(settings)


def _env_int(env, name: str) -> int:
    text = env.get(name)
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"--worker auto: the environment variable {name}={text!r} is not an integer") from None


def parse_worker(text: str, environ=None) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N), or ``"auto"``: from torchrun's ``RANK``/``WORLD_SIZE`` (K =
    RANK + 1), or a SLURM array task -- ``SLURM_ARRAY_TASK_ID`` counted from
    ``SLURM_ARRAY_TASK_MIN`` in steps of ``SLURM_ARRAY_TASK_STEP`` (``--array=0-6:2`` is tasks 0,
    2, 4, 6: workers 1..4 of 4) -- else 1/1. An inconsistent environment (a rank outside the world,
    a task id off the array's step, non-integers) is a ConfigError: a worker that computes
    nothing, or skips a shard forever, must not exit 0."""
    env = os.environ if environ is None else environ
    if text == "auto":
        if env.get("WORLD_SIZE") is not None or env.get("RANK") is not None:
            if env.get("WORLD_SIZE") is None or env.get("RANK") is None:
                raise ConfigError("--worker auto: RANK and WORLD_SIZE must be set together (torchrun sets both)")
            rank, world = _env_int(env, "RANK"), _env_int(env, "WORLD_SIZE")
            if world < 1 or not 0 <= rank < world:
                raise ConfigError(f"--worker auto: RANK={rank} is not a rank of WORLD_SIZE={world} (0 <= RANK < WORLD_SIZE)")
            return rank + 1, world
        if env.get("SLURM_ARRAY_TASK_ID") is not None:
            task = _env_int(env, "SLURM_ARRAY_TASK_ID")
            first = _env_int(env, "SLURM_ARRAY_TASK_MIN") if env.get("SLURM_ARRAY_TASK_MIN") is not None else 0
            step = _env_int(env, "SLURM_ARRAY_TASK_STEP") if env.get("SLURM_ARRAY_TASK_STEP") is not None else 1
            if step < 1 or task < first or (task - first) % step:
                raise ConfigError(f"--worker auto: SLURM_ARRAY_TASK_ID={task} is not on the array "
                                  f"(min {first}, step {step})")
            if env.get("SLURM_ARRAY_TASK_MAX") is not None:
                count = (_env_int(env, "SLURM_ARRAY_TASK_MAX") - first) // step + 1
            elif env.get("SLURM_ARRAY_TASK_COUNT") is not None:
                count = _env_int(env, "SLURM_ARRAY_TASK_COUNT")
            else:
                raise ConfigError("--worker auto: a SLURM array task needs SLURM_ARRAY_TASK_MAX or _COUNT (SLURM sets both)")
            k = (task - first) // step + 1
            if not 1 <= k <= count:
                raise ConfigError(f"--worker auto: SLURM_ARRAY_TASK_ID={task} is outside the array of {count} tasks "
                                  f"(min {first}, step {step})")
            return k, count
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


def read_shard(path: Path, fingerprint: str | None, indices: Sequence[int], notice: bool = True) -> list[Verdict] | None:
    """The verdicts of a finished shard, or None when it must be (re)computed: absent, damaged,
    foreign, computed with other settings, or not holding exactly the samples ``indices``."""
    try:
        payload = read_record(path, CERTIFY_SHARD.kind)
    except FileNotFoundError:
        return None
    except DamagedFile as err:
        if notice:
            damage_notice(err, "it is recomputed", "lit_cert certify")
        return None
    problem = None
    if payload["settings_sha256"] not in (None, fingerprint):
        problem = "computed with other settings"
    elif [v["index"] for v in payload["verdicts"]] != list(indices):
        problem = "holds other samples than this shard's"
    if problem:
        if notice:
            print(f"lit_cert certify: notice: {path} {problem}; it is recomputed", file=sys.stderr)
        return None
    return [Verdict.from_json(v) for v in payload["verdicts"]]


def certify_dataset(cascade: Cascade, dataset, out: Path, indices: Sequence[int], shard_size: int, batch_size: int,
                    device: torch.device | str = "cpu", progress: bool = True, worker: tuple[int, int] = (1, 1),
                    fingerprint: str | None = None) -> tuple[list[Verdict], int]:
    """Run ``cascade`` on ``dataset[i]`` for the ``indices`` (shard ``s`` holds positions
    ``s * shard_size ...`` of that list): this worker's shards (``worker = (K, N)``: the shards
    with ``s % N == K - 1``) that are not in ``out`` yet, each stamped with the settings
    ``fingerprint`` (:func:`check_settings`). Returns the verdicts of every valid shard found in
    ``out`` afterwards (any worker's) and the number of shards still missing. The progress bar
    moves per sample and names the stage running."""
    from tqdm import tqdm

    if shard_size < 1 or batch_size < 1:
        raise ConfigError(f"shard_size and batch_size must be >= 1, got {shard_size}, {batch_size}")
    (out / "shards").mkdir(parents=True, exist_ok=True)
    n = len(indices)
    k, workers = worker
    if not 1 <= k <= workers:
        raise ConfigError(f"worker {k}/{workers}: needs 1 <= K <= N")
    starts = list(range(0, n, shard_size))
    mine = [start for start in starts if (start // shard_size) % workers == k - 1]
    bar = tqdm(total=sum(min(n, s + shard_size) - s for s in mine), desc=f"certify {k}/{workers}", disable=not progress,
               file=sys.stderr, unit="sample")
    for start in mine:
        path = shard_path(out, start // shard_size)
        stop = min(n, start + shard_size)
        if read_shard(path, fingerprint, indices[start:stop]) is not None:  # finished before an interruption
            bar.update(stop - start)
            continue
        shard: list[Verdict] = []
        for b in range(start, stop, batch_size):
            idx = list(indices[b : min(stop, b + batch_size)])
            x = torch.stack([dataset[i][0] for i in idx]).to(device)
            y = torch.stack([torch.as_tensor(dataset[i][1]) for i in idx]).to(device)
            shard.extend(cascade.run(x, y, idx, progress=bar if progress else None))
        write_record(path, CERTIFY_SHARD.kind, {"settings_sha256": fingerprint, "verdicts": [v.to_json() for v in shard]},
                     indent=None)
    bar.close()
    results: list[Verdict] = []
    missing = 0
    for start in starts:
        got = read_shard(shard_path(out, start // shard_size), fingerprint, indices[start:min(n, start + shard_size)],
                         notice=False)
        if got is None:
            missing += 1  # another worker's, not finished (yet), or damaged: its worker recomputes it
        else:
            results.extend(got)
    return results, missing
