"""A sampler that trains only the smallest subnet: the cheapest real supernet step, for tests
that need many steps (precision). Imports nothing beyond torch, numpy and nasforge's supernet
(the GPU test machine lacks optuna, xgboost, ray)."""

from __future__ import annotations

from nasforge.supernet.training.samplers.base import BaseSampler
from nasforge.supernet.training.samplers.base import SampledArch


class MinOnly(BaseSampler):
    """Every step: the space's min arch."""

    name = "min_only"

    def sample(self) -> list[SampledArch]:
        return [SampledArch(self.space.min_arch(), "min", None)]
