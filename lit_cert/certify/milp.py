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
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from lit_cert.bounds.affine import silenced_native_output


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
    w_last, b_last = blocks[-1]
    constraints = []
    if r:
        constraints.append(LinearConstraint(coo_matrix((vals, (rows, cols)), shape=(r, nvar)).tocsr(), np.array(rlo), np.array(rhi)))
    min_margin, status, reason = np.inf, "certified", None
    for row in spec_rows:
        remaining = timeout - (time.perf_counter() - start)
        if remaining <= 0:
            return MILPResult("unknown", None, None, time.perf_counter() - start, "time limit")
        obj = np.zeros(nvar)
        obj[prev] = row @ w_last
        const = float(row @ b_last)
        with silenced_native_output():
            res = milp(obj, constraints=constraints, integrality=integrality, bounds=Bounds(lo, hi), options={"time_limit": remaining})
        dual = getattr(res, "mip_dual_bound", None)
        primal = float(res.fun) + const if res.x is not None and res.fun is not None else None
        if primal is not None and primal <= 0:  # a point with a non-positive margin (re-checked by the cascade)
            return MILPResult("falsified", primal, res.x[:n0].copy(), time.perf_counter() - start)
        if dual is None and res.status == 0 and not integrality.any():
            dual = res.fun  # a pure LP (every ReLU stable): its optimum is the proven bound
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
