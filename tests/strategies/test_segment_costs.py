"""FLOPs and params on index matrices (issue 25): per-block costs summed over a whole
generation's index matrix, exactly equal to the per-architecture path on every registered
space that offers segment codes; the others return None and keep the per-architecture path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nasforge.search_spaces import SPACES
from nasforge.search_spaces import ChoiceSpace
from nasforge.search_spaces import get_space
from nasforge.strategies import FlopsObjective
from nasforge.strategies import ParamsObjective
from nasforge.strategies import SearchObjectives

#: the spaces with a segment_codes hook (the others fall back to the per-arch path)
INDEXED = {"ofa_mbv3", "ofa_mbv3_w12"}


@pytest.mark.parametrize("name", SPACES.list())
def test_flops_and_params_on_indices_equal_the_per_arch_path(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(0)
    archs = [space.min_arch(), space.max_arch(), *(space.sample(rng) for _ in range(200))]
    for obj, fn in ((FlopsObjective(space), space.flops),
                    (FlopsObjective(space, reference=True), space.flops_reference),
                    (ParamsObjective(space), space.params)):
        want = np.asarray([fn(a) / 1e6 for a in archs])
        assert np.array_equal(obj.evaluate_many(archs), want), name
        if not isinstance(space, ChoiceSpace):
            continue
        got = obj.evaluate_indices(space, space.to_indices(archs))
        if name in INDEXED:
            assert got is not None and np.array_equal(got, want), name
        else:
            assert got is None, name  # not separable by a hook: the per-arch path serves it


def test_search_objectives_build_no_arch_for_indexed_cheap_rows() -> None:
    """With latency-free cheap objectives on ofa_mbv3, the cheap values of index rows come
    from the matrix: the per-arch memo stays empty."""
    space = get_space("ofa_mbv3_w12")
    objs = SearchObjectives([FlopsObjective(space, upper=400.0), ParamsObjective(space)])
    rows = space.sample_indices(np.random.default_rng(1), 64)
    vals = objs.evaluate_cheap_indices(space, rows)
    archs = space.from_indices(rows)
    assert np.array_equal(vals, np.stack([[space.flops(a) / 1e6, space.params(a) / 1e6]
                                          for a in archs]))
    assert len(objs._cheap_memo) == 0


def test_flops_and_params_of_one_space_share_its_codes_and_its_built_blocks() -> None:
    """The FLOPs and params of one matrix: the space's codes computed once, and each row
    bringing new codes built and split into blocks once for both (the same sums as each
    alone)."""
    space = get_space("ofa_mbv3_w12")
    assert isinstance(space, ChoiceSpace)
    calls = {"codes": 0, "blocks": 0}
    codes, blocks = space.segment_codes, space.blocks  # type: ignore[attr-defined]

    def counted(name: str, fn: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            calls[name] += 1
            return fn(*args)
        return wrapper

    space.segment_codes = counted("codes", codes)  # type: ignore[attr-defined]
    space.blocks = counted("blocks", blocks)  # type: ignore[method-assign]
    flops, params = FlopsObjective(space), ParamsObjective(space)
    rows = space.sample_indices(np.random.default_rng(2), 40)
    got_f = flops.evaluate_indices(space, rows)
    after_flops = dict(calls)
    got_p = params.evaluate_indices(space, rows)
    assert calls == after_flops and after_flops["codes"] == 1 and after_flops["blocks"] > 0
    archs = space.from_indices(rows)
    assert np.array_equal(got_f, [space.flops(a) / 1e6 for a in archs])
    assert np.array_equal(got_p, [space.params(a) / 1e6 for a in archs])
    other = space.sample_indices(np.random.default_rng(3), 40)  # another matrix: its codes
    params.evaluate_indices(space, other)
    assert calls["codes"] == 2
