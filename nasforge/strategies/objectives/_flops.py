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

from nasforge.strategies.objectives._memo import ArchMemo
from nasforge.strategies.objectives.base import Objective

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["FlopsObjective"]


class FlopsObjective(Objective):
    """MFLOPs (= MACs / 1e6, the field's convention) from the space's analytic count.

    Values are memoised per architecture.

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

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        fn = self.space.flops_reference if self.reference else self.space.flops
        return self._memo.lookup(archs, lambda todo: [fn(archs[i]) / 1e6 for i in todo])

    def provenance(self) -> dict[str, Any]:
        return {"kind": "flops", "space": self.space.name, "rule":
                "flops_reference" if self.reference else "flops", "unit": "MMACs"}
