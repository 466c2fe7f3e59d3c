"""Verdicts: what the runs say about a claim of the paper.

The rule (the project's claims rule, ``docs/reproducing.md``):

* **reproduced** -- every row of the claim has >= 3 finished seeds, the means are in the claimed
  order, and every gap between neighbours exceeds the sum of their sample standard deviations;
* **direction seen** -- the means are in the claimed order, but a row has fewer than 3 seeds or a
  gap is within the spread;
* **not seen** -- the means are not in the claimed order;
* **not tested at this scale** -- a row of the claim has no finished run.

A scale whose measurement is exact (deterministic computations on fixed networks) needs one run:
its claims are reproduced when they hold.

An ``at_most`` (``at_least``) claim is reproduced when mean + std is at most (mean - std at least)
the bound over >= 3 seeds, seen when the mean is, and not seen otherwise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from lit_cert.reproduce.spec import Claim

REPRODUCED, SEEN, NOT_SEEN, NOT_TESTED = "reproduced", "direction seen", "not seen", "not tested at this scale"
MIN_SEEDS = 3


@dataclass(frozen=True)
class Summary:
    """A row's metric over its seeds."""

    n: int
    mean: float
    std: float  # sample standard deviation; nan for one seed

    def text(self, scale: float = 1.0, digits: int = 3) -> str:
        if self.n == 0:
            return "-"
        if self.n == 1:
            return f"{scale * self.mean:.{digits}f}"
        return f"{scale * self.mean:.{digits}f} ± {scale * self.std:.{digits}f}"


def summarise(values: list[float]) -> Summary:
    values = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return Summary(0, math.nan, math.nan)
    return Summary(len(values), statistics.mean(values), statistics.stdev(values) if len(values) > 1 else math.nan)


def verdict(claim: Claim, summary_of, exact: bool = False) -> tuple[str, str]:
    """``(verdict, why)`` of ``claim``; ``summary_of(row, metric)`` is that value's :class:`Summary`
    over the row's seeds. ``exact``: the values are deterministic (no noise): one run decides."""
    items = claim.items
    stats = {item: summary_of(*item) for item in items}
    name = {item: item[0] if item[1] == claim.metric else f"{item[0]} {item[1]}" for item in items}
    missing = [name[i] for i in items if stats[i].n == 0]
    if missing:
        return NOT_TESTED, f"no finished run of {', '.join(missing)}"
    few = [] if exact else [name[i] for i in items if stats[i].n < MIN_SEEDS]
    if exact:
        stats = {i: Summary(s.n, s.mean, 0.0) for i, s in stats.items()}
    seeds = "exact measurement" if exact else f"{min(stats[i].n for i in items)} seeds or more"
    if claim.at_most is not None or claim.at_least is not None:
        sign, op = (1.0, "<=") if claim.at_most is not None else (-1.0, ">=")
        item, bound = items[0], (claim.at_most or claim.at_least)[1]
        s = stats[item]
        if sign * (s.mean - bound) > 0:
            return NOT_SEEN, f"{name[item]}: {s.mean:.4g}, not {op} {bound:g}"
        if not few and sign * (s.mean - bound) + s.std <= 0:
            return REPRODUCED, f"{name[item]}: {s.mean:.4g} ± {s.std:.2g} {op} {bound:g} ({seeds})"
        return SEEN, f"{name[item]}: mean {s.mean:.4g} {op} {bound:g}" + (
            f"; fewer than {MIN_SEEDS} seeds" if few else "; not by more than the spread")
    pairs = list(zip(items, items[1:]))
    wrong = [(a, b) for a, b in pairs if not stats[a].mean < stats[b].mean]
    if wrong:
        a, b = wrong[0]
        return NOT_SEEN, f"{name[a]} {stats[a].mean:.4g} >= {name[b]} {stats[b].mean:.4g}"
    # a spread of nan (one seed) is never "outside"
    close = [(a, b) for a, b in pairs if not stats[b].mean - stats[a].mean > stats[a].std + stats[b].std]
    if not few and not close:
        return REPRODUCED, f"every gap outside the spread ({seeds})"
    if few:
        return SEEN, f"{', '.join(dict.fromkeys(few))}: fewer than {MIN_SEEDS} seeds"
    return SEEN, "gap within the spread: " + ", ".join(f"{name[a]} / {name[b]}" for a, b in close)
