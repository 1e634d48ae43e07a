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

from nasforge.strategies.objectives._memo import ArchMemo
from nasforge.strategies.objectives.base import Objective

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["ParamsObjective"]


class ParamsObjective(Objective):
    """Trainable parameters in millions, from the space's blocks (memoised per architecture).

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

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        params = self.space.params
        return self._memo.lookup(archs, lambda todo: [params(archs[i]) / 1e6 for i in todo])

    def provenance(self) -> dict[str, Any]:
        return {"kind": "params", "space": self.space.name, "unit": "M"}
