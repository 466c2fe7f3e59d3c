"""Two ``lit_cert certify`` folders of the same samples, verdict by verdict (issue #37: the CNN7
table rerun with a new engine must keep the verdicts).

Reads every shard of both folders (``OUT/shards/shard_*.json``, validated as ``certify-shard``
records) and prints: per folder the counts of each status and, per stage, the samples that reached
it and its total seconds; then every sample whose verdict differs (status and deciding stage), and
the *contradictions* -- a sample certified in one folder and falsified in the other, which no two
sound runs can produce. Exit status 1 if there is a contradiction.

    python benchmarks/certification/compare_certify_runs.py OLD_FOLDER NEW_FOLDER
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from lit_cert.certify.cascade import Verdict
from lit_cert.files import CERTIFY_SHARD
from lit_cert.persist import read_record


def verdicts(folder: Path) -> dict[int, Verdict]:
    shards = sorted((folder / "shards").glob("shard_*.json"))
    if not shards:
        sys.exit(f"compare_certify_runs: error: {folder} holds no shards")
    out = {}
    for path in shards:
        for v in read_record(path, CERTIFY_SHARD.kind)["verdicts"]:
            out[v["index"]] = Verdict.from_json(v)
    return out


def describe(name: str, runs: dict[int, Verdict]) -> None:
    statuses = Counter(v.status for v in runs.values())
    stages = sorted({s for v in runs.values() for s in v.seconds})
    reached = {s: sum(s in v.seconds for v in runs.values()) for s in stages}
    seconds = {s: sum(v.seconds.get(s, 0.0) for v in runs.values()) for s in stages}
    print(f"{name}: {len(runs)} samples, " + ", ".join(f"{k} {n}" for k, n in sorted(statuses.items())))
    print("  stage reached / seconds: " + ", ".join(f"{s} {reached[s]} / {seconds[s]:.0f}" for s in stages)
          + f"; all stages {sum(seconds.values()):.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = p.parse_args()
    a, b = verdicts(args.a), verdicts(args.b)
    describe(str(args.a), a)
    describe(str(args.b), b)
    common = sorted(set(a) & set(b))
    if set(a) != set(b):
        print(f"samples in one folder only: {len(set(a) ^ set(b))}; compared on the {len(common)} in both")
    differ = [i for i in common if (a[i].status, a[i].stage) != (b[i].status, b[i].stage)]
    contradictions = [i for i in common if {a[i].status, b[i].status} == {"certified", "falsified"}]
    for i in differ:
        print(f"  sample {i}: {a[i].status} by {a[i].stage} ({a[i].reason or ''}) | "
              f"{b[i].status} by {b[i].stage} ({b[i].reason or ''})")
    same_status = sum(a[i].status == b[i].status for i in common)
    print(f"same status: {same_status} of {len(common)}; same status and stage: {len(common) - len(differ)}; "
          f"contradictions: {len(contradictions)} {contradictions if contradictions else ''}")
    sys.exit(1 if contradictions else 0)


if __name__ == "__main__":
    main()
