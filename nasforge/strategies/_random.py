"""Random search: the baseline every other strategy is compared with.

Paper:
    Random Search and Reproducibility for Neural Architecture Search, L. Li and A. Talwalkar,
    https://arxiv.org/abs/1902.07638
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from nasforge.strategies.base import BaseStrategy
from nasforge.strategies.base import register_strategy

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["RandomStrategy"]


@register_strategy("random")
class RandomStrategy(BaseStrategy):
    """Uniform samples of the space; candidates violating a cheap bound are rejected before the
    expensive objectives run.

    Args:
        space: the search space.
        objectives: the objectives.
        seed: RNG seed.
        batch_size: archs proposed per round.
        max_rejections: see :class:`BaseStrategy`.
    """

    def __init__(self, space: SearchSpace, objectives: SearchObjectives, *, seed: int = 0,
                 batch_size: int = 16, max_rejections: int = 10_000) -> None:
        super().__init__(space, objectives, seed=seed, max_rejections=max_rejections)
        self._batch = int(batch_size)

    @property
    def batch_size(self) -> int:
        return self._batch

    def ask(self, n: int) -> list[Arch]:
        return self.feasible_batch(lambda k: [self.space.sample(self.rng) for _ in range(k)], n)

    def _settings(self) -> dict[str, Any]:
        return {"batch_size": self._batch}
