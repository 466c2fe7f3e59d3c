"""The report of a reproduction, from its records: ``table.md`` (ours as mean ± std over seeds
with the paper's numbers beside them, a verdict per claim, the scale's differences from the
paper), ``table.csv`` (the same numbers, unrounded) and ``figure.png`` when the spec has a figure.
Every number is computed from ``records.jsonl``; nothing is typed in."""

from __future__ import annotations

import math
from pathlib import Path

from lit_cert.reproduce.claims import Summary, summarise, verdict
from lit_cert.reproduce.runner import current_records, minutes_per_run, stale_records
from lit_cert.reproduce.spec import Experiment, Scale


def summaries(scale: Scale, found: dict, metric: str) -> dict[str, Summary]:
    return {row.name: summarise([r["metrics"].get(metric) for (name, _), r in sorted(found.items()) if name == row.name])
            for row in scale.rows}


def paper_value(exp: Experiment, row: str, metric: str):
    for p in exp.paper_numbers:
        if p.row == row and p.metric == metric:
            return p.value
    return None


def table_rows(exp: Experiment, scale: Scale, found: dict) -> list[dict]:
    """One dict per row: seeds, mean/std of each column's metric, the paper's number."""
    stats = {c.metric: summaries(scale, found, c.metric) for c in exp.columns}
    rows = []
    for row in scale.rows:
        seeds = sorted(s for (name, s) in found if name == row.name)
        out = {"row": row.name, "seeds": len(seeds)}
        for c in exp.columns:
            s = stats[c.metric][row.name]
            out[f"{c.metric}_mean"] = s.mean
            out[f"{c.metric}_std"] = s.std
            paper = paper_value(exp, row.name, c.metric)
            if paper is not None:
                out[f"{c.metric}_paper"] = paper
        rows.append(out)
    return rows


def markdown(exp: Experiment, scale: Scale, records: list[dict], command: str) -> str:
    found = current_records(exp, scale, records)
    stale = stale_records(exp, scale, records)
    runs = table_rows(exp, scale, found)
    with_paper = {c.metric for c in exp.columns if any(p.metric == c.metric for p in exp.paper_numbers)}
    sources = sorted({r["commit"] or "unknown" for r in found.values()})
    minutes, basis = minutes_per_run(scale, list(found.values()))
    lines = [f"# {exp.title}", "",
             f"{exp.paper} ({exp.seed_file}), {exp.target}. Scale **{scale.name}** ({scale.hardware}).", "",
             f"Written by `{command}` from `records.jsonl`: {len(found)} finished run(s) of "
             f"{len(scale.rows)} row(s), recorded at commit(s) {', '.join(sources) or '-'}"
             + (f"; {len(stale)} stale record(s) (their config or measure changed since) left out" if stale else "")
             + f". One run takes {minutes:.1f} min ({basis}).", "",
             ("The measurement is exact (deterministic): one run decides each claim." if scale.exact else
              "Ours: mean ± sample standard deviation over the seeds (one seed: the value alone).")
             + (" *paper*: the paper's number, in the same units." if with_paper else ""), ""]
    head = ["row", "seeds"]
    for c in exp.columns:
        head.append(c.heading)
        if c.metric in with_paper:
            head.append("paper")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    stats = {c.metric: summaries(scale, found, c.metric) for c in exp.columns}
    for row, out in zip(scale.rows, runs):
        cells = [row.name, str(out["seeds"])]
        for c in exp.columns:
            cells.append(stats[c.metric][row.name].text(c.scale, c.digits))
            if c.metric in with_paper:
                p = paper_value(exp, row.name, c.metric)
                cells.append("-" if p is None else f"*{p:g}*")
        lines.append("| " + " | ".join(cells) + " |")
    if exp.claims:
        lines += ["", "## Claims", "", "| claim | paper | metric | verdict | why |", "|---|---|---|---|---|"]
        for claim, (_, v, why) in zip(exp.claims, verdicts(exp, scale, records)):
            lines.append(f"| {claim.text} | {claim.where} | {claim.metric} | **{v}** | {why} |")
    if scale.differences:
        lines += ["", f"## How the {scale.name} scale differs from the paper", ""]
        lines += [f"* {d}" for d in scale.differences]
    if exp.notes:
        lines += ["", "## Notes", ""] + [f"* {n}" for n in exp.notes]
    return "\n".join(lines) + "\n"


def verdicts(exp: Experiment, scale: Scale, records: list[dict]) -> list[tuple[str, str, str]]:
    """``(claim text, verdict, why)`` of each claim, from the records."""
    found = current_records(exp, scale, records)
    return [(claim.text, *verdict(claim, lambda row, metric: summaries(scale, found, metric).get(row, summarise([])),
                                  scale.exact)) for claim in exp.claims]


def verdict_counts(exp: Experiment, scale: Scale, records: list[dict]) -> str:
    """``"2 reproduced, 1 direction seen"``: the claims' verdicts counted, in the rule's order."""
    from lit_cert.reproduce.claims import NOT_SEEN, NOT_TESTED, REPRODUCED, SEEN

    got = [v for _, v, _ in verdicts(exp, scale, records)]
    return ", ".join(f"{got.count(v)} {v}" for v in (REPRODUCED, SEEN, NOT_SEEN, NOT_TESTED) if got.count(v)) or "no claims"


def figure(exp: Experiment, scale: Scale, found: dict, path: Path) -> bool:
    """The spec's figure from the records; False when there is nothing to plot."""
    from lit_cert.reports import save_plot

    fig = exp.figure
    if fig is None or not found:
        return False
    markers = "osD^vx*+"
    series: dict = {}
    if fig.kind == "line":
        groups: dict = {}
        for row in scale.rows:
            if fig.x not in row.values:
                continue
            s = summarise([r["metrics"].get(fig.y) for (name, _), r in found.items() if name == row.name])
            if s.n:
                groups.setdefault(row.values.get(fig.series, "") if fig.series else "", []).append((row.values[fig.x], s.mean))
        for i, (label, pts) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
            pts.sort()
            series[f"{label} (mean over seeds)" if label != "" else fig.y] = ([p[0] for p in pts], [p[1] for p in pts],
                                                                                 markers[i % len(markers)] + "-")
    else:
        groups = {}
        for (name, _), r in found.items():
            row = scale.row(name)
            x, y = r["metrics"].get(fig.x), r["metrics"].get(fig.y)
            if x is None or y is None or (isinstance(y, float) and math.isnan(y)):
                continue
            groups.setdefault(str(row.values.get(fig.series, "")) if fig.series else "runs", []).append((x, y))
        for i, (label, pts) in enumerate(sorted(groups.items())):
            series[label] = ([p[0] for p in pts], [p[1] for p in pts], markers[i % len(markers)])
    if not series:
        return False
    save_plot(path, series, fig.xlabel or fig.x, fig.ylabel or fig.y, logx=fig.logx,
              title=f"{exp.paper} {exp.target}, scale {scale.name}")
    return True


def write_report(exp: Experiment, scale: Scale, records: list[dict], out: Path, command: str) -> list[Path]:
    """Write table.md, table.csv (and figure.png) under ``out``; the paths written."""
    from lit_cert.persist import write_text
    from lit_cert.reports import save_csv

    found = current_records(exp, scale, records)
    written = [write_text(out / "table.md", markdown(exp, scale, records, command))]
    rows = table_rows(exp, scale, found)
    save_csv(out / "table.csv", rows, header=list(dict.fromkeys(k for r in rows for k in r)))
    written.append(out / "table.csv")
    if figure(exp, scale, found, out / "figure.png"):
        written.append(out / "figure.png")
    return written
