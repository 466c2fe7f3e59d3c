"""Writing results: a CSV of rows and a line plot of named series -- what every analysis,
results script and sweep evaluation writes next to its numbers. Both are written atomically
(:mod:`lit_cert.persist`): inside :func:`lit_cert.persist.staged` they appear only when the whole
computation succeeded, so a failure never empties or half-writes an earlier result."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lit_cert.persist import atomic_path


def save_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> None:
    """``rows`` as CSV; an empty table is refused (it would replace a result with nothing)."""
    if not rows:
        from lit_cert.errors import ConfigError

        raise ConfigError(f"no rows to write to {path}: the settings selected nothing to compute")
    header = header or list(rows[0])
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


def save_plot(path: Path, series: dict, xlabel: str, ylabel: str, logx: bool = False, logy: bool = False, title: str = "") -> None:
    """``series``: label -> (xs, ys, matplotlib style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = len(series) > 6  # many curves: legend beside the axes instead of over the data
    fig, ax = plt.subplots(figsize=(8.0 if wide else 5.5, 3.8))
    for label, (xs, ys, style) in series.items():
        ax.plot(xs, ys, style, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if wide:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)


def column(rows: list[dict], key: str, **where) -> list:
    """The values of ``key`` in the rows matching every ``where`` item."""
    return [r[key] for r in rows if all(r[k] == v for k, v in where.items())]


class RowCache:
    """Finished evaluations of runs, one JSON row per line of ``path`` keyed by ``row["run"]``:
    a results script's rerun evaluates only the runs it has not seen (rows are appended as they
    are made, so an interrupted script loses at most the row in progress)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        self.rows = {}
        for line in lines:  # a torn last line (an interrupted append) is evaluated again
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "run" in row:
                self.rows[row["run"]] = row

    def get(self, run: str) -> dict | None:
        return self.rows.get(run)

    def add(self, row: dict) -> None:
        self.rows[row["run"]] = row
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
