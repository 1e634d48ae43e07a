"""MFLOPs from the space's analytic count (one multiply-accumulate = one FLOP).

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201")
    >>> flops = FlopsObjective(space, upper=100.0)
    >>> values = flops.evaluate_many([space.min_arch(), space.max_arch()])
    >>> bool(values[0] < values[1]), flops.bound.satisfied(values).tolist()
    (True, [True, False])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.search_spaces.block import block_flops
from nasforge.search_spaces.block import block_flops_reference
from nasforge.strategies.objectives._memo import ArchMemo
from nasforge.strategies.objectives._segment_costs import SegmentCosts
from nasforge.strategies.objectives._segment_costs import indexed_rows
from nasforge.strategies.objectives.base import Objective

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["FlopsObjective"]


class FlopsObjective(Objective):
    """MFLOPs (= MACs / 1e6, the field's convention) from the space's analytic count.

    On a space with segment codes (``ofa_mbv3*``) the values come from per-block costs summed
    over the index matrix (:class:`~._segment_costs.SegmentCosts`, exactly equal); elsewhere
    they are memoised per architecture.

    Args:
        space: the search space.
        lower: lower bound in MFLOPs.
        upper: upper bound in MFLOPs.
        reference: use ``space.flops_reference`` (the paper's counting rule) instead of
            ``space.flops`` (what the built module executes).
        name: column name.
    """

    def __init__(self, space: SearchSpace, *, lower: float | None = None,
                 upper: float | None = None, reference: bool = False,
                 name: str = "flops_m") -> None:
        super().__init__(name, "minimize", lower=lower, upper=upper, cheap=True)
        self.space = space
        self.reference = reference
        self._memo: ArchMemo[Arch] = ArchMemo()
        self._costs = SegmentCosts(space, block_flops_reference if reference else block_flops)

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        rows = indexed_rows(self._costs, archs)
        got = None if rows is None else self._costs.sums(rows)
        if got is not None:
            return np.asarray(got / 1e6, dtype=np.float64)
        fn = self.space.flops_reference if self.reference else self.space.flops
        return self._memo.lookup(archs, lambda todo: [fn(archs[i]) / 1e6 for i in todo])

    def evaluate_indices(self, space: ChoiceSpace, matrix: np.ndarray) -> np.ndarray | None:
        """Per-block costs summed over ``matrix`` (None: the space has no segment codes)."""
        got = self._costs.sums(matrix) if space is self.space else None
        return None if got is None else np.asarray(got / 1e6, dtype=np.float64)

    def provenance(self) -> dict[str, Any]:
        return {"kind": "flops", "space": self.space.name, "rule":
                "flops_reference" if self.reference else "flops", "unit": "MMACs"}
