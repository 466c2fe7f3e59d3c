"""What a reproduction *is*, as data: the paper's table or figure, its claims, its numbers, and
the runs that test them at each scale.

An :class:`Experiment` names the paper (a seed file of ``../shared/seeds``), the table or figure
and the claims (each a comparison the runs can decide, :class:`Claim`). Each :class:`Scale` (``cpu``:
the settings a 2-core machine runs in hours; ``paper``: the paper's dataset, network and epochs,
for a GPU) lists the rows (:class:`Row`: a config and its extra ``fit`` arguments, or an analysis),
the default number of seeds, what is measured on every run (:class:`Measure`) and how it differs
from the paper. The paper's numbers (:class:`PaperNumber`) each carry the fragment of the paper's
text they were read from, which a test finds in the seed file.

Nothing here runs anything: :mod:`lit_cert.reproduce.runner` runs a spec and
:mod:`lit_cert.reproduce.render` writes its report. The specs themselves are in
:mod:`lit_cert.reproduce.catalog`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from lit_cert.errors import ConfigError

SCALES = ("cpu", "paper")


@dataclass(frozen=True)
class Row:
    """One setting: the table row its runs fill.

    ``config`` (a ``fit`` config, repository-relative) with ``args`` (extra ``fit`` arguments) is
    trained once per seed; an experiment without training gives ``analysis`` instead: the
    ``lit_cert analyze`` arguments (the analysis name first), given ``--seed S * seed_stride`` per
    seed S when ``seed_option`` (an analysis with its own random networks; the stride keeps the
    seeds' networks apart when an analysis numbers its networks from its seed). ``values`` are the row's
    coordinates for figures and claims (``{"method": "IBP", "eps": 0.001}``)."""

    name: str
    config: Optional[str] = None
    args: tuple[str, ...] = ()
    analysis: tuple[str, ...] = ()
    seed_option: bool = False
    seed_stride: int = 1
    values: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self):
        if bool(self.config) == bool(self.analysis):
            raise ValueError(f"row {self.name!r}: give a config to train or an analysis, not both or neither")


@dataclass(frozen=True)
class Measure:
    """One measurement on each run: the name of a measure of :data:`lit_cert.reproduce.measures.MEASURES`
    and its options (``limit``: the first N test images; ``eps``: default the run's ``eps_test``)."""

    kind: str
    options: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Scale:
    """The runs of one scale. ``minutes_per_run`` is the cost of one run (training and
    measurement) on ``hardware``; ``cost_source`` says where that figure comes from (a
    measurement here, or an estimate and its basis). The measured mean of the committed records
    replaces it in ``--list`` when there are records. ``differences``: each way this scale
    departs from the paper's setting."""

    name: Literal["cpu", "paper"]
    rows: tuple[Row, ...]
    measures: tuple[Measure, ...]
    seeds: int
    minutes_per_run: float
    hardware: str
    cost_source: str
    differences: tuple[str, ...] = ()
    exact: bool = False

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)


@dataclass(frozen=True)
class PaperNumber:
    """A number of the paper: ``value`` of ``metric`` in ``row`` (in the units of the table's
    column), read from ``source``, a fragment of the seed file's text (whitespace-normalised) that
    holds it."""

    row: str
    metric: str
    value: float
    source: str


@dataclass(frozen=True)
class Claim:
    """A claim of the paper that the rows can decide.

    ``order``: the rows in the claimed increasing order of ``metric`` (``a < b < c``); an item may
    also be ``(row, metric)``, to compare two metrics of one row. ``at_most`` / ``at_least``:
    ``(row, value)``: the row's ``metric`` is at most / at least ``value``. The verdict
    (:func:`lit_cert.reproduce.claims.verdict`) is *reproduced* (every row >= 3 seeds and each gap
    larger than the two rows' standard deviations together), *direction seen*, *not seen*, or
    *not tested at this scale* (a row without finished runs)."""

    text: str
    where: str
    metric: str
    order: tuple = ()
    at_most: Optional[tuple[str, float]] = None
    at_least: Optional[tuple[str, float]] = None

    def __post_init__(self):
        if sum((bool(self.order), self.at_most is not None, self.at_least is not None)) != 1:
            raise ValueError(f"claim {self.text!r}: give one of order, at_most, at_least")
        if self.order and len(self.order) < 2:
            raise ValueError(f"claim {self.text!r}: an order needs two rows or more")

    @property
    def items(self) -> tuple[tuple[str, str], ...]:
        """``(row, metric)`` of each compared value, in the claimed increasing order."""
        bound = self.at_most or self.at_least
        if bound is not None:
            return ((bound[0], self.metric),)
        return tuple((i, self.metric) if isinstance(i, str) else tuple(i) for i in self.order)

    @property
    def rows(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row for row, _ in self.items))


