"""Triangle and Parallelogram: single-neuron ReLU relaxations bounded by linear programs.

Seed 002 (the paradox paper), Sec. 5.2 and App. K.1, trains with the two tightest *continuous*
single-neuron relaxations, which have no back-substitution form: every bound is the optimum of
a linear program over the relaxed network. For an unstable ReLU ``h = relu(z)``, ``l < 0 < u``:

* ``triangle``: ``h >= 0``, ``h >= z``, ``h <= u/(u-l) (z - l)`` (the convex hull);
* ``parallelogram``: ``h >= 0``, ``h >= z``, ``h <= u``, ``h <= z - l`` (constant upper slopes
  0 and 1: less sensitive to the bounds, App. D.2 proves both continuous);

stable neurons are exact (``h = z`` or ``h = 0``). Layer by layer, the lower and upper bound of
every pre-activation is the minimum / maximum of that neuron over the LP of the layers before it
(App. K.1, Eq. 5), and the margins' lower bounds are the minima of the margin rows over the LP
of the whole network.

Differentiation (the paper used cvxpylayers; we measured and chose an envelope-theorem layer,
see the README): an LP's optimal value ``v(theta) = min c(theta)^T x s.t. A(theta) x (<=, =)
b(theta)`` has, where its solution is unique, the gradient of the Lagrangian at the optimal
primal-dual pair: ``dv = dc^T x* + sum_r mu_r (db_r - dA_r x*)`` with ``mu_r = dv/db_r`` the
row's dual. So each LP is solved without gradients (HiGHS, warm-started across the neurons of
a layer) and its value is rebuilt as a torch expression of the parameters and of the earlier
bounds at the fixed optimal ``x*`` and ``mu`` -- equal to the optimum (complementary slackness)
and with the right gradient. Bounds of later layers depend on earlier bounds (through ``l``,
``u`` and the triangle slope), and autograd chains those dependencies as in the paper's
multi-level problem.

Only neurons that IBP leaves unstable get LPs: both relaxations lie inside IBP's boxes layer by
layer, so an IBP-stable neuron is stable here too, and its relaxation (exact) does not depend on
its bounds. Cost: two LPs per unstable hidden neuron and one per margin, per sample -- small
networks only (the paper: a 2x20 network on 16 PCA features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lit_cert.bounds.box import interval_bounds
from lit_cert.bounds.affine import affine_segments, silenced_native_output

LP_RELAXATIONS = ("triangle", "parallelogram")


@dataclass
class _Rows:
    """The rows of one LP and, per hidden layer j, which rows encode which constraint of which
    neuron (for the envelope-theorem value)."""

    a: np.ndarray  # (R, V) dense
    lo: np.ndarray
    hi: np.ndarray
    tags: list[dict]  # per layer j: {"eq": (rows, neurons), "ge": ..., "tri": ..., "cap": ..., "shift": ...}


class LPSolver:
    """Solves a family of LPs that share constraints and differ in the objective, returning
    optimal primal points and row duals ``mu = dv/d(rhs)``. HiGHS through ``highspy`` (warm
    starts between objectives) when installed, else scipy's ``linprog`` (HiGHS too, one call per
    objective)."""

    def __init__(self, backend: str = "auto"):
        if backend == "auto":
            try:
                import highspy  # noqa: F401

                backend = "highspy"
            except ImportError:
                backend = "scipy"
        if backend not in ("highspy", "scipy"):
            raise ValueError(f"LP backend must be auto, highspy or scipy, got {backend!r}")
        self.backend = backend
        self._highs = None

    def solve(self, rows: _Rows, col_lo: np.ndarray, col_hi: np.ndarray, costs: np.ndarray):
        """For every cost vector (rows of ``costs``): (x*, row duals), or raises if not optimal."""
        if self.backend == "scipy":
            return self._solve_scipy(rows, col_lo, col_hi, costs)
        return self._solve_highspy(rows, col_lo, col_hi, costs)

    def _solve_scipy(self, rows, col_lo, col_hi, costs):
        from scipy.optimize import linprog

        eq = rows.lo == rows.hi
        up = ~eq & np.isfinite(rows.hi)
        lo = ~eq & np.isfinite(rows.lo)
        a_ub = np.concatenate([rows.a[up], -rows.a[lo]])
        b_ub = np.concatenate([rows.hi[up], -rows.lo[lo]])
        xs, duals = [], []
        for c in costs:
            res = linprog(c, A_ub=a_ub if len(a_ub) else None, b_ub=b_ub if len(b_ub) else None,
                          A_eq=rows.a[eq] if eq.any() else None, b_eq=rows.hi[eq] if eq.any() else None,
                          bounds=list(zip(col_lo, col_hi)), method="highs")
            if res.status != 0:
                raise RuntimeError(f"LP bound failed: {res.message}")
            mu = np.zeros(len(rows.lo))
            if eq.any():
                mu[eq] = res.eqlin.marginals
            m_ub = res.ineqlin.marginals if len(a_ub) else np.zeros(0)
            mu[up] += m_ub[: up.sum()]
            mu[lo] -= m_ub[up.sum():]  # d v / d lo = -(d v / d (-lo))
            xs.append(res.x)
            duals.append(mu)
        return np.array(xs), np.array(duals)

    def _solve_highspy(self, rows, col_lo, col_hi, costs):
        import highspy

        if self._highs is None:
            with silenced_native_output():
                self._highs = highspy.Highs()
            self._highs.setOptionValue("output_flag", False)
        h = self._highs
        h.clearModel()
        lp = highspy.HighsLp()
        nrow, ncol = rows.a.shape
        lp.num_col_, lp.num_row_ = ncol, nrow
        lp.col_cost_ = np.zeros(ncol)
        lp.col_lower_, lp.col_upper_ = col_lo.astype(float), col_hi.astype(float)
        lp.row_lower_, lp.row_upper_ = rows.lo.astype(float), rows.hi.astype(float)
        r, c = np.nonzero(rows.a)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=nrow))]).astype(np.int32)
        lp.a_matrix_.index_ = c.astype(np.int32)
        lp.a_matrix_.value_ = rows.a[r, c]
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = ncol, nrow
        h.passModel(lp)
        idx = np.arange(ncol, dtype=np.int32)
        xs, duals = [], []
        for cost in costs:
            h.changeColsCost(ncol, idx, cost.astype(float))
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"LP bound failed: {h.modelStatusToString(h.getModelStatus())}")
            sol = h.getSolution()
            xs.append(np.array(sol.col_value))
            duals.append(np.array(sol.row_dual))
        return np.array(xs), np.array(duals)


class LPBounds:
    """Triangle / Parallelogram bounds of one network over a batch of input boxes (module doc).

    Args:
        net: a ReLU network whose layers between ReLUs are affine (Linear, Conv2d, Normalize,
            eval-mode BatchNorm, Flatten), small enough for dense matrices.
        relaxation: ``triangle`` or ``parallelogram``.
        backend: LP solver, ``auto`` (highspy if installed), ``highspy`` or ``scipy``.
    """

    def __init__(self, net: nn.Module, relaxation: str = "triangle", backend: str = "auto"):
        if relaxation not in LP_RELAXATIONS:
            raise ValueError(f"LP relaxation must be one of {LP_RELAXATIONS}, got {relaxation!r}")
        self.net, self.relaxation = net, relaxation
        self.solver = LPSolver(backend)

    def margins(self, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Lower bounds (B, M) of ``spec @ net(x)`` over each box, differentiable in the
        network's parameters (zero rows of ``spec`` give exactly 0)."""
        segments = affine_segments(self.net, tuple(lb.shape[1:]))
        with torch.no_grad():  # IBP decides which neurons need LPs (module docstring)
            ref = IntervalRef(self.net, lb, ub)
        out = []
        for i in range(lb.shape[0]):
            out.append(self._sample(segments, lb[i].flatten(), ub[i].flatten(), spec[i], ref.sample(i)))
        return torch.stack(out)

    # ------------------------------------------------------------------ one sample
    def _sample(self, segments, lb, ub, spec, ref):
        w0, b0 = segments[0]
        c, r = (ub + lb) / 2, (ub - lb) / 2
        bounds = [(w0 @ c + b0 - w0.abs() @ r, w0 @ c + b0 + w0.abs() @ r)]  # one affine map: exact
        for k in range(1, len(segments) - 1):  # the input of ReLU layer k
            rl, ru = ref[k]
            todo = torch.nonzero((rl < 0) & (ru > 0)).flatten()
            l, u = rl.clone().to(lb.dtype), ru.clone().to(lb.dtype)
            if len(todo):
                w, b = segments[k]
                obj = torch.cat([w[todo], -w[todo]])  # min z_i and min -z_i
                vals = self._optimum(segments, bounds, k, obj, lb, ub)
                off = torch.cat([b[todo], -b[todo]])
                vals = vals + off
                n = len(todo)
                l = l.index_put((todo,), vals[:n])
                u = u.index_put((todo,), -vals[n:])
            bounds.append((l, u))
        w, b = segments[-1]
        nonzero = spec.abs().sum(1) > 0
        low = torch.zeros(spec.shape[0], dtype=lb.dtype, device=lb.device)
        if bool(nonzero.any()):
            rows = spec[nonzero].to(w.dtype)
            vals = self._optimum(segments, bounds, len(segments) - 1, rows @ w, lb, ub) + rows @ b
            low = low.index_put((torch.nonzero(nonzero).flatten(),), vals)
        return low

    def _rows(self, segments, bounds, k, n0):
        """The LP of layers 0..k-1 over variables [x, h_0, ..., h_{k-1}] (numpy) with tags."""
        sizes = [n0] + [segments[j][0].shape[0] for j in range(k)]
        offsets = np.cumsum([0] + sizes)
        nvar = int(offsets[-1])
        a_rows, lo, hi, tags = [], [], [], []
        col_lo = np.full(nvar, -np.inf)
        col_hi = np.full(nvar, np.inf)
        for j in range(k):
            w, b = (t.detach().cpu().double().numpy() for t in segments[j])
            l, u = (t.detach().cpu().double().numpy() for t in bounds[j])
            prev = slice(offsets[j], offsets[j + 1])
            own = offsets[j + 1]
            tag = {name: ([], []) for name in ("eq", "ge", "tri", "cap", "shift")}

            def add(name, i, coef_h, coef_prev, low, high):
                row = np.zeros(nvar)
                row[own + i] = coef_h
                row[prev] = coef_prev
                tag[name][0].append(len(lo))
                tag[name][1].append(i)
                a_rows.append(row)
                lo.append(low)
                hi.append(high)

            for i in range(w.shape[0]):
                if u[i] <= 0:  # dead: h = 0
                    col_lo[own + i] = col_hi[own + i] = 0.0
                elif l[i] >= 0:  # active: h - W h_prev = b
                    add("eq", i, 1.0, -w[i], b[i], b[i])
                else:
                    col_lo[own + i] = 0.0  # h >= 0
                    add("ge", i, 1.0, -w[i], b[i], np.inf)  # h >= z
                    if self.relaxation == "triangle":
                        lam = u[i] / (u[i] - l[i])
                        add("tri", i, 1.0, -lam * w[i], -np.inf, lam * (b[i] - l[i]))  # h <= lam (z - l)
                    else:
                        add("cap", i, 1.0, np.zeros(prev.stop - prev.start), -np.inf, u[i])  # h <= u
                        add("shift", i, 1.0, -w[i], -np.inf, b[i] - l[i])  # h <= z - l
            tags.append({name: (np.array(r, dtype=np.int64), np.array(i, dtype=np.int64)) for name, (r, i) in tag.items()})
        a = np.array(a_rows) if a_rows else np.zeros((0, nvar))
        return _Rows(a, np.array(lo, dtype=float), np.array(hi, dtype=float), tags), col_lo, col_hi, offsets

    def _optimum(self, segments, bounds, k, obj, lb, ub):
        """min over the LP of layers < k of ``obj @ h_{k-1}`` for every row of ``obj`` (torch, with
        the envelope-theorem gradient; module docstring)."""
        n0 = lb.numel()
        rows, col_lo, col_hi, offsets = self._rows(segments, bounds, k, n0)
        col_lo[:n0] = lb.detach().cpu().double().numpy()
        col_hi[:n0] = ub.detach().cpu().double().numpy()
        last = slice(offsets[k], offsets[k + 1])
        costs = np.zeros((obj.shape[0], rows.a.shape[1]))
        costs[:, last] = obj.detach().cpu().double().numpy()
        xs, mus = self.solver.solve(rows, col_lo, col_hi, costs)
        dtype, device = obj.dtype, obj.device
        x = torch.as_tensor(xs, dtype=dtype, device=device)
        mu = torch.as_tensor(mus, dtype=dtype, device=device)
        value = (obj * x[:, last]).sum(1)
        for j, tag in enumerate(rows.tags):
            w, b = segments[j]
            l, u = bounds[j]
            h_prev = x[:, offsets[j] : offsets[j + 1]]
            h_own = x[:, offsets[j + 1] : offsets[j + 2]]
            z = h_prev @ w.T + b  # z_j(theta) at the fixed x*
            for name, (r, i) in tag.items():
                if not len(r):
                    continue
                r_t = torch.as_tensor(r, device=device)
                i_t = torch.as_tensor(i, device=device)
                zi, hi_, li, ui = z[:, i_t], h_own[:, i_t], l[i_t], u[i_t]
                if name in ("eq", "ge"):  # rhs - A x = b - (h - W h_prev) = z - h
                    slack = zi - hi_
                elif name == "tri":  # lam (b - l) - (h - lam W h_prev) = lam (z - l) - h
                    slack = ui / (ui - li) * (zi - li) - hi_
                elif name == "cap":
                    slack = ui - hi_
                else:  # shift: (b - l) - (h - W h_prev) = z - l - h
                    slack = zi - li - hi_
                value = value + (mu[:, r_t] * slack).sum(1)
        return value


class IntervalRef:
    """IBP bounds of every ReLU input of a network, per sample (flat), for choosing the neurons
    that need LPs."""

    def __init__(self, net: nn.Module, lb: torch.Tensor, ub: torch.Tensor):
        from lit_cert.bounds.trace import IntervalTrace

        trace = IntervalTrace()
        interval_bounds(net, lb, ub, trace=trace)
        self.relu_inputs = [(l.flatten(1), u.flatten(1)) for l, u in trace.relu_inputs]

    def sample(self, i: int) -> list:
        """[None for the first layer (exact), then (l, u) of ReLU layer k] for sample ``i``."""
        return [None] + [(l[i], u[i]) for l, u in self.relu_inputs[1:]]


def lp_margin_bounds(net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor,
                     relaxation: str = "triangle", backend: str = "auto") -> torch.Tensor:
    """Lower bounds (B, M) of ``spec @ net(x)`` under the Triangle or Parallelogram LP relaxation."""
    return LPBounds(net, relaxation, backend).margins(lb, ub, spec)
