"""Sampling rules of supernet training, selected by name through :data:`SAMPLERS`.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.supernet.training.samplers import create_sampler
    >>> s = create_sampler("sandwich", get_space("elasticvit"), np.random.default_rng(0))
    >>> [item.role for item in s.sample()]
    ['max', 'random', 'random', 'min']
"""

from __future__ import annotations

from nasforge.supernet.training.samplers import _complexity  # noqa: F401  (registers)
from nasforge.supernet.training.samplers import _performance  # noqa: F401  (registers)
from nasforge.supernet.training.samplers import _sandwich  # noqa: F401  (registers)
from nasforge.supernet.training.samplers import _subnet  # noqa: F401  (registers)
from nasforge.supernet.training.samplers import _uniform  # noqa: F401  (registers)
from nasforge.supernet.training.samplers._complexity import ComplexityAwareSampler
from nasforge.supernet.training.samplers._complexity import build_level_pools
from nasforge.supernet.training.samplers._complexity import default_levels
from nasforge.supernet.training.samplers._performance import PerformanceAwareSampler
from nasforge.supernet.training.samplers._performance import width_depth_preference
from nasforge.supernet.training.samplers._sandwich import SandwichSampler
from nasforge.supernet.training.samplers._subnet import SubnetSampler
from nasforge.supernet.training.samplers._uniform import UniformSampler
from nasforge.supernet.training.samplers.base import BaseSampler
from nasforge.supernet.training.samplers.base import SampledArch
from nasforge.supernet.training.samplers.registry import SAMPLERS
from nasforge.supernet.training.samplers.registry import create_sampler
from nasforge.supernet.training.samplers.registry import register_sampler

__all__ = [
    "SAMPLERS",
    "BaseSampler",
    "ComplexityAwareSampler",
    "PerformanceAwareSampler",
    "SampledArch",
    "SandwichSampler",
    "SubnetSampler",
    "UniformSampler",
    "build_level_pools",
    "create_sampler",
    "default_levels",
    "register_sampler",
    "width_depth_preference",
]
