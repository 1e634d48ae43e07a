"""The weight-sharing supernet: one generic network built from the space's block decomposition.

Paper:
    Once-for-All: Train One Network and Specialize it for Efficient Deployment,
    https://arxiv.org/abs/1908.09791

Three tiers, as in Once-for-All: *ops* (:mod:`nasforge.supernet.ops`) slice one max-size
tensor; *dynamic layers* (:class:`DynamicLayer`) compose ops, hold the active :class:`Block` and
export the views their static twin needs; the *network* (:class:`Supernet`) is the same for every
space. It builds one dynamic layer per block of ``space.blocks(space.max_arch())`` through a
registry of per-kind builders (:func:`register_dynamic_builder`, mirroring
:func:`nasforge.supernet.static.register_block_builder`), keys each layer by
``(stage, index in stage)``, and maps an architecture's blocks onto those layers.

Call protocol:

* ``set_active(arch)`` validates ``arch`` and activates one layer per block; ``forward`` runs
  the active layers in block order.
* ``enable_slice_grads()`` makes the ops keep slice-sized gradients in a
  :class:`~nasforge.supernet.training.sliced_optim.SliceGrads` store for the slice-aware optimizers
  (the trainer does this); by default gradients land in ``param.grad`` as usual.
* ``extract(arch)`` builds the static twin ``build_static(space, arch, num_classes)`` and copies
  each layer's exported slices into it once (under ``no_grad``, cloned). It changes nothing in
  the supernet.
* A space plugs in with a :class:`SupernetSpec` (a table row, not a class) registered in
  :data:`nasforge.supernet.registry.SUPERNETS` and builders for any new block kinds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import torch
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError
from nasforge.errors import NasforgeError
from nasforge.registry import Registry
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.supernet.ops import SlicedOp
from nasforge.supernet.static import build_static
from nasforge.supernet.training.sliced_optim import SliceGrads

if TYPE_CHECKING:
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "DYNAMIC_BUILDERS",
    "DynamicLayer",
    "NoActiveSubnetError",
    "Supernet",
    "SupernetSpec",
    "register_dynamic_builder",
]

Tensors = dict[str, torch.Tensor]


class NoActiveSubnetError(NasforgeError, RuntimeError):
    """The supernet was run before any subnet was activated."""


@dataclass(frozen=True)
class SupernetSpec:
    """What a space's supernet needs beyond its blocks (one registry row per space).

    Attributes:
        attention_kinds: attention kinds a transformer layer must support (the efficient space
            shares q/k/v/dw/proj across kinds; ``window`` adds its own bias table).
        window: the window side the ``window`` kind's bias table is sized for.
        description: one line for listings.
        builder: ``(space, num_classes) -> supernet`` for a family that is not built from
            blocks (the language supernets, :mod:`nasforge.supernet._transformer`); ``None``:
            the generic :class:`Supernet`.
    """

    attention_kinds: tuple[str, ...] = ("softmax",)
    window: int = 7
    description: str = ""
    builder: Callable[[SearchSpace, int], Supernet] | None = None


def _require(ok: bool, layer: DynamicLayer, block: Block, rule: str) -> None:
    if not ok:
        raise InvalidArchitectureError(
            f"block {block.kind} of stage {block.stage} does not fit its supernet layer: {rule}; "
            f"max block {layer.max_block.to_dict()}, given {block.to_dict()}. The supernet is "
            "built from space.max_arch(); rebuild it for this space"
        )


class DynamicLayer(nn.Module):
    """Base of every dynamic layer: a supernet module for one ``(stage, index)`` position.

    Args:
        max_block: the position's block in the space's largest architecture.
        spec: the space's :class:`SupernetSpec`.

    Subclasses implement ``forward`` (reading ``self.active``), :meth:`export`, and may extend
    :meth:`check` with rules beyond the generic ones.
    """

    #: Numeric block fields that must not exceed the max block's.
    BOUNDED: tuple[str, ...] = ("cin", "cout", "mid", "kernel", "se_mid", "heads", "out_dim")
    #: Block fields that must equal the max block's.
    FIXED: tuple[str, ...] = ("kind", "stride", "act", "shortcut", "head_dim", "classes")

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__()
        self.max_block = max_block
        self.spec = spec
        self.active: Block | None = None

    def check(self, block: Block) -> None:
        """Raise :class:`InvalidArchitectureError` when ``block`` does not fit this layer."""
        for f in self.BOUNDED:
            _require(getattr(block, f) <= getattr(self.max_block, f), self, block,
                     f"{f} = {getattr(block, f)} exceeds {getattr(self.max_block, f)}")
        for f in self.FIXED:
            _require(getattr(block, f) == getattr(self.max_block, f), self, block,
                     f"{f} = {getattr(block, f)!r} must be {getattr(self.max_block, f)!r}")
        _require((block.expand > 1) == (self.max_block.expand > 1), self, block,
                 "an expansion conv must exist in both or neither")
        _require((block.se_mid > 0) == (self.max_block.se_mid > 0), self, block,
                 "squeeze-excite must exist in both or neither")

    def set_active(self, block: Block) -> None:
        """Activate ``block`` (already checked by the supernet)."""
        self.active = block

    def export(self, block: Block) -> Tensors:
        """Views of this layer's tensors for ``block``, keyed by the static twin's names."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"max={self.max_block.kind}@{self.max_block.stage}"


