"""NSGA-II ranking, crowding and selection against hand-computed fronts."""

from __future__ import annotations

import numpy as np

from nasforge.strategies import crowding_distance
from nasforge.strategies import hypervolume_2d
from nasforge.strategies import non_dominated_fronts
from nasforge.strategies import nsga2_select
from nasforge.strategies import pareto_mask


def test_fronts_by_hand() -> None:
    # front 0: (1,5) (2,3) (4,1); front 1: (3,4) (5,2); front 2: (6,6)
    F = np.array([[1, 5], [3, 4], [2, 3], [6, 6], [4, 1], [5, 2]], dtype=float)
    fronts = [f.tolist() for f in non_dominated_fronts(F)]
    assert fronts == [[0, 2, 4], [1, 5], [3]]


def test_duplicates_share_a_front_and_weak_dominance() -> None:
    F = np.array([[1, 1], [1, 1], [1, 2], [2, 1]], dtype=float)
    assert [f.tolist() for f in non_dominated_fronts(F)] == [[0, 1], [2, 3]]
    assert pareto_mask(F).tolist() == [True, True, False, False]


def test_crowding_distance_by_hand() -> None:
    # sorted by f0: 0,1,2,3 ; span f0 = 4, span f1 = 4
    F = np.array([[0, 4], [1, 2], [2, 1], [4, 0]], dtype=float)
    cd = crowding_distance(F)
    assert np.isinf(cd[0]) and np.isinf(cd[3])
    # row 1: f0 (2-0)/4 + f1 (4-1)/4 = 1.25 ; row 2: f0 (4-1)/4 + f1 (2-0)/4 = 1.25
    np.testing.assert_allclose(cd[1:3], [1.25, 1.25])
    F2 = np.array([[0, 4], [1, 3], [3, 1], [4, 0]], dtype=float)
    # row 1: (3-0)/4 + (4-1)/4 = 1.5 ; row 2: (4-1)/4 + (3-0)/4 = 1.5
    np.testing.assert_allclose(crowding_distance(F2)[1:3], [1.5, 1.5])


def test_select_fills_by_rank_then_crowding() -> None:
    F = np.array([[0, 4], [1, 2.9], [2, 2], [4, 0], [3, 3], [5, 5]], dtype=float)
    # front 0 = {0,1,2,3}; crowding: 0,3 inf; 1: (2-0)/4+(4-2)/4=1.0; 2: (4-1)/4+(2.9-0)/4=1.475
    assert nsga2_select(F, 3).tolist() == [0, 3, 2]
    assert nsga2_select(F, 5).tolist() == [0, 3, 2, 1, 4]


def test_select_puts_infeasible_last_by_violation() -> None:
    F = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], dtype=float)
    viol = np.array([0.5, 0.0, 0.1, 0.0])
    assert nsga2_select(F, 4, viol).tolist() == [1, 3, 2, 0]


def test_hypervolume_2d_by_hand() -> None:
    F = np.array([[1, 3], [2, 1], [3, 3.5], [5, 0]], dtype=float)  # (3,3.5) dominated; (5,0) out
    # staircase to ref (4,4): [1,4]x[3,4] = 3 + [2,4]x[1,3] = 4
    assert hypervolume_2d(F, (4, 4)) == 7.0
    assert hypervolume_2d(np.zeros((0, 2)), (1, 1)) == 0.0
