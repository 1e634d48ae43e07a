"""NSGA-II ranking, crowding distance and selection; Pareto masks and 2-D hypervolume.

Paper:
    A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II, K. Deb, A. Pratap,
    S. Agarwal, T. Meyarivan, IEEE Trans. Evolutionary Computation 6(2), 2002.
    https://doi.org/10.1109/4235.996017

All functions take a matrix ``F`` of shape ``(n, m)`` whose columns are to be *minimised*
(:meth:`~nasforge.strategies.objectives.SearchObjectives.minimization_matrix` turns maximised
objectives around). Constraints follow Deb's constrained domination: every feasible solution
ranks before every infeasible one, and infeasible ones rank by total violation.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "crowding_distance",
    "hypervolume_2d",
    "non_dominated_fronts",
    "nsga2_select",
    "pareto_mask",
]


def _dominates(F: np.ndarray) -> np.ndarray:
    """D[i, j] is True when row i Pareto-dominates row j."""
    le = (F[:, None, :] <= F[None, :, :]).all(axis=2)
    lt = (F[:, None, :] < F[None, :, :]).any(axis=2)
    return np.asarray(le & lt, dtype=bool)


def non_dominated_fronts(F: np.ndarray) -> list[np.ndarray]:
    """Fast non-dominated sorting.

    Args:
        F: objective matrix, shape ``(n, m)``, minimised.

    Returns:
        The fronts, best first; each an int array of row indices in increasing order.

    Example:
        >>> F = np.array([[1, 4], [2, 2], [4, 1], [3, 3], [4, 4]])
        >>> [f.tolist() for f in non_dominated_fronts(F)]
        [[0, 1, 2], [3], [4]]
    """
    F = np.asarray(F, dtype=np.float64)
    n = F.shape[0]
    if n == 0:
        return []
    dom = _dominates(F)
    count = dom.sum(axis=0)  # how many rows dominate each row
    fronts: list[np.ndarray] = []
    remaining = np.ones(n, dtype=bool)
    current = np.flatnonzero(count == 0)
    while current.size:
        fronts.append(current)
        remaining[current] = False
        count = count - dom[current].sum(axis=0)
        current = np.flatnonzero(remaining & (count == 0))
    return fronts


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """Crowding distance of the rows of one front.

    Each boundary row (smallest or largest in some objective) gets ``inf``; the others the sum
    over objectives of the normalised gap between their two neighbours.

    Args:
        F: shape ``(n, m)``, the rows of one front.

    Returns:
        float64 array of shape ``(n,)``.

    Example:
        >>> crowding_distance(np.array([[0.0, 4.0], [1.0, 2.0], [2.0, 1.0], [4.0, 0.0]]))
        array([ inf, 1.25, 1.25,  inf])
    """
    F = np.asarray(F, dtype=np.float64)
    n, m = F.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        col = F[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span <= 0:
            continue
        dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def nsga2_select(F: np.ndarray, k: int, violation: np.ndarray | None = None) -> np.ndarray:
    """Choose ``k`` rows by NSGA-II's elitist rule (rank, then crowding distance).

    Feasible rows (violation 0) come first by non-dominated rank; within the last front that
    fits only partly, larger crowding distance wins (ties: lower index). Infeasible rows fill
    remaining places in order of increasing violation.

    Args:
        F: shape ``(n, m)``, minimised.
        k: how many rows to keep.
        violation: shape ``(n,)``, total bound violation (None: all feasible).

    Returns:
        Row indices, best first, ``min(k, n)`` of them.
    """
    F = np.asarray(F, dtype=np.float64)
    n = F.shape[0]
    viol = np.zeros(n) if violation is None else np.asarray(violation, dtype=np.float64)
    feasible = np.flatnonzero(viol == 0)
    chosen: list[int] = []
    for front in non_dominated_fronts(F[feasible]):
        idx = feasible[front]
        if len(chosen) + idx.size <= k:
            cd = crowding_distance(F[idx])
            chosen.extend(idx[np.lexsort((idx, -cd))].tolist())
            continue
        cd = crowding_distance(F[idx])
        order = np.lexsort((idx, -cd))
        chosen.extend(idx[order][: k - len(chosen)].tolist())
        break
    if len(chosen) < k:
        infeasible = np.flatnonzero(viol > 0)
        order = np.lexsort((infeasible, viol[infeasible]))
        chosen.extend(infeasible[order][: k - len(chosen)].tolist())
    return np.asarray(chosen[:k], dtype=np.int64)


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """Mask of the non-dominated rows of ``F`` (duplicates of a front row are all kept).

    Runs in O(n * front size), so it also serves result tables of many thousand rows.

    Args:
        F: shape ``(n, m)``, minimised.

    Returns:
        bool array of shape ``(n,)``.
    """
    F = np.asarray(F, dtype=np.float64)
    n = F.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort(F.T[::-1])  # by first objective, then the next ones
    keep = np.zeros(n, dtype=bool)
    front: list[np.ndarray] = []
    for i in order:
        row = F[i]
        if front:
            P = np.asarray(front)
            dominated = ((row >= P).all(axis=1) & (row > P).any(axis=1)).any()
            if dominated:
                continue
        keep[i] = True
        front.append(row)
    return keep


def hypervolume_2d(F: np.ndarray, ref: np.ndarray | tuple[float, float]) -> float:
    """Hypervolume dominated by the rows of ``F`` (2 objectives, minimised) up to ``ref``.

    Rows that do not strictly dominate ``ref`` contribute nothing.

    Args:
        F: shape ``(n, 2)``.
        ref: the reference (nadir) point, shape ``(2,)``.

    Returns:
        The area.

    Example:
        >>> hypervolume_2d(np.array([[1.0, 3.0], [2.0, 1.0]]), (4.0, 4.0))
        7.0
    """
    F = np.asarray(F, dtype=np.float64).reshape(-1, 2)
    r = np.asarray(ref, dtype=np.float64)
    F = F[(r > F).all(axis=1)]
    if F.size == 0:
        return 0.0
    F = F[np.lexsort((F[:, 1], F[:, 0]))]
    area, best_y = 0.0, r[1]
    for x, y in F:
        if y < best_y:
            area += (r[0] - x) * (best_y - y)
            best_y = y
    return float(area)
