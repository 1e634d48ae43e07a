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

import weakref
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import ClassVar

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

    Every ``SegmentCosts`` of one space shares one :class:`_CodeTable`: the codes of a matrix
    are computed once for all of them (FLOPs and params objectives read the same rows in a
    row), and the architecture built for a row bringing new codes is costed for all of them.

    Args:
        space: the search space (served when it offers ``segment_codes``).
        cost: the cost of one block (e.g. ``block_flops``, ``block_params``).
    """

    def __init__(self, space: SearchSpace, cost: Callable[[Block], int]) -> None:
        self.space = space
        self.cost = cost
        size = int(getattr(space, "num_segment_codes", lambda: 0)())
        self._shared = _CodeTable.of(space, size) if size else None
        self._column = self._shared.column(cost) if self._shared is not None else -1

    @property
    def served(self) -> bool:
        """Whether the space offers segment codes (else :meth:`sums` returns None)."""
        return self._shared is not None

    def sums(self, matrix: np.ndarray) -> np.ndarray | None:
        """The cost of each row of ``matrix`` (option indices of valid rows): int64 array of
        shape ``(n,)``, or None when the space offers no segment codes."""
        return (None if self._shared is None
                else self._shared.sums(self.space, matrix, self._column))


class _CodeTable:
    """One space's per-code costs, a column per cost function, and the codes of the last
    matrix asked for (see :class:`SegmentCosts`)."""

    #: per space, its table (weakly, and a table holds no reference to its space: a space
    #: dropped drops its table)
    _of: ClassVar[weakref.WeakKeyDictionary[SearchSpace, _CodeTable]] = (
        weakref.WeakKeyDictionary())

    @classmethod
    def of(cls, space: SearchSpace, size: int) -> _CodeTable:
        table = cls._of.get(space)
        if table is None or table.size != size:
            table = cls._of[space] = cls(size)
        return table

    def __init__(self, size: int) -> None:
        self.size = size
        self.costs: list[Callable[[Block], int]] = []
        #: per code its cost per column, and one row of 0 after the last: the ``-1`` of an
        #: inactive slot reads it (one gather per call, no mask)
        self.table = np.zeros((size + 1, 0), dtype=np.int64)
        self._last: tuple[bytes, tuple[int, ...], np.ndarray] | None = None

    def column(self, cost: Callable[[Block], int]) -> int:
        """The column of ``cost`` (added, unknown for every code, on first use)."""
        if cost in self.costs:
            return self.costs.index(cost)
        self.costs.append(cost)
        new = np.full((self.size + 1, 1), _UNKNOWN, dtype=np.int64)
        new[-1] = 0
        self.table = np.concatenate([self.table, new], axis=1)
        return len(self.costs) - 1

    def codes(self, space: SearchSpace, matrix: np.ndarray) -> np.ndarray | None:
        """``space.segment_codes(matrix)``, computed once for consecutive asks of one
        matrix."""
        key = matrix.tobytes()
        last = self._last
        if last is not None and last[1] == matrix.shape and last[0] == key:
            return last[2]
        codes = space.segment_codes(matrix)  # type: ignore[attr-defined]
        if codes is not None:
            self._last = (key, matrix.shape, codes)
        return codes

    def sums(self, space: SearchSpace, matrix: np.ndarray, column: int) -> np.ndarray | None:
        """The row sums of ``column`` over the codes of ``matrix`` (None: no codes)."""
        matrix = np.asarray(matrix)
        codes = self.codes(space, matrix)
        if codes is None:
            return None
        vals = self.table[codes, column]  # an inactive slot's -1 reads the trailing 0
        if (vals == _UNKNOWN).any():
            self._fill(space, matrix, codes)
            vals = self.table[codes, column]
        return vals.sum(axis=1)

    def _fill(self, space: SearchSpace, matrix: np.ndarray, codes: np.ndarray) -> None:
        """Cost, in every column, the codes of ``codes`` not costed yet: one architecture is
        built per row that brings a new code.

        Raises:
            InvalidArchitectureError: a row whose blocks do not fit its codes (a wrong hook).
        """
        known = (self.table != _UNKNOWN).all(axis=1)
        planned: set[int] = set()
        rows: list[int] = []
        for r, cells in enumerate(codes.tolist()):
            new = [c for c in cells if c >= 0 and not known[c] and c not in planned]
            if new:
                planned.update(new)
                rows.append(r)
        archs = space.from_indices(matrix[rows], check=False)  # type: ignore[attr-defined]
        for r, arch in zip(rows, archs, strict=True):
            blocks = space.blocks(arch)
            cells = [int(c) for c in codes[r] if c >= 0]
            if len(cells) != len(blocks):
                raise InvalidArchitectureError(
                    f"space {space.name!r}: a row has {len(cells)} block codes but "
                    f"{len(blocks)} blocks; its segment_codes hook is wrong")
            for c, b in zip(cells, blocks, strict=True):
                self.table[c] = [int(cost(b)) for cost in self.costs]


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
