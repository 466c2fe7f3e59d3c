"""Complete verification of small ReLU networks by mixed-integer linear programming (HiGHS).

The network is turned into dense affine maps between ReLUs (consecutive affine layers --
Normalize, Conv2d, Linear, eval-mode BatchNorm, Flatten -- are composed by pushing the identity
basis through them). Each unstable ReLU ``a = relu(z)`` with ``l < 0 < u`` gets the exact big-M
encoding ``a >= z, a >= 0, a <= z - l (1 - d), a <= u d`` with binary ``d``; stable ones are
linear. Pre-activation bounds come from the earlier (sound) stages. For each margin we minimise
it; HiGHS's dual bound certifies the margin even when the time limit stops the search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix

from lit_cert.bounds.affine import silenced_native_output


#: HiGHS options of every MILP. Its sub-MIP heuristics (RINS, RENS) are off: on these models --
#: hundreds of continuous inputs in dense first-layer rows, a few dozen binaries -- each sub-MIP
#: costs ~0.1-0.3 s and HiGHS runs several per solve, so they were ~90% of the time (measured on
#: a 784-20-10-5-5 FC: 3.5 s -> 0.35 s for one margin with 13 unstable ReLUs, the same optimum;
#: benchmarks/bench_milp.py). Nothing else of the search changes.
HIGHS_OPTIONS = {"output_flag": False, "mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False}


def build_highs(lo: np.ndarray, hi: np.ndarray, a, row_lo: np.ndarray, row_hi: np.ndarray, integrality: np.ndarray):
    """(HiGHS instance, has binaries) holding the MILP (columns ``[lo, hi]``, rows ``row_lo <= a x
    <= row_hi``, ``integrality`` 1 for the binaries); each margin then only changes the costs."""
    import highspy

    with silenced_native_output():  # the banner HiGHS prints when created
        h = highspy.Highs()
    for key, value in HIGHS_OPTIONS.items():
        h.setOptionValue(key, value)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(lo), a.shape[0]
    lp.col_cost_ = np.zeros(len(lo))
    lp.col_lower_, lp.col_upper_ = lo.astype(float), hi.astype(float)
    lp.row_lower_, lp.row_upper_ = row_lo, row_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    if integrality.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous for v in integrality]
    h.passModel(lp)
    return h, bool(integrality.any())


#: :class:`SolveResult` status of a model without a feasible point
INFEASIBLE = 3


@dataclass
class SolveResult:
    """One MILP solve: ``status`` 0 optimal (within the MIP gap), 1 time limit, 3 infeasible
    (:data:`INFEASIBLE`), 2 other; the
    objective of the best point found (``fun``, ``x``; None without one) and the proven lower
    bound (``mip_dual_bound``: for an LP, its optimum)."""

    status: int
    fun: float | None
    mip_dual_bound: float | None
    x: np.ndarray | None
    message: str = ""


def solve_milp(model, obj: np.ndarray, time_limit: float) -> SolveResult:
    """Minimise ``obj @ x`` over the model of :func:`build_highs` within ``time_limit`` seconds."""
    import highspy

    highs, is_mip = model
    n = len(obj)
    highs.changeColsCost(n, np.arange(n, dtype=np.int32), obj.astype(float))
    highs.setOptionValue("time_limit", float(time_limit))
    with silenced_native_output():
        highs.run()
    model_status = highs.getModelStatus()
    info = highs.getInfo()
    status = {highspy.HighsModelStatus.kOptimal: 0, highspy.HighsModelStatus.kTimeLimit: 1,
              highspy.HighsModelStatus.kInfeasible: INFEASIBLE}.get(model_status, 2)
    has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
    fun = float(info.objective_function_value) if has_point else None
    x = np.array(highs.getSolution().col_value) if has_point else None
    if is_mip:
        dual = float(info.mip_dual_bound)
    else:  # an LP (every ReLU stable): its optimum is the proven bound
        dual = fun if status == 0 else None
    return SolveResult(status, fun, dual, x, highs.modelStatusToString(model_status))


#: a margin is certified only when HiGHS's proven lower bound exceeds this (its primal
#: feasibility tolerance is 1e-7: a bound within it of 0 is not a proof)
CERTIFY_TOLERANCE = 1e-6


@dataclass
class MILPResult:
    status: str  # "certified", "falsified" or "unknown"
    min_margin: float | None  # the smallest margin proven (lower bound) or found
    counterexample: np.ndarray | None
    seconds: float
    reason: str | None = None  # why an unknown result is unknown


def encode_network(blocks: list[tuple[np.ndarray, np.ndarray]], lb: np.ndarray, ub: np.ndarray,
                   pre_bounds: list[tuple[np.ndarray, np.ndarray]]):
    """The big-M MILP of the network over the box (module docstring): (HiGHS model, number of
    variables, indices of the last ReLU layer's outputs -- the objective of ``c @ f(x)`` is
    ``c @ W_L`` on them plus the constant ``c @ b_L``)."""
    n0 = lb.size
    sizes = [w.shape[0] for w, _ in blocks[:-1]]
    nvar = n0 + 2 * sum(sizes)
    lo, hi = np.full(nvar, -np.inf), np.full(nvar, np.inf)
    lo[:n0], hi[:n0] = lb, ub
    integrality = np.zeros(nvar)
    rows, cols, vals, rlo, rhi = [], [], [], [], []
    r = 0

    prev = np.arange(n0)
    offset = n0
    for (w, b), (zl, zu), n in zip(blocks[:-1], pre_bounds, sizes):
        a_idx = np.arange(offset, offset + n)
        d_idx = np.arange(offset + n, offset + 2 * n)
        offset += 2 * n
        lo[a_idx], hi[a_idx] = 0.0, np.maximum(zu, 0.0)
        lo[d_idx], hi[d_idx] = 0.0, 1.0
        nz_r, nz_c = np.nonzero(w)
        for j in range(n):
            sel = nz_r == j
            wcols, wvals = prev[nz_c[sel]], w[j, nz_c[sel]]
            if zu[j] <= 0:  # dead
                hi[a_idx[j]] = 0.0
                continue
            # a - w x >= b   (a >= z)
            rows.extend([r] * (len(wcols) + 1)); cols.extend([*wcols, a_idx[j]]); vals.extend([*(-wvals), 1.0])
            if zl[j] >= 0:  # active: a = z
                rlo.append(b[j]); rhi.append(b[j]); r += 1
                continue
            rlo.append(b[j]); rhi.append(np.inf); r += 1
            # a - w x - l d <= b - l   (a <= z - l (1 - d))
            rows.extend([r] * (len(wcols) + 2)); cols.extend([*wcols, a_idx[j], d_idx[j]]); vals.extend([*(-wvals), 1.0, -zl[j]])
            rlo.append(-np.inf); rhi.append(b[j] - zl[j]); r += 1
            # a - u d <= 0
            rows.extend([r, r]); cols.extend([a_idx[j], d_idx[j]]); vals.extend([1.0, -zu[j]])
            rlo.append(-np.inf); rhi.append(0.0); r += 1
            integrality[d_idx[j]] = 1
        prev = a_idx
    a = coo_matrix((vals, (rows, cols)), shape=(r, nvar)).tocsc()
    return build_highs(lo, hi, a, np.array(rlo, dtype=float), np.array(rhi, dtype=float), integrality), nvar, prev


def verify_milp(
    blocks: list[tuple[np.ndarray, np.ndarray]],
    lb: np.ndarray,
    ub: np.ndarray,
    pre_bounds: list[tuple[np.ndarray, np.ndarray]],
    spec_rows: np.ndarray,
    timeout: float,
) -> MILPResult:
    """Decide ``min_x spec_rows @ f(x) > 0`` for all rows over the box ``[lb, ub]`` (flattened).

    ``pre_bounds[k]`` bounds the input of the k-th ReLU layer (sound, e.g. from CROWN/IBP).
    """
    start = time.perf_counter()
    highs, nvar, prev = encode_network(blocks, lb, ub, pre_bounds)
    n0 = lb.size
    w_last, b_last = blocks[-1]
    min_margin, status, reason = np.inf, "certified", None
    for row in spec_rows:
        remaining = timeout - (time.perf_counter() - start)
        if remaining <= 0:
            return MILPResult("unknown", None, None, time.perf_counter() - start, "time limit")
        obj = np.zeros(nvar)
        obj[prev] = row @ w_last
        const = float(row @ b_last)
        res = solve_milp(highs, obj, remaining)
        dual = res.mip_dual_bound
        primal = float(res.fun) + const if res.x is not None and res.fun is not None else None
        if primal is not None and primal <= 0:  # a point with a non-positive margin (re-checked by the cascade)
            return MILPResult("falsified", primal, res.x[:n0].copy(), time.perf_counter() - start)
        proven = float(dual) + const if dual is not None and np.isfinite(dual) else None
        if proven is not None and proven > CERTIFY_TOLERANCE:
            # certified by the proven (dual) bound only: the optimum HiGHS reports is exact only up
            # to its MIP gap (default 1e-4 relative, 1e-6 absolute), so a true minimum in
            # (-gap, 0) could sit below a positive primal value
            min_margin = min(min_margin, proven)
        else:
            status = "unknown"
            if res.status == 0 and proven is not None:  # solved, but the gap straddles zero
                reason = f"proven bound {proven:.2e} <= {CERTIFY_TOLERANCE:g} < found margin {primal:.2e} (within the MIP gap)"
            else:
                reason = "time limit" if res.status == 1 else f"solver status {res.status}: {res.message}"
    return MILPResult(status, None if status == "unknown" else float(min_margin), None, time.perf_counter() - start,
                      None if status != "unknown" else reason)


def exact_ranges(blocks: list[tuple[np.ndarray, np.ndarray]], lb: np.ndarray, ub: np.ndarray,
                 pre_bounds: list[tuple[np.ndarray, np.ndarray]], rows: np.ndarray, timeout: float) -> list[dict]:
    """``min_x row @ f(x)`` over the box for every row, exactly (one model, one solve per row,
    ``timeout`` seconds in all): per row the best value found (``value``, attained by a point of
    the box), HiGHS's proven lower bound (``proven``) and whether the solve reached optimality
    (``optimal``: the two agree up to the MIP gap)."""
    start = time.perf_counter()
    highs, nvar, prev = encode_network(blocks, lb, ub, pre_bounds)
    w_last, b_last = blocks[-1]
    out = []
    for row in rows:
        obj = np.zeros(nvar)
        obj[prev] = row @ w_last
        const = float(row @ b_last)
        res = solve_milp(highs, obj, max(timeout - (time.perf_counter() - start), 1e-3))
        out.append({"value": None if res.fun is None else float(res.fun) + const,
                    "proven": None if res.mip_dual_bound is None or not np.isfinite(res.mip_dual_bound) else float(res.mip_dual_bound) + const,
                    "optimal": res.status == 0})
    return out
