"""Joint linear constraints over k ReLUs: facets of the convex hull of their graph over an octagon.

A single-neuron relaxation bounds each ReLU by its own triangle over its own interval; the best
such relaxation of k neurons is the product of k triangles, which ignores that the inputs move
together. PRIMA (Müller et al., POPL 2022) relaxes groups of k neurons *jointly*: over an input
polytope ``P`` tighter than the box -- here the octagon, the box plus bounds on every pairwise sum
and difference ``x_i + x_j``, ``x_i - x_j`` -- it takes the convex hull of the graph
``{(x, relu(x)) : x in P}`` and keeps its facets as linear constraints ``wx . x + wy . y <= c``
on the inputs ``x`` and outputs ``y`` of the group.

Construction (written from those definitions, exact rather than PRIMA's approximations): ReLU is
linear on ``P``'s intersection with every orthant, so the graph's hull is the hull of the images
of those pieces' vertices, and each vertex is the intersection of k hyperplanes among the
octagon's faces and the planes ``x_i = 0``. :func:`graph_points` enumerates all such
intersections that lie in ``P`` (points in ``P`` that are no vertex are points of the graph too,
so they cannot make the hull wrong) and maps them through ReLU; :func:`hull_cuts` takes the
facet *directions* of their convex hull (qhull) and computes each offset ``c`` again, exactly,
as the largest value of the direction over the points, plus a small relative slack.

Soundness therefore rests on two facts only: ``P`` contains every reachable input of the group
(its bounds are sound bounds of the network), and every vertex of every piece is among the
points (a vertex is the solution of k independent face equations; the faces' normals are
0/±1 vectors, so an independent set has an integer determinant of magnitude >= 1 and is never
mistaken for a singular one). Any direction -- a facet qhull computed inexactly, or one we
rounded -- gives a valid constraint with its offset recomputed this way.
"""

from __future__ import annotations

import itertools

import numpy as np

#: relative slack added to every offset (the points are float64 solutions of small systems)
SLACK = 1e-9


