"""The sandwich rule: the largest, N random and the smallest subnet every step.

Papers: BigNAS: Scaling Up Neural Architecture Search with Big Single-Stage Models,
https://arxiv.org/abs/2003.11142; AttentiveNAS: Improving Neural Architecture Search via
Attentive Sampling, https://arxiv.org/abs/2011.09011.
"""

from __future__ import annotations

import numpy as np

from nasforge.search_spaces.base import SearchSpace
from nasforge.supernet.training.samplers.base import BaseSampler
from nasforge.supernet.training.samplers.base import SampledArch
from nasforge.supernet.training.samplers.registry import register_sampler

__all__ = ["SandwichSampler"]


@register_sampler("sandwich")
class SandwichSampler(BaseSampler):
    """Max subnet (the in-place distillation teacher), ``num_random`` random ones, min subnet.

    Args:
        space: the search space.
        rng: the source of randomness.
        num_random: random subnets between max and min (AttentiveNAS uses 2).
    """

    def __init__(self, space: SearchSpace, rng: np.random.Generator, num_random: int = 2) -> None:
        super().__init__(space, rng)
        if num_random < 0:
            raise ValueError(f"`num_random >= 0` must hold, but got {num_random=}")
        self.num_random = num_random
        self._max = space.max_arch()
        self._min = space.min_arch()

    def sample(self) -> list[SampledArch]:
        mid = [SampledArch(self.space.sample(self.rng), "random") for _ in range(self.num_random)]
        return [SampledArch(self._max, "max"), *mid, SampledArch(self._min, "min")]