@dataclass(frozen=True)
class Column:
    """A column of the report: ``metric`` of the records, shown times ``scale`` with ``digits``."""

    metric: str
    heading: str
    scale: float = 1.0
    digits: int = 3


@dataclass(frozen=True)
class Figure:
    """The report's figure. ``line``: ``y`` (a metric) over the row value ``x``, one line per
    row value ``series``; ``scatter``: metric ``y`` over metric ``x``, one marker per run."""

    kind: Literal["line", "scatter"]
    x: str
    y: str
    series: Optional[str] = None
    logx: bool = False
    xlabel: str = ""
    ylabel: str = ""


@dataclass(frozen=True)
class Experiment:
    """One table or figure of a paper, with its claims, numbers and runs."""

    id: str
    paper: str
    seed_file: str
    target: str
    title: str
    columns: tuple[Column, ...]
    scales: dict = field(hash=False, compare=False)
    claims: tuple[Claim, ...] = ()
    paper_numbers: tuple[PaperNumber, ...] = ()
    figure: Optional[Figure] = None
    notes: tuple[str, ...] = ()

    def scale(self, name: str) -> Scale:
        if name not in self.scales:
            have = ", ".join(self.scales) or "none"
            raise ConfigError(f"--scale: {self.id} has no {name!r} scale (it has: {have})")
        return self.scales[name]

    def check(self) -> list[str]:
        """What is inconsistent in the spec (empty: nothing): unknown rows in claims and paper
        numbers, duplicate rows, unknown measures, missing configs."""
        from lit_cert.reproduce.measures import MEASURES

        problems = []
        row_names = set()
        for scale in self.scales.values():
            names = [r.name for r in scale.rows]
            if len(set(names)) != len(names):
                problems.append(f"{self.id} {scale.name}: duplicate row names")
            row_names |= set(names)
            problems += [f"{self.id} {scale.name}: unknown measure {m.kind!r}" for m in scale.measures if m.kind not in MEASURES]
            if scale.seeds < 1 or scale.minutes_per_run <= 0:
                problems.append(f"{self.id} {scale.name}: seeds and minutes_per_run must be positive")
            for r in scale.rows:
                if r.config and not (repo_root() / r.config).is_file():
                    problems.append(f"{self.id} {scale.name} row {r.name!r}: no config {r.config}")
        for claim in self.claims:
            problems += [f"{self.id} claim {claim.text!r}: unknown row {r!r}" for r in claim.rows if r not in row_names]
        problems += [f"{self.id} paper number: unknown row {p.row!r}" for p in self.paper_numbers if p.row not in row_names]
        return problems


def repo_root() -> Path:
    """The folder the configs are relative to: the source checkout holding ``configs/`` (an
    installed copy without them uses the current folder)."""
    source = Path(__file__).resolve().parents[2]
    return source if (source / "configs").is_dir() else Path.cwd()


def fingerprint(row: Row, scale: Scale, seed: int) -> str:
    """What decides a run's numbers: the row's config (its parsed content) and arguments (or its analysis), the
    measures with their options, and the seed. A record with another fingerprint is stale: its
    config or measurement has changed since, so it is run again and left out of the report."""
    import yaml

    config = yaml.safe_load((repo_root() / row.config).read_text()) if row.config else None  # comments do not count
    payload = {"config": config, "args": list(row.args), "analysis": list(row.analysis), "seed": seed,
               "measures": [[m.kind, m.options] for m in scale.measures]}
    if row.seed_stride != 1:
        payload["seed_stride"] = row.seed_stride
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
