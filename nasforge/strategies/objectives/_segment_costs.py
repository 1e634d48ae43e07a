"""A block cost (FLOPs, params) summed over a whole index matrix, with no architecture per row.

A space whose blocks each depend on a few choices offers
:meth:`~nasforge.search_spaces.codec.IndexCodec.segment_codes`: one integer code per block
position of each index row (``-1`` where there is no block), equal codes meaning equal blocks.
:class:`SegmentCosts` keeps one integer cost per code, computed the first time a row brings
it (that row's architecture is built once and its blocks costed), and sums the codes' costs
per row in numpy. The per-architecture path sums the same integers (``sum`` of
:func:`~nasforge.search_spaces.block.block_flops` over ``space.blocks(arch)``), so the two are
exactly equal. A space without the hook (every registered space but ``ofa_mbv3*``, whose
block inputs depend on earlier choices in ways no hook describes yet) gets None and the
callers fall back to the per-architecture path.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import block_flops, get_space
    >>> space = get_space("ofa_mbv3_w12")
    >>> costs = SegmentCosts(space, block_flops)
    >>> archs = [space.min_arch(), space.max_arch()]
    >>> costs.sums(space.to_indices(archs)).tolist() == [space.flops(a) for a in archs]
    True
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nasforge.errors import InvalidArchitectureError

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.search_spaces.block import Block

__all__ = ["SegmentCosts", "indexed_rows"]

_UNKNOWN = -1


class SegmentCosts:
    """Per-code integer costs of a space's blocks and their row sums (see the module docstring).

    Args:
        space: the search space (served when it offers ``segment_codes``).
        cost: the cost of one block (e.g. ``block_flops``, ``block_params``).
    """

    def __init__(self, space: SearchSpace, cost: Callable[[Block], int]) -> None:
        self.space = space
        self.cost = cost
        size = int(getattr(space, "num_segment_codes", lambda: 0)())
        #: per code its cost, and one 0 after the last: the ``-1`` of an inactive slot
        #: reads it (one gather per call, no mask)
        self._table: np.ndarray | None = None
        if size:
            self._table = np.full(size + 1, _UNKNOWN, dtype=np.int64)
            self._table[-1] = 0

    @property
    def served(self) -> bool:
        """Whether the space offers segment codes (else :meth:`sums` returns None)."""
        return self._table is not None

    def sums(self, matrix: np.ndarray) -> np.ndarray | None:
        """The cost of each row of ``matrix`` (option indices of valid rows): int64 array of
        shape ``(n,)``, or None when the space offers no segment codes."""
        if self._table is None:
            return None
        codes = self.space.segment_codes(np.asarray(matrix))  # type: ignore[attr-defined]
        if codes is None:
            return None
        table = self._table
        vals = table[codes]  # an inactive slot's -1 reads the trailing 0
        if (vals == _UNKNOWN).any():
            self._fill(table, np.asarray(matrix), codes)
            vals = table[codes]
        return vals.sum(axis=1)

    def _fill(self, table: np.ndarray, matrix: np.ndarray, codes: np.ndarray) -> None:
        """Cost the codes of ``codes`` not in ``table`` yet: one architecture is built per
        row that brings a new code.

        Raises:
            InvalidArchitectureError: a row whose blocks do not fit its codes (a wrong hook).
        """
        planned: set[int] = set()
        rows: list[int] = []
        for r, cells in enumerate(codes.tolist()):
            new = [c for c in cells if c >= 0 and table[c] == _UNKNOWN and c not in planned]
            if new:
                planned.update(new)
                rows.append(r)
        archs = self.space.from_indices(matrix[rows], check=False)  # type: ignore[attr-defined]
        for r, arch in zip(rows, archs, strict=True):
            blocks = self.space.blocks(arch)
            cells = [int(c) for c in codes[r] if c >= 0]
            if len(cells) != len(blocks):
                raise InvalidArchitectureError(
                    f"space {self.space.name!r}: a row has {len(cells)} block codes but "
                    f"{len(blocks)} blocks; its segment_codes hook is wrong")
            for c, b in zip(cells, blocks, strict=True):
                table[c] = int(self.cost(b))


def indexed_rows(costs: SegmentCosts, archs: Sequence[Arch]) -> np.ndarray | None:
    """The index matrix of ``archs`` when ``costs`` serves their space (all of it), else None
    (an arch of another space, or a value outside the space's registered options)."""
    space = costs.space
    if not costs.served or not archs or any(a.space != space.name for a in archs):
        return None
    try:
        return np.asarray(space.to_indices(list(archs)))  # type: ignore[attr-defined]
    except InvalidArchitectureError:
        return None
