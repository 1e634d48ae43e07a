"""One per-architecture memo: values computed once per key, looked up in batches.

Every cache of the objectives goes through :class:`ArchMemo`: the FLOPs, params, tabular and
supernet-accuracy adapters (one float per architecture) and :class:`SearchObjectives` (one row of
cheap values per architecture, and per row of a space's index matrix). The key is whatever
identifies an architecture cheaply: the frozen :class:`~nasforge.search_spaces.arch.Arch`
itself (equal archs have equal canonical JSON, hence equal ``arch_id``), its ``arch_id``, or an
index row's bytes (``ChoiceSpace.row_keys``).

Example:
    >>> memo = ArchMemo()
    >>> calls = []
    >>> def compute(todo):
    ...     calls.append(list(todo))
    ...     return [10.0 * i for i in todo]
    >>> memo.lookup(["a", "b", "a"], compute)
    array([ 0., 10.,  0.])
    >>> memo.lookup(["b", "c"], compute)
    array([10., 10.])
    >>> calls  # positions of the distinct misses of each call
    [[0, 1], [1]]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Sequence
from typing import Any
from typing import Generic
from typing import TypeVar

import numpy as np

from nasforge.errors import InvalidInputError

__all__ = ["ArchMemo"]

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class ArchMemo(Generic[K]):
    """Values memoised per architecture key.

    Args:
        width: ``None`` for one float per key (lookups return shape ``(n,)``), else the length
            of each key's row of values (lookups return shape ``(n, width)``).
        max_size: when the memo holds more than this many keys before new ones are stored, it
            is emptied first (a long search stays bounded); ``None``: never.
    """

    def __init__(self, width: int | None = None, max_size: int | None = None) -> None:
        if width is not None and width < 0:
            raise InvalidInputError(f"ArchMemo needs `width >= 0` or None, got {width=}")
        self.width = width
        self.max_size = max_size
        self._values: dict[K, Any] = {}

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def clear(self) -> None:
        """Forget every value."""
        self._values.clear()

    def lookup(self, keys: Sequence[K],
               compute: Callable[[list[int]], Sequence[float] | np.ndarray]) -> np.ndarray:
        """The values of ``keys``, computing only the keys not seen before.

        Args:
            keys: one key per architecture of the batch.
            compute: called once (only if some key is new) with the positions in ``keys`` of
                the first occurrence of each new key; returns their values, shape
                ``(len(positions),)`` or ``(len(positions), width)``.

        Returns:
            float64 array of shape ``(len(keys),)`` or ``(len(keys), width)``.

        Raises:
            InvalidInputError: ``compute`` returned the wrong shape.
        """
        values = self._values
        found = [values.get(k) for k in keys]
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            first: dict[K, int] = {}
            for i in missing:
                first.setdefault(keys[i], i)
            todo = list(first.values())
            got = np.asarray(compute(todo), dtype=np.float64)
            want = (len(todo),) if self.width is None else (len(todo), self.width)
            if got.shape != want:
                raise InvalidInputError(
                    f"a memoised computation returned shape {got.shape} for {len(todo)} "
                    f"architectures; it must return shape {want}"
                )
            if self.max_size is not None and len(values) > self.max_size:
                logger.debug("memo of %d architectures emptied (max_size=%d)", len(values),
                             self.max_size)
                values.clear()
            new = got.tolist() if self.width is None else list(got)
            for k, v in zip(first, new, strict=True):
                values[k] = v
            for i in missing:
                found[i] = values[keys[i]]
        if self.width is None:
            return np.asarray(found, dtype=np.float64).reshape(len(keys))
        if not found:
            return np.zeros((0, self.width))
        return np.asarray(found, dtype=np.float64).reshape(len(keys), self.width)
