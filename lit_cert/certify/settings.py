"""The settings of certification, in one torch-free module: what ``lit_cert certify`` parses
(its ``--help`` and ``--print_config`` need no torch) and what the cascade runs with.

:class:`CascadeSettings` -- the stages and each stage's section (``pgd``, ``alpha``, ``bab``,
``milp``) -- and :class:`CascadeConfig`, the same with the radius ``eps``. Every value is
checked when the dataclass is made (a :class:`~lit_cert.errors.ConfigError` naming it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Annotated, ClassVar, Literal, Optional

from lit_cert.errors import ConfigError
from lit_cert.options import Check, NonNegativeInt, PositiveFloat, PositiveInt, Radius, Range, validate

#: the cascade's stages in cascade order (lit_cert.certify.cascade.STAGES holds what each runs)
STAGE_NAMES = ("ibp", "pgd", "crown-ibp", "crown", "alpha-crown", "bab", "milp")


@dataclass
class Section:
    """A settings section (``bab``, ``milp``, ...): checks its declared constraints when made,
    naming each option by its command-line key (``--bab.timeout``)."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self):
        validate(self, f"--{self.SECTION}." if self.SECTION else "--")


Share = Annotated[float, Range(0, 1, lo_open=True)]


def _group_size_problem(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 2, 3):
        return "must be 0 (off), 2 or 3 (neurons per group)"
    return None


@dataclass
class BaBConfig(Section):
    """Branch-and-bound settings (per sample).

    Args:
        timeout: seconds for all margins of one sample.
        max_domains: domains bounded per sample.
        batch: domains split per step (2x this many bounded at once).
        steps: alpha/beta-CROWN steps per bound (0: CROWN, split constraints only through exact
            neurons).
        beta: optimise split multipliers (beta-CROWN) along with the slopes.
        lr: Adam step for slopes and multipliers.
        intermediate: ``root``: every domain keeps its parent's intermediate bounds (from the
            root's CROWN), clamped at its split neurons, and only the output bound is recomputed
            -- one back-substituted row per domain, the default of alpha-beta-CROWN;
            ``recompute``: intermediate bounds deeper than the split are recomputed under the
            splits (tighter, but every unstable neuron of those layers is back-substituted for
            every domain).
        root_steps: the box is bounded once per sample for all its rows: this many Adam steps on
            the lower slopes of the rows and (``root_intermediate``) of every unstable neuron's
            own bounds -- optimised intermediate bounds, which every domain of the search then
            inherits (lit_cert.bounds.alpha_crown.optimised_box_bounds); 0: CROWN's bounds.
        root_intermediate: optimise the intermediate bounds at the root too.
        root_share: at most this share of ``timeout`` goes to the root's optimisation steps.
        branching: which neuron a domain splits: ``babsr`` (the best BaBSR score) or ``fsb``
            (the best of the ``fsb_candidates`` best-scored, by one cheap bound of both
            children each).
        fsb_candidates: candidates FSB bounds per split.
        quick_share: the first this share of ``timeout`` runs the plain search (root_steps 0,
            babsr, no attack), the rest -- if the sample is still open -- every lever above (0:
            every lever from the start).
        attack_restarts: a targeted PGD on each open row before its search (0: none), from this
            many starts.
        first_attack_restarts: before any bound, one PGD on all margins at once from this many
            uniform random starts in one batch, start k minimising margin k mod M, stopped as
            soon as one start crosses (0: none) -- alpha-beta-CROWN's attack before verification
            (30 starts x 100 steps): a sample the cascade's PGD missed is falsified in seconds
            instead of waiting on the search.
        first_attack_steps: steps of that attack (quarter-radius steps, x0.9 every 10).
        first_attack_share: at most this share of ``timeout`` goes to that attack (it ends after
            the step that passes it): on an IBP-trained CNN7 its 30 x 100 steps take ~31 s on one
            CPU thread, the whole default limit, and a sample the old search certified in 1.4 s
            was left open.
        pgd_every: PGD from the worst children's candidates every this many steps (0: never).
        pgd_steps: steps of those attacks.
        multi_neuron: joint constraints over groups of this many unstable ReLUs of a layer
            (2 or 3; 0: off) in the bound of every domain of the full search (not the quick
            phase): facets of the exact convex hull of the group's ReLU graph over the octagon
            of its inputs, as Lagrangian terms with optimised multipliers (PRIMA's constraints
            used as MN-BaB does; lit_cert.bounds.multi_neuron). 4 is not offered: its exact
            hull takes ~16 s per group.
        mn_neurons: unstable neurons per layer taken into groups (the best by triangle height
            times the bound's coefficient), grouped in overlapping windows.
        mn_cuts: constraints kept per group (those the single-neuron triangles violate most).
        mn_root_steps: Adam steps on the root's slopes and constraint multipliers once the
            constraints are built (each is one output walk: cheap next to the root's optimised
            intermediate bounds).
        mn_lr: Adam step of the constraint multipliers (the slopes keep ``lr``: measured on a
            PGD-trained CNN3, multipliers stepped at ``lr`` 0.1 oscillate and lose a third of the gain).
    """

    SECTION: ClassVar[str] = "bab"

    timeout: PositiveFloat = 30.0
    max_domains: PositiveInt = 100_000
    batch: PositiveInt = 64
    steps: NonNegativeInt = 10
    beta: bool = True
    lr: PositiveFloat = 0.1
    intermediate: Literal["root", "recompute"] = "root"
    root_steps: NonNegativeInt = 30
    root_intermediate: bool = True
    root_share: Share = 0.25
    branching: Literal["babsr", "fsb"] = "fsb"
    fsb_candidates: PositiveInt = 3
    quick_share: Annotated[float, Range(0, 1, hi_open=True)] = 0.2
    attack_restarts: NonNegativeInt = 8
    first_attack_restarts: NonNegativeInt = 30
    first_attack_steps: PositiveInt = 100
    first_attack_share: Share = 0.2
    pgd_every: NonNegativeInt = 5
    pgd_steps: PositiveInt = 20
    multi_neuron: Annotated[int, Check(_group_size_problem, "0 (off), 2 or 3", (1, 4, -2))] = 0
    mn_neurons: PositiveInt = 1000
    mn_cuts: PositiveInt = 24
    mn_root_steps: NonNegativeInt = 200
    mn_lr: PositiveFloat = 0.01


