"""The CNN7 certification table (issue #25 item 1) from ``lit_cert certify`` output folders,
complete or not: every shard present is read (a run stopped early covers the samples of its
finished shards, a prefix of the test set), summarised with the cascade's own ``summarize``, and
written as ``<folder>/summary_shards.json``; one table row per folder.

    python results/fashion_mnist_cnn7_eps0.1/summarize.py CERT_DIR_IBP CERT_DIR_SABR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lit_cert.certify.cascade import Verdict, summarize


def main(folders: list[str]) -> None:
    print("| run | samples | natural | PGD | certified | unknown (of correctly classified) | seconds per sample reaching each stage |")
    print("|---|---|---|---|---|---|---|")
    for folder in map(Path, folders):
        settings = json.loads((folder / "settings.json").read_text())
        stages = tuple(settings["cascade"]["stages"])
        results = [Verdict.from_json(r) for f in sorted((folder / "shards").glob("shard_*.json")) for r in json.loads(f.read_text())]
        s = summarize(results, stages)
        correct = s["samples"] - s["misclassified"]
        s["unknown_of_correct"] = s["unknown"] / correct if correct else None
        s["shards_read"] = len(list((folder / "shards").glob("shard_*.json")))
        (folder / "summary_shards.json").write_text(json.dumps(s, indent=2))
        per = ", ".join(f"{k} {s['stage_seconds'][k] / n:.2f} ({n})" for k, n in s["stage_samples"].items() if n)
        print(f"| {folder.name} | {s['samples']} | {100 * s['natural_accuracy']:.1f}% | {100 * s['pgd_accuracy']:.1f}% | "
              f"{100 * s['certified_accuracy']:.1f}% | {s['unknown']} ({100 * (s['unknown_of_correct'] or 0):.1f}%) | {per} |")


if __name__ == "__main__":
    main(sys.argv[1:])
