"""The sampler registry: ``@register_sampler("name")`` and :func:`create_sampler`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.registry import Registry

if TYPE_CHECKING:
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.supernet.training.samplers.base import BaseSampler

__all__ = ["SAMPLERS", "create_sampler", "register_sampler"]

#: name -> sampler class (constructed as ``cls(space, rng, **options)``).
SAMPLERS: Registry[type[BaseSampler]] = Registry("sampler")


def register_sampler(name: str) -> Callable[[type[BaseSampler]], type[BaseSampler]]:
    """Class decorator registering a :class:`BaseSampler` subclass as ``name``."""

    def deco(cls: type[BaseSampler]) -> type[BaseSampler]:
        cls.name = name
        SAMPLERS.add(name, cls)
        return cls

    return deco


def create_sampler(name: str, space: SearchSpace, rng: np.random.Generator,
                   **options: Any) -> BaseSampler:
    """Build the sampler registered as ``name``.

    Args:
        name: registered sampler name (``uniform``, ``sandwich``, ``complexity_aware``,
            ``performance_aware``).
        space: the search space.
        rng: the sampler's only source of randomness.
        **options: constructor options of that sampler.

    Raises:
        UnknownNameError: no such sampler.
    """
    return SAMPLERS.get(name)(space, rng, **options)
