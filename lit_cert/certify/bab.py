"""Complete verification by branch and bound on ReLU splits, batched on the model's device.

For one sample and one margin row ``c`` (prove ``min_x c @ f(x) > 0`` over the input box), the
input box is the root *domain*. The box is bounded once for all rows of the sample: intermediate
bounds and each row's slopes optimised together (``root_steps`` Adam steps, optimised
intermediate bounds as in alpha-beta-CROWN, :func:`~lit_cert.bounds.alpha_crown.optimised_box_bounds`);
every row's search inherits them. A row not proven there first meets a targeted PGD
(``attack_restarts`` starts: the bound's minimiser and random points). A domain is the box
together with split constraints: some unstable ReLUs fixed to their active (``z >= 0``) or
inactive (``z <= 0``) piece. Each step

1. takes the ``batch`` open domains with the lowest lower bounds,
2. splits each on one unstable, not yet split ReLU. BaBSR's intercept score (Bunel et al., JMLR
   2020) rates every candidate: the bound's coefficient ``A`` at that ReLU's output times the
   offset of the upper relaxation line, ``max(-A, 0) * (-l u / (u - l))`` -- what the bound gains
   if that neuron's relaxation became exact -- with ``|A| (u - l)`` to break ties. With
   ``branching="fsb"`` (the default; filtered smart branching, De Palma et al. 2021) the
   ``fsb_candidates`` best-rated ones each get both children bounded once with the parent's
   slopes, and the neuron whose worse child is best is split; ``"babsr"`` splits the best-rated,
3. bounds all children at once (one batch) with CROWN plus ``steps`` Adam steps on the
   lower slopes and on the multipliers of the split constraints (beta-CROWN, Wang et al. 2021),
   warm-started from the parent's, *under the split constraints*: a split neuron's input
   bounds are clamped to its piece, which makes its relaxation exact, and the multipliers bring
   the half-spaces ``z >= 0`` / ``z <= 0`` into the bound
   (:class:`~lit_cert.bounds.backsub.LinearBounds` ``splits``, ``split_multipliers``).
   Intermediate bounds are the parent's (``intermediate="root"``, the default: one
   back-substituted row per domain) or recomputed under the splits for the layers after the
   split (``"recompute"``), always intersected with the parent's.
4. prunes children whose bound is > 0 or whose constraints are contradictory (``l > u``
   somewhere: the domain is empty), and looks for a counterexample: the minimiser of each
   child's linear bound over the box, and every ``pgd_every`` steps a PGD run started from the
   candidates of the worst children. Any input of the box with ``c @ f(x) <= 0`` falsifies.

Soundness. Every bound is valid on its domain: on the subset of the box where a split holds,
the split neuron *is* linear (identity or zero), and the other neurons' relaxations hold for
every input of the box, hence of the subset; minimising the bound over the whole box (a
superset) only lowers it. Children inherit ``max(own, parent's)`` bound (both valid on the
child). The domains of the two children of a split cover the parent (``z >= 0`` or ``z <= 0``),
so when no open domain is left, every input of the box has been proven. A domain in which
every ReLU is stable or split is linear: its exact minimum is one LP (HiGHS) over the box with
every neuron's sign pattern as linear constraints -- it proves, prunes (infeasible) or falsifies.
Counterexamples are re-evaluated with the plain network before they are reported.

Seams. Three parts are exchangeable without touching the search: the branching heuristic
(:mod:`lit_cert.certify.branching`, named by ``branching``), the bounding of domains
(:class:`DomainBounds`: the root box and a batch of split domains; :class:`BetaCrown` is the
one above), and the exact LP of a fully split domain (built and solved by
:mod:`lit_cert.certify.milp`'s HiGHS builder). Each search gets its settings as an argument
(:class:`_Search`), never by swapping them onto the verifier.

Limits: a time limit and a domain limit per sample; a sample that hits one stays ``unknown``
with the reason. The record has the domains bounded, the maximum split depth and the time.

Certificates. With ``record_leaves`` a certified result keeps, per row proven by search, the
split constraints of its pruned domains (:class:`Leaves`, a few integers per split). They cover
the box, so bounding each of them again proves the row again: the cascade re-checks a float32
certificate whose margin is near 0 this way in float64 (:meth:`BranchAndBound.replay`), at the
cost of about one bound per leaf instead of a second search; a leaf the float64 bound does not
prove is split further, and leaves that do not provably cover the box are not used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
from torch import nn

from lit_cert.attacks.pgd import StepPolicy, pgd_maximize
from lit_cert.bounds.alpha_crown import OptimisedBox, optimised_box_bounds, optimised_lower_bounds
from lit_cert.bounds.backsub import LinearBounds
from lit_cert.bounds.box import flat_layers
from lit_cert.bounds.multi_neuron import multi_neuron_cuts
from lit_cert.certify.branching import BranchContext, branching_for
from lit_cert.certify.settings import BaBConfig


#: PGD started exactly at a candidate point, steps of a quarter of the eps radius, halved twice
_SEEDED = StepPolicy(step_size=0.25, milestones=(10, 15), decay=0.5, scale="radius", start="at_x")


@dataclass
class BaBResult:
    status: str  # "certified", "falsified" or "unknown"
    margin: float | None = None  # proven lower bound of the smallest margin, or the falsifying margin
    counterexample: torch.Tensor | None = None  # (1, *in_shape) for "falsified"
    domains: int = 0
    max_depth: int = 0
    seconds: float = 0.0
    reason: str | None = None
    #: with ``record_leaves``: per row proven by search, the domains that proved it (:class:`Leaves`);
    #: rows missing were proven at the root
    leaves: dict[int, "Leaves"] | None = None
    #: which search decided: "quick" (CROWN root, BaBSR) or "full" (every lever) -- a replay
    #: bounds the leaves with the root bounds of the same phase
    phase: str = "full"

    def details(self) -> dict:
        return {"domains": self.domains, "max_depth": self.max_depth, "seconds": round(self.seconds, 4)}


@dataclass
class _Domains:
    """Open domains of one margin row, as batched tensors (D leading)."""

    splits: dict[int, torch.Tensor]  # ReLU index -> int8 (D, *shape)
    bounds: dict[int, tuple[torch.Tensor, torch.Tensor]]  # ReLU index -> (l, u) (D, *shape)
    value: torch.Tensor  # (D,) lower bound of the margin on the domain
    depth: torch.Tensor  # (D,) number of splits
    choice: torch.Tensor  # (D, 2): (position in relu_idx, flat neuron) to split next; -1 = none left
    alpha: dict[int, torch.Tensor]  # optimised lower slopes (warm start for the children)
    beta: dict[int, torch.Tensor]  # optimised split multipliers (idem)
    gamma: dict[int, torch.Tensor] = field(default_factory=dict)  # multipliers of joint ReLU constraints (idem)

    def __len__(self) -> int:
        return int(self.value.shape[0])

    def take(self, sel: torch.Tensor) -> "_Domains":
        return _Domains({i: s[sel] for i, s in self.splits.items()},
                        {i: (l[sel], u[sel]) for i, (l, u) in self.bounds.items()},
                        self.value[sel], self.depth[sel], self.choice[sel],
                        {i: a[sel] for i, a in self.alpha.items()}, {i: b[sel] for i, b in self.beta.items()},
                        {i: g[sel] for i, g in self.gamma.items()})

    @staticmethod
    def cat(parts: list["_Domains"]) -> "_Domains":
        parts = [p for p in parts if len(p)]
        first = parts[0]

        def join(get):  # a key missing in a part (no split there yet) is zeros of the split's shape
            keys = set().union(*(set(get(p)) for p in parts))
            return {i: torch.cat([get(p)[i] if i in get(p) else p.splits[i].new_zeros(p.splits[i].shape, dtype=p.value.dtype)
                                  for p in parts]) for i in keys}

        return _Domains(join(lambda p: p.splits),
                        {i: (torch.cat([p.bounds[i][0] for p in parts]), torch.cat([p.bounds[i][1] for p in parts]))
                         for i in first.bounds},
                        torch.cat([p.value for p in parts]), torch.cat([p.depth for p in parts]),
                        torch.cat([p.choice for p in parts]), join(lambda p: p.alpha), join(lambda p: p.beta),
                        {i: torch.cat([p.gamma[i] for p in parts]) for i in first.gamma})


@dataclass
class Leaves:
    """The domains that proved one row, their split constraints only (sparse): ``entries`` (K, 4)
    int64 rows ``(leaf, position in relu_idx, flat neuron, sign)`` for ``count`` leaves. When a
    search ends with no open domain, its pruned domains (proven, empty, or decided by the exact
    LP) cover the box -- the two children of every split cover their parent -- so proving each
    leaf again proves the row again: a certificate that can be re-checked (in float64) at the cost
    of one bound per leaf instead of the whole search (:meth:`BranchAndBound.replay`)."""

    entries: torch.Tensor
    count: int

    @staticmethod
    def of(domains: _Domains, relu_idx: list[int]) -> "Leaves":
        parts = []
        for p, idx in enumerate(relu_idx):
            if idx not in domains.splits:
                continue
            flat = domains.splits[idx].reshape(len(domains), -1)
            nz = torch.nonzero(flat)
            if len(nz):
                sign = flat[nz[:, 0], nz[:, 1]].long()
                parts.append(torch.stack([nz[:, 0], torch.full_like(nz[:, 0], p), nz[:, 1], sign], 1).cpu())
        entries = torch.cat(parts) if parts else torch.zeros(0, 4, dtype=torch.long)
        return Leaves(entries, len(domains))

    @staticmethod
    def cat(parts: list["Leaves"]) -> "Leaves":
        out, offset = [], 0
        for part in parts:
            e = part.entries.clone()
            e[:, 0] += offset
            out.append(e)
            offset += part.count
        return Leaves(torch.cat(out) if out else torch.zeros(0, 4, dtype=torch.long), offset)

    def covers(self) -> bool:
        """Whether the leaves provably cover the box. Each leaf is a conjunction of sign
        constraints (``z >= 0`` / ``z <= 0``) on split neurons, and every input satisfies one of
        the two signs of every neuron, so the leaves cover the box if they cover every sign
        assignment of their neurons: decided by Shannon expansion (both cofactors of the neuron
        that most leaves constrain must be covered; a leaf with no constraint left covers its
        cofactor). For a search tree's leaves that neuron is the subtree's own split, so the
        expansion retraces the tree. Merging sibling pairs greedily is not enough: a tree that
        splits one neuron at different depths in different branches can leave pairs that merge
        in the wrong order."""
        cubes = [dict() for _ in range(self.count)]
        for leaf, p, n, sign in self.entries.tolist():
            cubes[leaf][(p, n)] = sign

        def covered(cubes: list[dict]) -> bool:
            if not cubes:
                return False
            if any(not c for c in cubes):
                return True
            counts: dict = {}
            for c in cubes:
                for v in c:
                    counts[v] = counts.get(v, 0) + 1
            v = max(counts, key=counts.get)
            return all(covered([{k: s for k, s in c.items() if k != v} for c in cubes if c.get(v, sign) == sign])
                       for sign in (1, -1))

        return covered(cubes)

    def splits(self, first: int, last: int, shapes: dict[int, tuple], relu_idx: list[int], device) -> dict[int, torch.Tensor]:
        """Dense int8 splits of leaves ``first .. last - 1``, ReLU index -> (n, *shape)."""
        n = last - first
        e = self.entries[(self.entries[:, 0] >= first) & (self.entries[:, 0] < last)]
        out = {}
        for p, idx in enumerate(relu_idx):
            dense = torch.zeros(n, math.prod(shapes[idx]), dtype=torch.int8)
            sel = e[e[:, 1] == p]
            dense[sel[:, 0] - first, sel[:, 2]] = sel[:, 3].to(torch.int8)
            out[idx] = dense.view(n, *shapes[idx]).to(device)
        return out


@dataclass
class _RowOutcome:
    status: str
    margin: float | None = None
    counterexample: torch.Tensor | None = None
    reason: str | None = None
    stats: dict = field(default_factory=lambda: {"domains": 0, "max_depth": 0})
    leaves: Leaves | None = None


class BetaCrown:
    """How branch and bound bounds its domains (the module docstring's steps 3): the root box
    once for all rows (intermediate bounds and slopes optimised together for ``root_steps``
    steps, :func:`optimised_box_bounds`), and a batch of split domains with CROWN plus ``steps``
    Adam steps on the lower slopes and the split constraints' multipliers (beta-CROWN), warm
    started. Another relaxation of the domains (e.g. multi-neuron constraints) is another class
    with these two methods: :class:`DomainBounds`."""

    def __init__(self, layers: list, config: BaBConfig):
        self.layers = layers
        self.config = config
        #: joint ReLU constraints every domain's bound carries (none here; :class:`MultiNeuron` builds them at the root)
        self.cuts: dict = {}

    def root(self, lb: torch.Tensor, ub: torch.Tensor, rows: torch.Tensor) -> OptimisedBox:
        cfg = self.config
        return optimised_box_bounds(self.layers, lb, ub, rows.unsqueeze(0), cfg.root_steps, lr=cfg.lr,
                                    optimise_intermediate=cfg.root_intermediate, time_limit=cfg.root_share * cfg.timeout)

    def bound(self, lb, ub, spec, splits, prior, reuse_upto, start=None, steps=None) -> tuple[torch.Tensor, LinearBounds]:
        """Bounds (D, 1) of ``spec`` (D, 1, K) on each domain, and the engine that made them
        (``steps`` optimisation steps, default the config's)."""
        cfg = self.config
        d = spec.shape[0]
        blb, bub = lb.expand(d, *lb.shape[1:]), ub.expand(d, *ub.shape[1:])
        engine = LinearBounds(self.layers, blb, bub, "crown", "same", splits=splits, prior_bounds=prior,
                              reuse_prior_upto=reuse_upto)
        engine.cuts = self.cuts
        value = optimised_lower_bounds(engine, spec, cfg.steps if steps is None else steps, lr=cfg.lr, record=True,
                                       beta=cfg.beta, start=start, cut_lr=cfg.mn_lr)
        return value, engine


class MultiNeuron(BetaCrown):
    """:class:`BetaCrown` plus joint constraints over groups of ``config.multi_neuron`` unstable
    ReLUs per layer (:mod:`lit_cert.bounds.multi_neuron`; MN-BaB's use of PRIMA's constraints):
    the root is bounded as BetaCrown bounds it, then the constraints are built once from its
    intermediate bounds (the neurons scored with the rows' coefficients) and the rows' bounds
    optimised again with them as Lagrangian terms (``mn_root_steps`` Adam steps on slopes and
    multipliers, from the root's slopes). Every domain of the search reuses the same constraints
    -- valid on the box, hence on every subdomain -- with its own multipliers, warm-started from
    its parent's. Built from the network it bounds, so a float64 replay builds its own."""

    def root(self, lb: torch.Tensor, ub: torch.Tensor, rows: torch.Tensor) -> OptimisedBox:
        box = super().root(lb, ub, rows)
        if bool((box.lower > 0).all()):
            return box
        cfg, n = self.config, len(self.layers)
        spec = rows.unsqueeze(0)
        with torch.inference_mode(False), torch.no_grad():
            plain = LinearBounds(self.layers, lb, ub, "crown", "same", prior_bounds=box.pre_bounds, reuse_prior_upto=n)
            plain.lower_slopes = dict(box.slopes)
            plain.lower(n, spec, record=True)
            weights = {i: plain.coefficients[i].abs().sum(1) for i in box.pre_bounds}
            self.cuts = multi_neuron_cuts(self.layers, lb, ub, box.pre_bounds, cfg.multi_neuron, cfg.mn_neurons,
                                          cfg.mn_cuts, weights)
        if not self.cuts:
            return box
        engine = LinearBounds(self.layers, lb, ub, "crown", "same", prior_bounds=box.pre_bounds, reuse_prior_upto=n)
        engine.cuts = self.cuts
        lower = optimised_lower_bounds(engine, spec, cfg.mn_root_steps, lr=cfg.lr, start={"alpha": box.slopes},
                                       cut_lr=cfg.mn_lr)
        return replace(box, lower=torch.maximum(box.lower, lower), slopes=dict(engine.lower_slopes),
                       gammas=dict(engine.cut_multipliers))


#: the domain-bounding interface: ``root(lb, ub, rows) -> OptimisedBox`` and ``bound(lb, ub, spec,
#: splits, prior, reuse_upto, start, steps) -> (values, engine)``
DomainBounds = BetaCrown


@dataclass
class _Search:
    """One search's settings and the parts they choose: the bounding of domains and the
    branching heuristic (made from ``config`` for this search only)."""

    config: BaBConfig
    bounds: BetaCrown
    branching: object

    @classmethod
    def of(cls, layers: list, config: BaBConfig) -> "_Search":
        bounds = MultiNeuron(layers, config) if config.multi_neuron else BetaCrown(layers, config)
        return cls(config, bounds, branching_for(config))


class BranchAndBound:
    """Branch and bound for one network (module docstring).

    Args:
        net: the network (eval mode; on the device the domains are bounded on).
        config: :class:`BaBConfig`.
        dense_blocks: optional callable returning the network's dense affine blocks
            (:func:`lit_cert.certify.milp.dense_affine_blocks`) for the exact LP of fully split
            domains, or None when the network is too large for them; without them such a
            domain leaves the sample unknown.
    """

    def __init__(self, net: nn.Module, config: BaBConfig | None = None,
                 dense_blocks: Callable[[], list[tuple[np.ndarray, np.ndarray]]] | None = None):
        self.net = net
        self.layers = flat_layers(net)
        self.relu_idx = [i for i, m in enumerate(self.layers) if isinstance(m, nn.ReLU)]
        self.config = config or BaBConfig()
        self.dense_blocks = dense_blocks
        #: keep each proven row's leaves in the result (:class:`Leaves`) so that it can be replayed
        self.record_leaves = False
        #: optimisation steps of a replayed leaf's one bound (None: ``config.steps``); the search
        #: reached it through a chain of warm-started bounds, the replay bounds it from the root's slopes
        self.replay_steps: int | None = None

    # ------------------------------------------------------------------ public
    def verify(self, lb: torch.Tensor, ub: torch.Tensor, rows: torch.Tensor) -> BaBResult:
        """Prove every row of ``rows`` (M, K) positive over the box ``[lb, ub]`` (1, *in_shape).

        With ``quick_share > 0`` the first share of the time limit runs the plain search (CROWN's
        root, BaBSR, no targeted attack): most open samples are decided there within a second,
        without the fixed cost of the stronger levers; a sample it leaves open is searched again
        from the root with every lever for the rest of the time (domains and seconds add up).
        Before either, ``first_attack_restarts`` starts of one PGD on all rows look for a
        counterexample (its time counts against the limit)."""
        cfg = limit = self.config
        start = time.perf_counter()
        if cfg.first_attack_restarts:
            found = self._attack_all(lb, ub, rows, cfg.first_attack_restarts, cfg.first_attack_steps,
                                     start + cfg.first_attack_share * cfg.timeout)
            if found is not None:
                return BaBResult("falsified", found[0], found[1], 0, 0, time.perf_counter() - start, phase="attack")
            cfg = replace(cfg, timeout=max(1e-3, cfg.timeout - (time.perf_counter() - start)))
        if not cfg.quick_share or (cfg.root_steps == 0 and cfg.branching == "babsr" and not cfg.attack_restarts
                                   and not cfg.multi_neuron):
            result = self._verify(lb, ub, rows, cfg)
            result.seconds = time.perf_counter() - start
            return result
        quick = self._verify(lb, ub, rows, self._quick(cfg, cfg.quick_share * cfg.timeout))
        quick.phase = "quick"
        quick.seconds = time.perf_counter() - start
        if quick.status != "unknown" or quick.reason and "domain limit" in quick.reason:
            return quick
        left = limit.timeout - (time.perf_counter() - start)
        if left <= 0:  # the quick phase (its root bounds included) used up the whole limit
            quick.reason = f"BaB time limit ({limit.timeout:g}s)"
            return quick
        full = self._verify(lb, ub, rows, replace(cfg, timeout=left, max_domains=max(1, cfg.max_domains - quick.domains)))
        full.domains += quick.domains
        full.max_depth = max(full.max_depth, quick.max_depth)
        full.seconds = time.perf_counter() - start
        if full.status == "unknown" and "time limit" in (full.reason or ""):
            full.reason = f"BaB time limit ({limit.timeout:g}s)"
        return full

    @staticmethod
    def _quick(cfg: BaBConfig, timeout: float) -> BaBConfig:
        """The quick phase's settings: CROWN's root, BaBSR, no targeted attack, single-neuron relaxations."""
        return replace(cfg, timeout=timeout, root_steps=0, branching="babsr", attack_restarts=0, quick_share=0.0,
                       multi_neuron=0)

    def _verify(self, lb: torch.Tensor, ub: torch.Tensor, rows: torch.Tensor, cfg: BaBConfig) -> BaBResult:
        return self._search(lb, ub, rows, _Search.of(self.layers, cfg))

    def replay(self, lb: torch.Tensor, ub: torch.Tensor, rows: torch.Tensor, leaves: dict[int, Leaves],
               phase: str = "full") -> BaBResult:
        """Prove ``rows`` again from a finished search's leaves (:class:`Leaves`; the result of
        :meth:`verify` with ``record_leaves``), typically with a float64 copy of the network: the
        root is bounded as in the ``phase`` that found them (``BaBResult.phase``: the quick
        phase's CROWN root, or the full search's optimised one); a row it does not prove starts from its leaves,
        each bounded once under its splits (root slopes, ``steps`` Adam steps); a leaf that is
        not proven now is searched further, like any open domain, within the same limits. A row
        without leaves, or whose leaves do not provably cover the box (:meth:`Leaves.covers`),
        is searched from its root. So ``certified`` means what it means for :meth:`verify`: no
        open domain is left of domains that cover the box."""
        cfg = self._quick(self.config, self.config.timeout) if phase == "quick" else \
            replace(self.config, quick_share=0.0, attack_restarts=0)
        return self._search(lb, ub, rows, _Search.of(self.layers, cfg), leaves)

    def _search(self, lb: torch.Tensor, ub: torch.Tensor, rows: torch.Tensor, run: _Search,
                replay: dict[int, Leaves] | None = None) -> BaBResult:
        start = time.perf_counter()
        deadline = start + run.config.timeout
        budget = [run.config.max_domains]
        root_box = run.bounds.root(lb, ub, rows)
        root = root_box.lower[0]
        order = torch.argsort(root).tolist()  # most violated first: falsification is quickest there
        proven, domains, depth, reason = [], 0, 0, None
        leaves = {} if self.record_leaves else None
        for r in order:
            if root[r] > 0:
                proven.append(float(root[r]))
                continue
            slopes = {"alpha": {j: s[:, r] for j, s in root_box.slopes.items()},
                      "gamma": {j: g[:, r : r + 1] for j, g in root_box.gammas.items()}}
            given = replay.get(r) if replay is not None else None
            out = self._row(run, lb, ub, rows[r], deadline, budget, root_box.pre_bounds, slopes,
                            given if given is not None and given.covers() else None)
            if leaves is not None and out.leaves is not None:
                leaves[r] = out.leaves
            domains += out.stats["domains"]
            depth = max(depth, out.stats["max_depth"])
            if out.status == "falsified":
                return BaBResult("falsified", out.margin, out.counterexample, domains, depth, time.perf_counter() - start)
            if out.status == "unknown":
                reason = out.reason
                break
            proven.append(out.margin)
        seconds = time.perf_counter() - start
        if reason is not None:
            return BaBResult("unknown", None, None, domains, depth, seconds, reason)
        return BaBResult("certified", min(proven) if proven else None, None, domains, depth, seconds, leaves=leaves)

    # ------------------------------------------------------------------ bounding
    def _candidates(self, engine: LinearBounds) -> torch.Tensor:
        """The minimiser over the box of each domain's linear bound (D, *in_shape)."""
        a = engine.coefficients[-1][:, 0].expand_as(engine.lb)
        return torch.where(a >= 0, engine.lb, engine.ub)

    def _margin(self, x: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(x) @ row

    # ------------------------------------------------------------------ one row
    def _row(self, run: _Search, lb, ub, row, deadline, budget, root_bounds, start, replay: Leaves | None = None) -> _RowOutcome:
        cfg = run.config
        proved = [] if self.record_leaves else None  # Leaves of the pruned domains
        stats = {"domains": 1, "max_depth": 0}
        dev = lb.device
        spec1 = row.view(1, 1, -1)
        context = BranchContext(self.layers, self.relu_idx, lb, ub, spec1)
        t_root = time.perf_counter()
        with torch.inference_mode(False), torch.no_grad():
            value, engine = run.bounds.bound(lb, ub, spec1, None, root_bounds, len(self.layers), start)
        per_domain = (time.perf_counter() - t_root) / 4  # a guess until the first step is timed
        if cfg.attack_restarts:  # a targeted attack on this row first: from the bound's minimiser and random points
            g = torch.Generator(device="cpu").manual_seed(0)
            noise = torch.rand((cfg.attack_restarts - 1, *lb.shape[1:]), generator=g, dtype=lb.dtype).to(dev)
            starts = torch.cat([self._candidates(engine), lb + (ub - lb) * noise])
            found = self._pgd(lb, ub, row, starts, cfg.pgd_steps)
            if found is not None:
                return _RowOutcome("falsified", found[0], found[1], stats=stats)
        splits = {i: torch.zeros_like(engine.pre_bounds[i][0], dtype=torch.int8) for i in self.relu_idx}
        pool = _Domains(splits, dict(engine.pre_bounds), value[:, 0], torch.zeros(1, dtype=torch.long, device=dev),
                        run.branching.choose(engine, splits, context), dict(engine.lower_slopes), {},
                        dict(engine.cut_multipliers))
        lowest = float("inf")  # smallest bound of the pruned domains (the proven margin)
        if replay is not None and replay.count:
            pool, lowest, found = self._replay_pool(run, lb, ub, row, replay, engine, stats, budget, proved)
            if found is not None:
                return found
        step = 0
        while len(pool):
            if time.perf_counter() > deadline:
                return _RowOutcome("unknown", reason=f"BaB time limit ({cfg.timeout:g}s)", stats=stats)
            if budget[0] <= 0:
                return _RowOutcome("unknown", reason=f"BaB domain limit ({cfg.max_domains})", stats=stats)
            # fully split domains: exact LP
            done = pool.choice[:, 0] < 0
            if bool(done.any()):
                for j in torch.nonzero(done).flatten().tolist():
                    out = self._exact_leaf(run, lb, ub, row, pool.take(torch.tensor([j], device=dev)))
                    if out.status == "falsified":
                        out.stats = stats
                        return out
                    if out.status == "unknown":
                        out.stats = stats
                        return out
                    if out.margin is not None:
                        lowest = min(lowest, out.margin)
                    if proved is not None:
                        proved.append(Leaves.of(pool.take(torch.tensor([j], device=dev)), self.relu_idx))
                pool = pool.take(torch.nonzero(~done).flatten())
                if not len(pool):
                    break
            # as many domains as fit the time left at the last step's rate, at most ``batch``
            fit = int((deadline - time.perf_counter()) / max(per_domain, 1e-9) / 2)
            k = max(1, min(cfg.batch, len(pool), max(budget[0] // 2, 1), fit))
            order = torch.argsort(pool.value)
            parents, pool = pool.take(order[:k]), pool.take(order[k:])
            children = self._split(parents)
            reuse = int(min(self.relu_idx[p] for p in parents.choice[:, 0].tolist()))
            if cfg.intermediate == "root":
                reuse = len(self.layers)
            t_step = time.perf_counter()
            with torch.inference_mode(False), torch.no_grad():
                value, engine = run.bounds.bound(lb, ub, spec1.expand(2 * k, 1, -1), children.splits, children.bounds, reuse,
                                                 {"alpha": children.alpha, "beta": children.beta, "gamma": children.gamma})
            per_domain = (time.perf_counter() - t_step) / (2 * k)
            budget[0] -= 2 * k
            stats["domains"] += 2 * k
            stats["max_depth"] = max(stats["max_depth"], int(children.depth.max()))
            value = torch.maximum(value[:, 0], children.value)
            value = torch.where(engine.infeasible(), torch.full_like(value, float("inf")), value)
            # counterexamples: the bounds' minimisers, and now and then PGD from the worst of them
            cand, found = self._minimisers(engine, row, stats)
            if found is not None:
                return found
            step += 1
            if cfg.pgd_every and step % cfg.pgd_every == 0:
                worst = torch.argsort(value)[: min(8, len(value))]
                found = self._pgd(lb, ub, row, cand[worst], cfg.pgd_steps)
                if found is not None:
                    return _RowOutcome("falsified", found[0], found[1], stats=stats)
            children = _Domains(children.splits, {i: engine.pre_bounds[i] for i in self.relu_idx}, value,
                                children.depth, run.branching.choose(engine, children.splits, context), dict(engine.lower_slopes),
                                dict(engine.split_multipliers), dict(engine.cut_multipliers))
            open_, lowest = self._prune(children, lowest, proved)
            pool = _Domains.cat([pool, open_]) if len(open_) else pool
        return _RowOutcome("certified", lowest if np.isfinite(lowest) else None, stats=stats,
                           leaves=Leaves.cat(proved) if proved is not None else None)

    def _minimisers(self, engine: LinearBounds, row, stats):
        """The minimiser of each domain's bound over the box, and a falsifying outcome if the
        network's margin is <= 0 at one of them (else None)."""
        cand = self._candidates(engine)
        margins = self._margin(cand, row)
        if bool((margins <= 0).any()):
            j = int(torch.argmin(margins))
            return cand, _RowOutcome("falsified", float(margins[j]), cand[j : j + 1].detach(), stats=stats)
        return cand, None

    def _prune(self, domains: _Domains, lowest: float, proved: list | None) -> tuple[_Domains, float]:
        """Drop the proven domains (bound > 0, or empty: +inf): (the open ones, the smallest proven
        finite bound so far); with ``proved`` (a list) the dropped ones are recorded as leaves."""
        proven = domains.value > 0
        finite = proven & torch.isfinite(domains.value)
        if bool(finite.any()):
            lowest = min(lowest, float(domains.value[finite].min()))
        if proved is not None and bool(proven.any()):
            proved.append(Leaves.of(domains.take(torch.nonzero(proven).flatten()), self.relu_idx))
        return domains.take(torch.nonzero(~proven).flatten()), lowest

    def _replay_pool(self, run: _Search, lb, ub, row, leaves: Leaves, root: LinearBounds, stats, budget, proved):
        """Each leaf bounded once under its splits with the root's intermediate bounds and slopes
        (:meth:`replay`): (the leaves not proven now, as open domains; the smallest proven bound;
        a falsifying outcome or None)."""
        cfg = run.config
        spec1 = row.view(1, 1, -1)
        context = BranchContext(self.layers, self.relu_idx, lb, ub, spec1)
        shapes = {i: tuple(root.pre_bounds[i][0].shape[1:]) for i in self.relu_idx}
        parts, lowest = [], float("inf")
        chunk = max(1, 2 * cfg.batch)
        for first in range(0, leaves.count, chunk):
            n = min(leaves.count, first + chunk) - first
            splits = leaves.splits(first, first + n, shapes, self.relu_idx, lb.device)
            prior = {i: (l.expand(n, *l.shape[1:]), u.expand(n, *u.shape[1:])) for i, (l, u) in root.pre_bounds.items()}
            alpha = {i: a.expand(n, *a.shape[1:]).clone() for i, a in root.lower_slopes.items()}
            reuse = len(self.layers) if cfg.intermediate == "root" else \
                min([i for i in self.relu_idx if bool(splits[i].any())], default=len(self.layers))
            with torch.inference_mode(False), torch.no_grad():
                value, engine = run.bounds.bound(lb, ub, spec1.expand(n, 1, -1), splits, prior, reuse,
                                                 {"alpha": alpha, "beta": {}}, steps=self.replay_steps)
            budget[0] -= n
            stats["domains"] += n
            depth = sum(splits[i].reshape(n, -1).ne(0).sum(1) for i in self.relu_idx)
            stats["max_depth"] = max(stats["max_depth"], int(depth.max()))
            value = torch.where(engine.infeasible(), torch.full_like(value[:, 0], float("inf")), value[:, 0])
            _, found = self._minimisers(engine, row, stats)
            if found is not None:
                return None, lowest, found
            doms = _Domains(splits, {i: engine.pre_bounds[i] for i in self.relu_idx}, value, depth.to(lb.device),
                            run.branching.choose(engine, splits, context), dict(engine.lower_slopes), dict(engine.split_multipliers),
                            dict(engine.cut_multipliers))
            open_, lowest = self._prune(doms, lowest, proved)
            parts.append(open_)
        open_parts = [p for p in parts if len(p)]
        return (_Domains.cat(open_parts) if open_parts else parts[-1]), lowest, None

    def _split(self, parents: _Domains) -> _Domains:
        """Two children per parent: its chosen neuron fixed active (first half) and inactive."""
        k = len(parents)
        dup = parents.take(torch.cat([torch.arange(k, device=parents.value.device)] * 2))
        device = parents.value.device
        sign = torch.cat([torch.ones(k, dtype=torch.int8, device=device), -torch.ones(k, dtype=torch.int8, device=device)])
        splits = {i: s.clone() for i, s in dup.splits.items()}
        for pos in set(parents.choice[:, 0].tolist()):
            idx = self.relu_idx[pos]
            rows = torch.nonzero(dup.choice[:, 0] == pos).flatten()
            flat = splits[idx].view(2 * k, -1)
            flat[rows, dup.choice[rows, 1]] = sign[rows]
        return _Domains(splits, dup.bounds, dup.value, dup.depth + 1, dup.choice, dup.alpha, dup.beta, dup.gamma)

    def _attack_all(self, lb, ub, rows, restarts: int, steps: int, deadline: float = float("inf")):
        """PGD on the margins of ``rows`` (M, K) from ``restarts`` uniform starts in one batch,
        start ``k`` minimising row ``k mod M`` (each row gets its own starts, as alpha-beta-CROWN
        attacks every specification: minimising only the smallest margin follows the rows that
        start low and misses one that starts high and crosses), quarter-radius steps x0.9 every
        10, stopped once a start crosses or after the step that passes ``deadline``
        (``time.perf_counter()``); (margin, point) of a counterexample checked on the network,
        else None."""
        targets = rows[torch.arange(restarts, device=rows.device) % rows.shape[0]]  # (restarts, K)
        blb, bub = lb.expand(restarts, *lb.shape[1:]), ub.expand(restarts, *ub.shape[1:])
        policy = StepPolicy(step_size=0.25, milestones=tuple(range(10, steps, 10)), decay=0.9, scale="radius", start="uniform")
        devices = [lb.device] if lb.device.type == "cuda" else []
        with torch.inference_mode(False), torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)  # the same starts for the same sample, whatever ran before (reproducible verdicts)
            x = pgd_maximize(lambda z: -(self.net(z) * targets).sum(1), blb, bub, steps=steps, policy=policy,
                             stop=lambda best: bool((best >= 0).any()) or time.perf_counter() > deadline)
        with torch.no_grad():
            m = (self.net(x) @ rows.T).min(1).values
        j = int(torch.argmin(m))
        return (float(m[j]), x[j : j + 1].detach()) if m[j] <= 0 else None

    def _pgd(self, lb, ub, row, starts: torch.Tensor, steps: int):
        """PGD on ``-row @ f(x)`` from each start point; (margin, point) if one is <= 0."""
        n = starts.shape[0]
        blb, bub = lb.expand(n, *lb.shape[1:]), ub.expand(n, *ub.shape[1:])
        with torch.inference_mode(False):
            x = pgd_maximize(lambda z: -(self.net(z) @ row), blb, bub, steps=steps, policy=_SEEDED, x=starts)
        m = self._margin(x, row)
        j = int(torch.argmin(m))
        return (float(m[j]), x[j : j + 1].detach()) if m[j] <= 0 else None

    # ------------------------------------------------------------------ exact leaves
    def _exact_leaf(self, run: _Search, lb, ub, row, leaf: _Domains) -> _RowOutcome:
        """A domain where every ReLU is stable or split is linear: one LP decides it."""
        blocks = None if self.dense_blocks is None else self.dense_blocks()
        if blocks is None:
            return _RowOutcome("unknown", reason="fully split domain and no LP for this network")
        from scipy.sparse import csc_matrix

        from lit_cert.certify.milp import INFEASIBLE, build_highs, solve_milp

        lo, hi = lb.flatten().double().cpu().numpy(), ub.flatten().double().cpu().numpy()
        n0 = lo.size
        w_eff, b_eff = np.eye(n0), np.zeros(n0)
        a_ub, b_ub = [], []
        for (w, b), idx in zip(blocks[:-1], self.relu_idx):
            l, u = (t[0].flatten().double().cpu().numpy() for t in leaf.bounds[idx])
            split = leaf.splits[idx][0].flatten().cpu().numpy()
            zw, zb = w @ w_eff, w @ b_eff + b
            active = (l >= 0) | (split > 0)
            # active: z >= 0  <=>  -zw x <= zb ; inactive: z <= 0  <=>  zw x <= -zb
            a_ub.append(np.where(active[:, None], -zw, zw))
            b_ub.append(np.where(active, zb, -zb))
            w_eff, b_eff = zw * active[:, None], zb * active
        w_last, b_last = blocks[-1]
        c = row.double().cpu().numpy()
        obj = c @ w_last @ w_eff
        const = float(c @ (w_last @ b_eff + b_last))
        rows_ub = np.concatenate(b_ub)
        model = build_highs(lo, hi, csc_matrix(np.concatenate(a_ub)), np.full(len(rows_ub), -np.inf), rows_ub, np.zeros(n0))
        res = solve_milp(model, obj, max(1e-3, run.config.timeout))
        if res.status == INFEASIBLE:  # the domain is empty
            return _RowOutcome("certified", None)
        if res.status != 0 or res.fun is None:
            return _RowOutcome("unknown", reason=f"LP of a fully split domain failed ({res.message})")
        value = float(res.fun) + const
        if value > 0:
            return _RowOutcome("certified", value)
        x = torch.from_numpy(res.x).to(lb.dtype).to(lb.device).view_as(lb)
        x = torch.min(torch.max(x, lb), ub)
        m = float(self._margin(x, row)[0])
        if m <= 0:
            return _RowOutcome("falsified", m, x)
        return _RowOutcome("unknown", reason=f"LP counterexample not confirmed in the network's precision (margin {m:.2e})")
