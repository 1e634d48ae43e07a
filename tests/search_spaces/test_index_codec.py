"""The ChoiceSpace index codec's table access used by the strategies: option values per column,
rows from values, the cross-field-rule mask, and exhaustive enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces import get_space
from nasforge.search_spaces.choice_space import ChoiceSpace


def _space(name: str) -> ChoiceSpace:
    space = get_space(name)
    assert isinstance(space, ChoiceSpace)
    return space


@pytest.mark.parametrize("name", ["elasticvit", "ofa_mbv3", "nasbench201"])
def test_values_to_indices_inverts_index_options(name: str) -> None:
    space = _space(name)
    rows = space.sample_indices(np.random.default_rng(0), 12)
    opts = space.index_options()
    assert [len(o) for o in opts] == space.index_sizes().tolist()
    values = [[opts[j][i] for j, i in enumerate(row)] for row in rows.tolist()]
    np.testing.assert_array_equal(space.values_to_indices(values), rows)


def test_values_to_indices_names_the_bad_column() -> None:
    space = _space("nasbench201")
    with pytest.raises(InvalidArchitectureError, match=r"edges\[2\] = 'conv_9x9'.*allowed"):
        space.values_to_indices([["none", "none", "conv_9x9", "none", "none", "none"]])
    with pytest.raises(InvalidArchitectureError, match="one value per choice"):
        space.values_to_indices([["none"]])


def test_valid_rows_matches_validate() -> None:
    space = _space("elasticvit")
    rng = np.random.default_rng(1)
    raw = (rng.random((200, space.num_choices())) * space.index_sizes()).astype(np.int64)
    ok = space.valid_rows(raw)
    assert 0 < ok.sum() < len(raw)  # unrepaired draws break the width rule now and then
    for row, good in zip(raw, ok.tolist(), strict=True):
        arch = space.from_indices(row[None], check=False)[0]
        if good:
            space.validate(arch)
        else:
            with pytest.raises(InvalidArchitectureError):
                space.validate(arch)
    assert space.valid_rows(space.repair_indices(raw, rng)).all()


def test_enumerate_indices_is_the_product_of_the_choices() -> None:
    space = _space("nasbench201")
    rows = space.enumerate_indices(space.size())
    assert rows is not None and rows.shape == (space.size(), space.num_choices())
    expected = list(itertools.product(*(range(k) for k in space.index_sizes().tolist())))
    assert rows.tolist() == [list(r) for r in expected]
    assert space.enumerate_indices(space.size() - 1) is None
    assert _space("elasticvit").enumerate_indices(10**6) is None
