"""The settings of certification, in one torch-free module: what ``lit_cert certify`` parses
(its ``--help`` and ``--print_config`` need no torch) and what the cascade runs with.

:class:`CascadeSettings` -- the stages and each stage's section (``pgd``, ``alpha``, ``bab``,
``milp``) -- and :class:`CascadeConfig`, the same with the radius ``eps``. Every value is
checked when the dataclass is made (a :class:`~lit_cert.errors.ConfigError` naming it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lit_cert.errors import ConfigError, check

#: the cascade's stages in cascade order (lit_cert.certify.cascade.STAGES holds what each runs)
STAGE_NAMES = ("pgd", "ibp", "crown-ibp", "crown", "alpha-crown", "bab", "milp")


@dataclass
class BaBConfig:
    """Branch-and-bound settings (per sample)."""

    timeout: float = 30.0  # seconds for all margins of one sample
    max_domains: int = 100_000  # domains bounded per sample
    batch: int = 64  # domains split per step (2x this many bounded at once)
    steps: int = 10  # alpha/beta-CROWN steps per bound (0: CROWN, split constraints only through exact neurons)
    beta: bool = True  # optimise split multipliers (beta-CROWN) along with the slopes
    lr: float = 0.1  # Adam step for slopes and multipliers
    #: "root": every domain keeps its parent's intermediate bounds (from the root's CROWN), clamped
    #: at its split neurons, and only the output bound is recomputed -- one back-substituted row
    #: per domain, the default of alpha-beta-CROWN; "recompute": intermediate bounds deeper than
    #: the split are recomputed under the splits (tighter, but every unstable neuron of those
    #: layers is back-substituted for every domain)
    intermediate: Literal["root", "recompute"] = "root"
    #: the box is bounded once per sample for all its rows: this many Adam steps on the lower slopes
    #: of the rows and (``root_intermediate``) of every unstable neuron's own bounds -- optimised
    #: intermediate bounds, which every domain of the search then inherits
    #: (lit_cert.bounds.alpha_crown.optimised_box_bounds); 0: CROWN's bounds
    root_steps: int = 30
    root_intermediate: bool = True
    root_share: float = 0.25  # at most this share of ``timeout`` goes to the root's optimisation steps
    #: which neuron a domain splits: "babsr" (the best BaBSR score) or "fsb" (the best of the
    #: ``fsb_candidates`` best-scored, by one cheap bound of both children each)
    branching: Literal["babsr", "fsb"] = "fsb"
    fsb_candidates: int = 3
    #: the first this share of ``timeout`` runs the plain search (root_steps 0, babsr, no attack),
    #: the rest -- if the sample is still open -- every lever above (0: every lever from the start)
    quick_share: float = 0.2
    attack_restarts: int = 8  # a targeted PGD on each open row before its search (0: none), from this many starts
    pgd_every: int = 5  # PGD from the worst children's candidates every this many steps
    pgd_steps: int = 20

    def __post_init__(self):
        check(self.timeout > 0 and self.max_domains >= 1 and self.batch >= 1 and self.steps >= 0 and self.root_steps >= 0 and self.attack_restarts >= 0 and 0 < self.root_share <= 1 and 0 <= self.quick_share < 1 and self.lr > 0
              and self.pgd_every >= 0 and self.pgd_steps >= 1,
              f"bab: timeout and lr must be > 0, max_domains, batch and pgd_steps >= 1, steps, root_steps, attack_restarts and pgd_every >= 0, root_share in (0, 1], quick_share in [0, 1); got {self}")
        check(self.intermediate in ("root", "recompute"), f"bab.intermediate must be root or recompute, got {self.intermediate!r}")
        check(self.branching in ("babsr", "fsb") and self.fsb_candidates >= 1,
              f"bab.branching must be babsr or fsb and bab.fsb_candidates >= 1, got {self.branching!r}, {self.fsb_candidates}")



@dataclass
class PGDSettings:
    """The PGD stage's attack (margin loss)."""

    steps: int = 50
    restarts: int = 3

    def __post_init__(self):
        check(self.steps >= 1 and self.restarts >= 1, f"pgd.steps and pgd.restarts must be >= 1, got {self.steps}, {self.restarts}")


@dataclass
class AlphaSettings:
    """The alpha-CROWN stage: Adam steps on the lower slopes (the registry's ``alpha-crown``)."""

    steps: int = 20

    def __post_init__(self):
        check(self.steps >= 0, f"alpha.steps must be >= 0, got {self.steps}")


@dataclass
class MILPSettings:
    """The MILP stage (HiGHS, big-M): time limit per sample, and the size beyond which it is skipped."""

    timeout: float = 30.0
    max_neurons: int = 5000

    def __post_init__(self):
        check(self.timeout > 0 and self.max_neurons >= 0, f"milp.timeout must be > 0 and max_neurons >= 0, got {self}")


@dataclass
class CascadeSettings:
    """Everything about the cascade but the radius: which stages, and each stage's settings."""

    #: the stages to run, in cascade order whatever order they are given in (default: all)
    stages: tuple[str, ...] = ()
    pgd: PGDSettings = field(default_factory=PGDSettings)
    alpha: AlphaSettings = field(default_factory=AlphaSettings)
    bab: BaBConfig = field(default_factory=BaBConfig)
    milp: MILPSettings = field(default_factory=MILPSettings)
    #: memory (GB) for the coefficient blocks of the CROWN / alpha-CROWN / BaB stages: samples
    #: go in chunks, and each walk's rows too (lit_cert.bounds.backsub.coefficient_memory)
    memory_gb: float = 8.0

    def __post_init__(self):
        stages = tuple(self.stages or ())
        if isinstance(self.stages, str):
            stages = tuple(s.strip() for s in self.stages.split(",") if s.strip())
        if not stages:
            stages = STAGE_NAMES
        unknown = [s for s in stages if s not in STAGE_NAMES]
        if unknown:
            raise ConfigError(f"unknown stages {unknown}; available: {', '.join(STAGE_NAMES)}")
        self.stages = tuple(s for s in STAGE_NAMES if s in stages)  # always in cascade order
        check(self.memory_gb > 0, f"memory_gb must be > 0, got {self.memory_gb}")


@dataclass
class CascadeConfig(CascadeSettings):
    """The cascade's settings and the radius ``eps`` (pixel units) it certifies."""

    eps: float | None = None

    def __post_init__(self):
        super().__post_init__()
        check(self.eps is not None and 0 <= self.eps <= 1, f"the cascade needs eps in [0, 1] (pixel units), got {self.eps}")
