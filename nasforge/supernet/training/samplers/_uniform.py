"""Uniform single-path sampling.

Paper: Single Path One-Shot Neural Architecture Search with Uniform Sampling,
https://arxiv.org/abs/1904.00420 (SPOS). One subnet per step, drawn uniformly from the space.
"""

from __future__ import annotations

import numpy as np

from nasforge.search_spaces.base import SearchSpace
from nasforge.supernet.training.samplers.base import BaseSampler
from nasforge.supernet.training.samplers.base import SampledArch
from nasforge.supernet.training.samplers.registry import register_sampler

__all__ = ["UniformSampler"]


@register_sampler("uniform")
class UniformSampler(BaseSampler):
    """``num_subnets`` uniformly random subnets per step (SPOS uses one).

    Args:
        space: the search space.
        rng: the source of randomness.
        num_subnets: subnets per step.
    """

    def __init__(self, space: SearchSpace, rng: np.random.Generator, num_subnets: int = 1) -> None:
        super().__init__(space, rng)
        if num_subnets < 1:
            raise ValueError(f"`num_subnets >= 1` must hold, but got {num_subnets=}")
        self.num_subnets = num_subnets

    def sample(self) -> list[SampledArch]:
        return [SampledArch(self.space.sample(self.rng), "random") for _ in range(self.num_subnets)]
