"""Trainable parameters in millions, from the space's blocks.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201")
    >>> params = ParamsObjective(space)
    >>> small, large = params.evaluate_many([space.min_arch(), space.max_arch()])
    >>> bool(0 < small < large), params.direction
    (True, 'minimize')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.search_spaces.block import block_params
from nasforge.strategies.objectives._memo import ArchMemo
from nasforge.strategies.objectives._segment_costs import SegmentCosts
from nasforge.strategies.objectives._segment_costs import indexed_rows
from nasforge.strategies.objectives.base import Objective

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["ParamsObjective"]


class ParamsObjective(Objective):
    """Trainable parameters in millions, from the space's blocks: per-block costs summed over
    the index matrix on a space with segment codes (:class:`~._segment_costs.SegmentCosts`,
    exactly equal), else memoised per architecture.

    Args:
        space: the search space.
        lower: lower bound in M.
        upper: upper bound in M.
        name: column name.
    """

    def __init__(self, space: SearchSpace, *, lower: float | None = None,
                 upper: float | None = None, name: str = "params_m") -> None:
        super().__init__(name, "minimize", lower=lower, upper=upper, cheap=True)
        self.space = space
        self._memo: ArchMemo[Arch] = ArchMemo()
        self._costs = SegmentCosts(space, block_params)

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        rows = indexed_rows(self._costs, archs)
        got = None if rows is None else self._costs.sums(rows)
        if got is not None:
            return np.asarray(got / 1e6, dtype=np.float64)
        params = self.space.params
        return self._memo.lookup(archs, lambda todo: [params(archs[i]) / 1e6 for i in todo])

    def evaluate_indices(self, space: ChoiceSpace, matrix: np.ndarray) -> np.ndarray | None:
        """Per-block costs summed over ``matrix`` (None: the space has no segment codes)."""
        got = self._costs.sums(matrix) if space is self.space else None
        return None if got is None else np.asarray(got / 1e6, dtype=np.float64)

    def provenance(self) -> dict[str, Any]:
        return {"kind": "params", "space": self.space.name, "unit": "M"}
