"""The supernet protocol for transformer spaces, whose subnets are not a sequence of blocks.

:class:`~nasforge.supernet.base.Supernet` plans a vision subnet from ``space.blocks(arch)``;
a language model's forward (token embedding, positions, a decoder with a KV cache, an encoder
whose last layers feed each decoder layer) does not fit that plan, so the transformer supernets
replace the plan and keep the rest of the protocol: ``space``, ``num_classes`` (the vocabulary,
so checkpoints and the trainer read it as for vision), :meth:`set_active`, ``active_arch``,
``enable_slice_grads`` / ``disable_slice_grads`` (every elastic leaf is a
:class:`~nasforge.supernet.ops.SlicedOp`) and ``config``. A concrete supernet implements
``_activate(arch)`` (set the leaves' active widths), ``export(arch)`` (the twin's tensors as
views, keyed by the twin's ``state_dict`` names) and ``build_twin(arch)`` (a randomly initialised
static twin); :meth:`TransformerSupernet.extract` copies the views into the twin once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.supernet.base import NoActiveSubnetError
from nasforge.supernet.base import Supernet
from nasforge.supernet.base import SupernetSpec

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["TransformerSupernet"]

Tensors = dict[str, torch.Tensor]


class TransformerSupernet(Supernet):
    """Base of the language supernets (see the module docstring).

    Args:
        space: the search space.
        num_classes: the (target) vocabulary size.
        arch_type: the space's Arch class (an arch of another type is refused).
    """

    def __init__(self, space: SearchSpace, num_classes: int, arch_type: type) -> None:
        # Supernet.__init__ builds a block plan this family does not use; its state is set here
        nn.Module.__init__(self)
        if num_classes < 2:
            raise ValueError(f"`vocab_size >= 2` must hold, but got {num_classes}")
        self.space = space
        self.num_classes = num_classes
        self.spec = SupernetSpec(description=f"{space.name} transformer supernet")
        self._arch_type = arch_type
        self._arch: Arch | None = None
        self._active: list[int] = []
        self._index: dict[tuple[str, int], int] = {}
        self.slice_grads = None

    @property
    def vocab_size(self) -> int:
        """The (target) vocabulary size: ``num_classes``."""
        return self.num_classes

    def check(self, arch: Arch) -> None:
        """Raise unless ``arch`` is a valid architecture of this supernet's space.

        Raises:
            IncompatibleComponentsError: ``arch`` belongs to another space.
            InvalidArchitectureError: ``arch`` is outside the space.
        """
        if not isinstance(arch, self._arch_type) or getattr(arch, "space", self.space.name) != (
                self.space.name):
            raise IncompatibleComponentsError(
                f"architecture of space {getattr(arch, 'space', type(arch).__name__)!r} given "
                f"to a supernet of space {self.space.name!r}; use a supernet built for that "
                "space or an architecture of this one"
            )
        self.space.validate(arch)

    def set_active(self, arch: Arch) -> None:
        """Activate the subnet ``arch``.

        Raises:
            IncompatibleComponentsError: ``arch`` belongs to another space.
            InvalidArchitectureError: ``arch`` is outside the space.
        """
        self.check(arch)
        self._activate(arch)
        self._arch = arch

    def _require_active(self) -> Arch:
        if self._arch is None:
            raise NoActiveSubnetError(
                "the supernet has no active subnet; call set_active(arch) before running it"
            )
        return self._arch

    def _activate(self, arch: Arch) -> None:
        raise NotImplementedError

    def export(self, arch: Arch) -> Tensors:
        """Views of the supernet's tensors for ``arch``, keyed by the twin's names."""
        raise NotImplementedError

    def build_twin(self, arch: Arch) -> nn.Module:
        """A randomly initialised static twin of ``arch``."""
        raise NotImplementedError

    def extract(self, arch: Arch) -> nn.Module:
        """The static twin of ``arch`` with this supernet's weights, copied once.

        The twin is on the supernet's device and dtype and in its train/eval mode; the
        supernet's active subnet is unchanged.

        Raises:
            IncompatibleComponentsError: ``arch`` belongs to another space.
            InvalidArchitectureError: ``arch`` is outside the space.
        """
        self.check(arch)
        twin = self.build_twin(arch)
        with torch.no_grad():
            state = {k: v.detach().clone(memory_format=torch.contiguous_format)
                     for k, v in self.export(arch).items()}
        missing = set(twin.state_dict()) ^ set(state)
        if missing:  # pragma: no cover - a programming error, caught by the contract suite
            raise RuntimeError(f"twin/supernet tensor names differ: {sorted(missing)}")
        twin.load_state_dict(state, strict=True, assign=True)
        ref = next(self.parameters())
        return twin.to(device=ref.device, dtype=ref.dtype).train(self.training)