DynamicBuilder = Callable[[Block, SupernetSpec], DynamicLayer]

#: block kind -> builder of its dynamic layer from the max block.
DYNAMIC_BUILDERS: Registry[DynamicBuilder] = Registry("dynamic layer builder")


def register_dynamic_builder(*kinds: str) -> Callable[[DynamicBuilder], DynamicBuilder]:
    """Decorator: register the dynamic-layer builder of one or more block kinds."""

    def deco(fn: DynamicBuilder) -> DynamicBuilder:
        for kind in kinds:
            DYNAMIC_BUILDERS.add(kind, fn)
        return fn

    return deco


def _keyed(blocks: list[Block]) -> Iterator[tuple[tuple[str, int], Block]]:
    seen: dict[str, int] = {}
    for b in blocks:
        i = seen.get(b.stage, 0)
        seen[b.stage] = i + 1
        yield (b.stage, i), b


class Supernet(nn.Module):
    """A weight-sharing supernet over ``space`` (see the module docstring for the protocol).

    Args:
        space: the search space (must have a model).
        num_classes: classifier width.
        spec: the space's :class:`SupernetSpec`.

    Example:
        >>> import torch
        >>> from nasforge.search_spaces import get_space
        >>> from nasforge.supernet import build_supernet
        >>> space = get_space("elasticvit")
        >>> net = build_supernet(space, num_classes=10).eval()
        >>> net.set_active(space.min_arch())
        >>> net(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """

    def __init__(self, space: SearchSpace, num_classes: int, spec: SupernetSpec) -> None:
        super().__init__()
        if not space.has_model:
            raise IncompatibleComponentsError(
                f"space {space.name!r} is tabular and has no model, so it has no supernet; "
                "use --benchmark with it"
            )
        if num_classes < 1:
            raise ValueError(f"`num_classes >= 1` must hold, but got {num_classes=}")
        self.space = space
        self.num_classes = num_classes
        self.spec = spec
        layers: list[DynamicLayer] = []
        self._index: dict[tuple[str, int], int] = {}
        for key, block in _keyed(self._blocks(space.max_arch())):
            self._index[key] = len(layers)
            layers.append(DYNAMIC_BUILDERS.get(block.kind)(block, spec))
        self.layers = nn.ModuleList(layers)
        self._arch: Arch | None = None
        self._active: list[int] = []
        self.slice_grads: SliceGrads | None = None

    # ---- architecture -> layers ------------------------------------------------------------
    def _blocks(self, arch: Arch) -> list[Block]:
        blocks = self.space.blocks(arch)
        return [dataclasses.replace(b, classes=self.num_classes) if b.classes else b
                for b in blocks]

    def _plan(self, arch: Arch) -> list[tuple[int, Block]]:
        if not isinstance(arch, Arch) or arch.space != self.space.name:
            raise IncompatibleComponentsError(
                f"architecture of space {getattr(arch, 'space', type(arch).__name__)!r} given "
                f"to a supernet of space {self.space.name!r}; use a supernet built for that "
                "space or an architecture of this one"
            )
        self.space.validate(arch)
        plan: list[tuple[int, Block]] = []
        for key, block in _keyed(self._blocks(arch)):
            i = self._index.get(key)
            if i is None:
                raise InvalidArchitectureError(
                    f"block {block.kind} #{key[1]} of stage {key[0]} has no supernet layer; the "
                    f"supernet of {self.space.name!r} was built from its max_arch()"
                )
            layer: DynamicLayer = self.layers[i]  # type: ignore[assignment]
            layer.check(block)
            plan.append((i, block))
        return plan

    def set_active(self, arch: Arch) -> None:
        """Activate the subnet ``arch`` (layers beyond its depth are skipped).

        Raises:
            IncompatibleComponentsError: ``arch`` belongs to another space.
            InvalidArchitectureError: ``arch`` is outside the space.
        """
        plan = self._plan(arch)
        for i, block in plan:
            self.layers[i].set_active(block)  # type: ignore[operator]
        self._active = [i for i, _ in plan]
        self._arch = arch

    def enable_slice_grads(self, store: SliceGrads | None = None) -> SliceGrads:
        """Keep the dynamic ops' gradients slice-sized, in ``store`` (a new one by default).

        Only the slice-aware optimizers of :mod:`nasforge.supernet.training.sliced_optim` read the
        store: a stock optimizer would see no gradient for the sliced parameters (call
        :meth:`disable_slice_grads` before using one).

        Returns:
            The store.
        """
        store = store if store is not None else SliceGrads()
        self._set_store(store)
        return store

    def disable_slice_grads(self) -> None:
        """Back to ordinary max-size ``param.grad`` gradients."""
        self._set_store(None)

    def _set_store(self, store: SliceGrads | None) -> None:
        for module in self.modules():
            if isinstance(module, SlicedOp):
                module.slice_grads = store
        self.slice_grads = store

    def active_arch(self) -> Arch | None:
        """The architecture last given to :meth:`set_active`, or ``None``."""
        return self._arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the active subnet.

        Args:
            x: (B, 3, H, W) images (any size the stages can reduce; e.g. a 32 px proxy).

        Returns:
            (B, num_classes) logits.

        Raises:
            NoActiveSubnetError: no subnet was activated.
        """
        if self._arch is None:
            raise NoActiveSubnetError(
                "the supernet has no active subnet; call set_active(arch) before running it"
            )
        for i in self._active:
            x = self.layers[i](x)
        return x

    def extract(self, arch: Arch) -> nn.Module:
        """The static twin of ``arch`` with this supernet's weights and BN statistics.

        Builds ``build_static(space, arch, num_classes)`` and copies each layer's slices into it
        once under ``torch.no_grad()`` (cloned, so the twin shares no storage). The twin is on
        the supernet's device and dtype and in its train/eval mode; the supernet's active
        subnet is unchanged.

        Raises:
            IncompatibleComponentsError: ``arch`` belongs to another space.
            InvalidArchitectureError: ``arch`` is outside the space.
        """
        plan = self._plan(arch)
        model = build_static(self.space, arch, num_classes=self.num_classes)
        static_layers: nn.ModuleList = model.layers
        ref = next(self.parameters())
        with torch.no_grad():
            for module, (i, block) in zip(static_layers, plan, strict=True):
                layer: DynamicLayer = self.layers[i]  # type: ignore[assignment]
                state = {k: v.detach().clone(memory_format=torch.contiguous_format)
                         for k, v in layer.export(block).items()}
                # assign: the clones become the twin's tensors (one copy, not clone + copy_)
                module.load_state_dict(state, strict=True, assign=True)
        return model.to(device=ref.device, dtype=ref.dtype).train(self.training)

    def config(self) -> dict[str, Any]:
        """``{"space": name, "num_classes": n}``: what a checkpoint needs to rebuild this."""
        return {"space": self.space.name, "num_classes": self.num_classes}

    def extra_repr(self) -> str:
        active = self._arch.arch_id if self._arch is not None else None
        return f"space={self.space.name!r}, num_classes={self.num_classes}, active={active}"
