"""The search-space contract: :class:`SearchSpace`.

Call protocol (every space):

* ``sample(rng)``, ``mutate(arch, rng, prob)``, ``crossover(a, b, rng)`` return *valid*
  architectures; randomness always comes from the ``numpy.random.Generator`` passed in.
* ``validate(arch)`` raises :class:`~nasforge.errors.InvalidArchitectureError` naming the field,
  the value and the allowed set; ``arch_from_dict`` validates what it loads.
* ``blocks(arch)`` decomposes an architecture into :class:`~nasforge.search_spaces.block.Block` s;
  ``flops``, ``flops_reference`` and ``params`` are computed from blocks alone.
* ``encode(arch)`` is a fixed-length float vector for predictors; ``encoding_names()`` names
  its columns.

Spaces made of discrete choices
(:class:`~nasforge.search_spaces.choice_space.ChoiceSpace`) are also an index codec
(:mod:`nasforge.search_spaces.codec`), the view every strategy searches. The static PyTorch
model of an architecture is built on the supernet side,
``nasforge.supernet.static.build_static(space, arch)``: this package loads no torch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any
from typing import ClassVar

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import total_flops
from nasforge.search_spaces.block import total_flops_reference
from nasforge.search_spaces.block import total_params

__all__ = ["SearchSpace"]


class SearchSpace(abc.ABC):
    """Base class of every search space (see the module docstring for the call protocol)."""

    #: Registered name, set by :func:`~nasforge.search_spaces.registry.register_space`.
    name: str = ""
    #: The architecture dataclass of this space.
    arch_cls: ClassVar[type[Arch]] = Arch
    #: Short description for ``nas spaces``.
    description: ClassVar[str] = ""
    #: Whether the space has a static PyTorch model (vision spaces; built by
    #: ``nasforge.supernet.static.build_static``) or is tabular only.
    has_model: ClassVar[bool] = True
    #: What the model reads: ``"image"`` (vision spaces, (B, 3, R, R) input) or ``"text"``
    #: (token ids: ``hat_*``, ``elastic_lm``).
    modality: ClassVar[str] = "image"

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """A random valid architecture."""

    @abc.abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float = 0.1) -> Arch:
        """Resample each choice of ``arch`` with probability ``prob``; the result is valid."""

    @abc.abstractmethod
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Take each choice from ``a`` or ``b`` at random; the result is valid."""

    @abc.abstractmethod
    def min_arch(self) -> Arch:
        """The smallest architecture (every choice at its minimum)."""

    @abc.abstractmethod
    def max_arch(self) -> Arch:
        """The largest architecture."""

    @abc.abstractmethod
    def validate(self, arch: Arch) -> None:
        """Raise :class:`InvalidArchitectureError` when ``arch`` is not in this space."""

    @abc.abstractmethod
    def encode(self, arch: Arch) -> np.ndarray:
        """A fixed-length float64 feature vector of ``arch``."""

    @abc.abstractmethod
    def encoding_names(self) -> list[str]:
        """Column names of :meth:`encode`."""

    @abc.abstractmethod
    def blocks(self, arch: Arch) -> list[Block]:
        """The block decomposition of ``arch``."""

    @abc.abstractmethod
    def arch_from_dict(self, data: dict[str, Any]) -> Arch:
        """Build and validate an architecture from its plain-dict form."""

    @abc.abstractmethod
    def num_choices(self) -> int:
        """Number of independent decisions an architecture makes."""

    @abc.abstractmethod
    def size(self) -> int:
        """Exact number of distinct architectures in the space."""

    # ---- derived, shared by all spaces ---------------------------------------------------
    def flops(self, arch: Arch) -> int:
        """MACs the built model executes (see :mod:`nasforge.search_spaces.block`)."""
        return total_flops(self.blocks(arch))

    def flops_reference(self, arch: Arch) -> int:
        """MACs by the space's published counting rule (equal to :meth:`flops` where none)."""
        return total_flops_reference(self.blocks(arch))

    def params(self, arch: Arch) -> int:
        """Trainable parameters of the built model."""
        return total_params(self.blocks(arch))

    def encode_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Stack :meth:`encode` of each arch: shape (len(archs), len(encoding_names()))."""
        if not archs:
            return np.zeros((0, len(self.encoding_names())))
        return np.stack([self.encode(a) for a in archs])

    def check_arch_type(self, arch: Arch) -> None:
        """Raise when ``arch`` belongs to another space."""
        if not isinstance(arch, self.arch_cls) or arch.space != self.name:
            raise InvalidArchitectureError(
                f"architecture of space {getattr(arch, 'space', type(arch).__name__)!r} given to "
                f"space {self.name!r}; load it with the space it was made for"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
