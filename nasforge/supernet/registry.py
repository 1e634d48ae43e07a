"""The supernet registry: one :class:`~nasforge.supernet.base.SupernetSpec` per space name.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.supernet import SUPERNETS, build_supernet
    >>> "elasticvit" in SUPERNETS.list()
    True
    >>> build_supernet(get_space("elasticvit"), num_classes=10).config()
    {'space': 'elasticvit', 'num_classes': 10}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge.errors import IncompatibleComponentsError
from nasforge.registry import Registry
from nasforge.supernet.base import Supernet
from nasforge.supernet.base import SupernetSpec

if TYPE_CHECKING:
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["SUPERNETS", "build_supernet", "register_supernet"]

#: space name -> the spec its supernet is built with.
SUPERNETS: Registry[SupernetSpec] = Registry("supernet")


def register_supernet(space_name: str, spec: SupernetSpec) -> None:
    """Register the supernet spec of the space ``space_name``; a duplicate raises."""
    SUPERNETS.add(space_name, spec)


def build_supernet(space: SearchSpace, num_classes: int) -> Supernet:
    """A randomly initialised supernet of ``space`` with a ``num_classes``-way classifier
    (a language space: a ``num_classes``-token vocabulary).

    Raises:
        IncompatibleComponentsError: the space has no supernet (tabular spaces such as
            ``nasbench201``); the message lists the spaces that do.
    """
    if space.name not in SUPERNETS:
        raise IncompatibleComponentsError(
            f"space {space.name!r} has no supernet; spaces with one: "
            f"{', '.join(SUPERNETS.list()) or '(none)'}"
        )
    spec = SUPERNETS.get(space.name)
    if spec.builder is not None:  # a transformer family: num_classes is the vocabulary
        return spec.builder(space, num_classes)
    return Supernet(space, num_classes, spec)
