"""One fixed subnet: what fine-tuning a found architecture trains (``nas finetune``).

Paper: Once-for-All (https://arxiv.org/abs/1908.09791), whose released subnets are the
inherited weights fine-tuned alone (``..._finetune-25`` / ``-75``). Every step trains the same
subnet; with an external teacher (the supernet's largest subnet) it distils from it, else it
learns from the labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nasforge.search_spaces.base import SearchSpace
from nasforge.supernet.training.samplers.base import BaseSampler
from nasforge.supernet.training.samplers.base import SampledArch
from nasforge.supernet.training.samplers.registry import register_sampler

__all__ = ["SubnetSampler"]


@register_sampler("subnet")
class SubnetSampler(BaseSampler):
    """The same subnet every step (role ``"subnet"``).

    Args:
        space: the search space.
        rng: unused (kept for the sampler contract).
        arch: the subnet, as its plain dict (the recipe's ``sampler_options.arch``);
            validated by the space.

    Raises:
        InvalidArchitectureError: ``arch`` is outside the space.
    """

    def __init__(self, space: SearchSpace, rng: np.random.Generator,
                 arch: Mapping[str, Any] | None = None) -> None:
        super().__init__(space, rng)
        if arch is None:
            raise ValueError("the subnet sampler needs `arch` (the subnet to train, as a dict)")
        self.arch = space.arch_from_dict(dict(arch))

    def sample(self) -> list[SampledArch]:
        return [SampledArch(self.arch, "subnet")]

    def _extra_state(self) -> dict[str, Any]:
        return {"arch": self.arch.to_dict()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if self.space.arch_from_dict(state["arch"]) != self.arch:
            raise ValueError(f"the checkpoint fine-tunes subnet {state['arch']}, not "
                             f"{self.arch.arch_id}")
