"""Result tables name the input resolution of every candidate where the space has one."""

from __future__ import annotations

import pytest

from nasforge.search_spaces import get_space
from nasforge.strategies import STRATEGIES
from nasforge.strategies import FlopsObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import run_search


@pytest.mark.parametrize(("space_name", "has_resolution"),
                         [("elasticvit", True), ("ofa_mbv3", True), ("nasbench201", False)])
def test_candidates_and_pareto_carry_resolution(space_name: str, has_resolution: bool) -> None:
    space = get_space(space_name)
    objectives = SearchObjectives([FlopsObjective(space)])
    strategy = STRATEGIES.create("random", space=space, objectives=objectives, seed=0)
    result = run_search(strategy, budget=8)
    frame = result.candidates
    assert ("resolution" in frame.columns) is has_resolution
    if has_resolution:
        assert list(frame["resolution"]) == [result.archs[i].resolution for i in frame["index"]]
        lo, hi = space.min_arch().resolution, space.max_arch().resolution
        assert all(lo <= r <= hi for r in frame["resolution"])
        assert "resolution" in result.pareto_frame.columns