@dataclass
class PGDSettings(Section):
    """The PGD stage's attack (margin loss).

    Args:
        steps: attack steps.
        restarts: random restarts; each attacks only the samples the earlier ones did not falsify.
    """

    SECTION: ClassVar[str] = "pgd"

    steps: PositiveInt = 50
    restarts: PositiveInt = 3


@dataclass
class AlphaSettings(Section):
    """The alpha-CROWN stage: Adam steps on the lower slopes (the registry's ``alpha-crown``).

    Args:
        steps: Adam steps (0: CROWN's slopes).
    """

    SECTION: ClassVar[str] = "alpha"

    steps: NonNegativeInt = 20


@dataclass
class MILPSettings(Section):
    """The MILP stage (HiGHS, big-M).

    Args:
        timeout: time limit per sample (seconds).
        max_neurons: networks with more hidden neurons skip the MILP.
    """

    SECTION: ClassVar[str] = "milp"

    timeout: PositiveFloat = 30.0
    max_neurons: NonNegativeInt = 5000


def _stage_problem(value) -> str | None:
    return None if value in STAGE_NAMES else f"must be one of {', '.join(STAGE_NAMES)}"


@dataclass
class CascadeSettings(Section):
    """Everything about the cascade but the radius: which stages, and each stage's settings.

    Args:
        stages: the stages to run, in cascade order whatever order they are given in (default:
            all of ibp, pgd, crown-ibp, crown, alpha-crown, bab, milp).
        pgd: the PGD stage.
        alpha: the alpha-CROWN stage.
        bab: the branch-and-bound stage.
        milp: the MILP stage.
        memory_gb: memory (GB) for the coefficient blocks of the CROWN / alpha-CROWN / BaB
            stages: samples go in chunks, and each walk's rows too
            (lit_cert.bounds.backsub.coefficient_memory).
    """

    stages: Annotated[tuple[str, ...], Check(_stage_problem, "cascade stages", ("no-such-stage",))] = ()
    pgd: PGDSettings = field(default_factory=PGDSettings)
    alpha: AlphaSettings = field(default_factory=AlphaSettings)
    bab: BaBConfig = field(default_factory=BaBConfig)
    milp: MILPSettings = field(default_factory=MILPSettings)
    memory_gb: PositiveFloat = 8.0

    def __post_init__(self):
        stages = tuple(self.stages or ())
        if isinstance(self.stages, str):
            stages = tuple(s.strip() for s in self.stages.split(",") if s.strip())
        unknown = [s for s in stages if s not in STAGE_NAMES]
        if unknown:
            raise ConfigError(f"--stages: unknown stages {unknown}; available: {', '.join(STAGE_NAMES)}")
        if not stages:
            stages = STAGE_NAMES
        self.stages = tuple(s for s in STAGE_NAMES if s in stages)  # always in cascade order
        for name, cls in (("pgd", PGDSettings), ("alpha", AlphaSettings), ("bab", BaBConfig), ("milp", MILPSettings)):
            section = getattr(self, name)
            if section is None:  # `pgd: null` in a settings file: the defaults
                section = cls()
            elif isinstance(section, dict):  # from a YAML file or JSON: made (and checked) here
                unknown = sorted(set(section) - {f.name for f in fields(cls)})
                if unknown:
                    raise ConfigError(f"--{name}: unknown settings {', '.join(unknown)}")
                section = cls(**section)
            if not isinstance(section, cls):
                raise ConfigError(f"--{name}: a section of settings ({', '.join(f.name for f in fields(cls))}), "
                                  f"got {section!r}")
            setattr(self, name, section)
        super().__post_init__()


@dataclass
class CascadeConfig(CascadeSettings):
    """The cascade's settings and the radius ``eps`` (pixel units) it certifies.

    Args:
        eps: the radius (required).
    """

    eps: Optional[Radius] = None

    def __post_init__(self):
        super().__post_init__()
        if self.eps is None:
            raise ConfigError("the cascade needs eps in [0, 1] (pixel units)")