def octagon_faces(k: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The octagon's face normals (2k + 4 C(k,2), k) over k inputs -- the box rows ``±e_i``, then
    per pair ``i < j`` the rows ``±(e_i + e_j)`` and ``±(e_i - e_j)`` -- and which bound each row
    reads: (kind, i, j) with kind 0 = box, 1 = sum, 2 = difference, the sign given by the row."""
    rows, keys = [], []
    for i in range(k):
        e = np.zeros(k)
        e[i] = 1
        rows += [e, -e]
        keys += [(0, i, i), (0, i, i)]
    for i, j in itertools.combinations(range(k), 2):
        for kind, sj in ((1, 1.0), (2, -1.0)):
            e = np.zeros(k)
            e[i], e[j] = 1, sj
            rows += [e, -e]
            keys += [(kind, i, j), (kind, i, j)]
    return np.array(rows), keys


def octagon_offsets(lo: np.ndarray, hi: np.ndarray, pair_lo: np.ndarray, pair_hi: np.ndarray) -> np.ndarray:
    """Right-hand sides ``b`` of ``A x <= b`` (rows of :func:`octagon_faces`) from the box
    ``[lo, hi]`` (k,) and the bounds of the pairwise sums and differences, ``pair_lo, pair_hi``
    (C(k,2), 2): column 0 the sum ``x_i + x_j``, column 1 the difference ``x_i - x_j``, pairs in
    ``itertools.combinations`` order."""
    k = lo.shape[0]
    b = []
    for i in range(k):
        b += [hi[i], -lo[i]]
    for p in range(len(pair_lo)):
        b += [pair_hi[p, 0], -pair_lo[p, 0], pair_hi[p, 1], -pair_lo[p, 1]]
    return np.array(b, dtype=np.float64)


def graph_points(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Points (V, 2k) ``(x, relu(x))`` whose convex hull is the hull of ReLU's graph over the
    polytope ``{x : a x <= b}`` (bounded, 0/±1 normals): every intersection of k faces or
    planes ``x_i = 0`` that satisfies ``a x <= b`` up to a relative tolerance (a point slightly
    outside only widens the hull). Empty (0, 2k) when the polytope is empty."""
    k = a.shape[1]
    planes = np.concatenate([a, np.eye(k)])
    rhs = np.concatenate([b, np.zeros(k)])
    combos = np.array(list(itertools.combinations(range(len(planes)), k)))
    m = planes[combos]  # (S, k, k)
    det = np.linalg.det(m)
    ok = np.abs(det) > 0.5  # integer determinants: independent sets have |det| >= 1
    m, r = m[ok], rhs[combos[ok]]
    x = np.linalg.solve(m, r[..., None])[..., 0]
    scale = 1.0 + np.abs(b).max()
    inside = (x @ a.T <= b + 1e-9 * scale).all(1)
    x = x[inside]
    if len(x):
        x = np.unique(np.round(x, 12), axis=0)
    return np.concatenate([x, np.maximum(x, 0)], 1)


def hull_cuts(points: np.ndarray, k: int, max_cuts: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Constraints ``wx . x + wy . y <= c`` valid on every point (and so on their hull), from the
    facets of the hull of ``points`` (V, 2k) that tie at least two neurons together and involve
    an output (the others are single-neuron constraints the relaxation already has, or bounds on
    the inputs alone). Returns ``wx, wy`` (C, k) and ``c`` (C,), with each direction scaled to
    unit max-norm and ``c`` recomputed over the points plus :data:`SLACK`; C may be 0 (a
    degenerate hull, or no joint facet). ``max_cuts`` keeps that many, the most violated by the
    product of single-neuron triangles first (the point of the joint relaxation)."""
    from scipy.spatial import ConvexHull, QhullError

    empty = (np.zeros((0, k)), np.zeros((0, k)), np.zeros(0))
    if len(points) <= 2 * k:
        return empty
    try:
        hull = ConvexHull(points)
    except (QhullError, ValueError):
        try:  # a degenerate point set: joggled directions are fine, the offsets are recomputed
            hull = ConvexHull(points, qhull_options="QJ Pp")
        except (QhullError, ValueError):
            return empty
    normals = hull.equations[:, :-1]
    normals = normals / np.abs(normals).max(1, keepdims=True)
    normals = np.round(normals, 6)  # one row per facet, not per simplex of its triangulation
    normals[np.abs(normals) < 1e-6] = 0.0
    wx, wy = normals[:, :k], normals[:, k:]
    involved = ((wx != 0) | (wy != 0)).sum(1)
    keep = (involved >= 2) & (np.abs(wy) > 0).any(1)
    wx, wy = wx[keep], wy[keep]
    if not len(wx):
        return empty
    wx, wy = np.unique(np.concatenate([wx, wy], 1), axis=0).reshape(-1, 2, k).transpose(1, 0, 2)
    c = offsets(points, wx, wy)
    if max_cuts is not None and len(c) > max_cuts:
        order = np.argsort(-_violation_by_triangles(points, wx, wy, c, k))[:max_cuts]
        wx, wy, c = wx[order], wy[order], c[order]
    return wx, wy, c


def offsets(points: np.ndarray, wx: np.ndarray, wy: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The smallest valid offsets ``c`` (C,) of the directions ``wx, wy`` (C, k) over ``points``
    (V, 2k): the largest value of each direction over the points, plus :data:`SLACK` relative to
    the magnitudes involved, rounded *up* to ``dtype`` (a float32 offset rounded to nearest could
    cut off the point that attains it). Directions are used as given: round them to ``dtype``
    first if they will be used in it."""
    k = wx.shape[1]
    c = (points[:, :k] @ wx.T + points[:, k:] @ wy.T).max(0)
    scale = np.abs(wx).sum(1) * np.abs(points[:, :k]).max() + np.abs(wy).sum(1) * np.abs(points[:, k:]).max()
    c = c + SLACK * (1.0 + np.abs(c) + scale)
    out = c.astype(dtype)
    return np.where(out.astype(np.float64) < c, np.nextafter(out, np.array(np.inf, dtype=dtype)), out)


def _violation_by_triangles(points: np.ndarray, wx, wy, c, k: int) -> np.ndarray:
    """How far each cut is violated by the best point of the product of the k single-neuron
    triangles over the box of ``points`` -- maximise ``wx . x + wy . y`` there: each neuron
    separately, over its triangle's three vertices -- minus ``c`` (> 0: the cut removes part of
    the single-neuron relaxation)."""
    lo, hi = points[:, :k].min(0), points[:, :k].max(0)
    best = np.zeros(len(c))
    for i in range(k):  # the triangle's vertices: (l, 0), (0, 0), (u, u)
        vx = np.array([min(lo[i], 0.0), 0.0, max(hi[i], 0.0)])
        cand = wx[:, i : i + 1] * vx + wy[:, i : i + 1] * np.maximum(vx, 0)
        best += cand.max(1)
    return best - c
