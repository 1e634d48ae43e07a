"""NAS-Bench-201 as a network space (``nasbench201_net``): the cell plus the network it runs in.

Paper:
    NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search,
    https://arxiv.org/abs/2001.00326

The same cells as the tabular ``nasbench201`` space, plus a ``resolution`` field (32 by
default, NB201's CIFAR size), with a PyTorch model: NB201's CIFAR ``TinyNetwork`` (3x3 conv
3->16 + BN stem, three stages of 5 cells at C = 16, 32, 64 with a residual reduction block
between stages, BN + ReLU, global pool, Linear), built by
:func:`nasforge.supernet.static.build_static` (see :mod:`nasforge.supernet.static._nb201`).
FLOPs and parameters come from the same blocks as the tabular space and equal a count over the
built module. Being a network space it has a weight-sharing supernet (``nasbench201_net`` in
:data:`nasforge.supernet.SUPERNETS`) and is what zero-cost proxies score
(:mod:`nasforge.proxies`). The tabular ``nasbench201`` space is unchanged: use it with
``--benchmark``.

Example:
    >>> import torch
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.supernet.static import build_static
    >>> space = get_space("nasbench201_net")
    >>> arch = space.arch_from_str(
    ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    ...     "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    >>> build_static(space, arch).eval()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces._nasbench201 import RESOLUTION
from nasforge.search_spaces._nasbench201 import NB201Space
from nasforge.search_spaces._nasbench201 import _blocks
from nasforge.search_spaces._nasbench201 import _encode
from nasforge.search_spaces._nasbench201_cell import NB201_EDGES
from nasforge.search_spaces._nasbench201_cell import NB201_OPS
from nasforge.search_spaces._nasbench201_cell import NB201Arch
from nasforge.search_spaces._nasbench201_cell import arch_from_nb201_str
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.choice import Choice
from nasforge.search_spaces.registry import register_space

__all__ = ["NB201NetArch", "NB201NetSpace"]

SPACE_NAME = "nasbench201_net"


@dataclass(frozen=True)
class NB201NetArch(NB201Arch):
    """A NAS-Bench-201 cell run in NB201's CIFAR network at ``resolution`` px.

    Attributes:
        edges: the 6 edge ops in the standard order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
        resolution: input side in pixels (NB201 trains at 32).
    """

    resolution: int = RESOLUTION


@register_space(SPACE_NAME)
class NB201NetSpace(NB201Space):
    """NAS-Bench-201 cells as networks (NB201's ``TinyNetwork``, C=16, N=5).

    Args:
        num_classes: classifier width (10: CIFAR-10).
        resolutions: the allowed input sides; multiples of 4 (two stride-2 reductions).

    The encoding is the tabular space's 54 columns plus ``resolution``.
    """

    arch_cls: ClassVar[type[Arch]] = NB201NetArch
    description: ClassVar[str] = ("NAS-Bench-201 cell in NB201's CIFAR network (C=16, N=5; "
                                  "a network space with a supernet)")
    has_model: ClassVar[bool] = True

    def __init__(self, num_classes: int = 10,
                 resolutions: Sequence[int] = (RESOLUTION,)) -> None:
        res = tuple(sorted({int(r) for r in resolutions}))
        if not res or any(r < 4 or r % 4 for r in res):
            raise InvalidInputError(
                f"{SPACE_NAME}: resolutions must be multiples of 4 (two stride-2 reductions), "
                f"got {tuple(resolutions)!r}; e.g. (32,)"
            )
        self.resolutions = res
        super().__init__(num_classes=num_classes)

    def choices(self) -> list[Choice]:
        return [Choice.repeat("edges", NB201_OPS, len(NB201_EDGES)),
                Choice.one("resolution", self.resolutions)]

    def min_arch(self) -> NB201NetArch:
        """All edges ``none`` at the smallest resolution (the fewest FLOPs)."""
        return NB201NetArch(space=self.name, edges=("none",) * len(NB201_EDGES),
                            resolution=self.resolutions[0])

    def max_arch(self) -> NB201NetArch:
        """All edges ``nor_conv_3x3`` at the largest resolution."""
        return NB201NetArch(space=self.name, edges=("nor_conv_3x3",) * len(NB201_EDGES),
                            resolution=self.resolutions[-1])

    def validate(self, arch: Arch) -> None:
        super().validate(arch)
        res = getattr(arch, "resolution", None)
        if res not in self.resolutions:
            raise InvalidArchitectureError(
                f"{self.name}: resolution = {res!r} is not allowed; allowed: "
                f"{{{', '.join(map(str, self.resolutions))}}}"
            )

    def arch_from_str(self, text: str, resolution: int | None = None) -> NB201NetArch:
        """Parse a standard ``arch_str`` into a cell of this space.

        Args:
            text: the NB201 ``arch_str`` (see :func:`arch_from_nb201_str`).
            resolution: the input side; the largest allowed one by default.
        """
        cell = arch_from_nb201_str(text)
        arch = NB201NetArch(space=self.name, edges=cell.edges,
                            resolution=self.resolutions[-1] if resolution is None else resolution)
        self.validate(arch)
        return arch

    def encode(self, arch: Arch) -> np.ndarray:
        """The tabular space's 54 columns, then ``resolution``: (55,)."""
        return np.concatenate([_encode(tuple(arch.edges)),  # type: ignore[attr-defined]
                               [float(arch.resolution)]])  # type: ignore[attr-defined]

    def encoding_names(self) -> list[str]:
        names = super().encoding_names()
        names.remove("resolution")
        return [*names, "resolution"]

    def blocks(self, arch: Arch) -> list[Block]:
        return list(_blocks(tuple(arch.edges), self.num_classes,  # type: ignore[attr-defined]
                            int(arch.resolution)))  # type: ignore[attr-defined]
