"""The evaluated candidates of one search, in evaluation order: what the driver remembers.

One :class:`History` holds, for every distinct evaluation, the architecture, its objective
values and the ask/tell round that evaluated it, plus the lookup by evaluation key (the
driver's dedupe cache: an arch whose key is known is served its stored values). It turns into
the :class:`~nasforge.strategies.result.SearchResult` at the end.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.strategies import FlopsObjective, SearchObjectives
    >>> space = get_space("nasbench201")
    >>> objs = SearchObjectives([FlopsObjective(space, upper=150)])
    >>> history = History(objs)
    >>> arch = space.min_arch()
    >>> history.add(arch, objs.evaluate([arch])[0], step=0)
    >>> len(history), history.values_of(history.key_of(arch)).shape
    (1, (1,))
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

import numpy as np

from nasforge.strategies.result import Candidate
from nasforge.strategies.result import SearchResult

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["Evaluated", "History"]


class Evaluated(NamedTuple):
    """One evaluated architecture.

    Attributes:
        arch: the architecture.
        values: its objective values: shape (len(objectives),), in ``objectives.names`` order.
        step: the ask/tell round that evaluated it (-1: resumed from a strategy's own storage).
    """

    arch: Arch
    values: np.ndarray
    step: int


class History:
    """Every distinct evaluation of a search, in order, with the lookup by evaluation key.

    Args:
        objectives: the search's objectives (column order of the values).
        key: maps an arch to its evaluation key (default: the arch itself, i.e. its
            ``arch_id``; NB201's ``canonical_id`` evaluates isomorphic cells once).

    Attributes:
        key_of: the evaluation key of an arch (``key``, or the identity).
    """

    def __init__(self, objectives: SearchObjectives,
                 key: Callable[[Arch], Hashable] | None = None) -> None:
        self.objectives = objectives
        self.key_of: Callable[[Arch], Hashable] = key if key is not None else _identity
        self._items: list[Evaluated] = []
        self._by_key: dict[Hashable, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._items)

    def values_of(self, key: Hashable) -> np.ndarray | None:
        """The values stored for an evaluation key: shape (len(objectives),), or None."""
        return self._by_key.get(key)

    def add(self, arch: Arch, values: np.ndarray, step: int, key: Hashable | None = None) -> None:
        """Append one evaluation (``key``: its evaluation key when already computed)."""
        v = np.asarray(values, dtype=np.float64)
        self._by_key[self.key_of(arch) if key is None else key] = v
        self._items.append(Evaluated(arch, v, int(step)))

    def told_until(self, step: int) -> tuple[list[Arch], np.ndarray]:
        """The candidates evaluated in rounds ``0..step``, as told to the strategy before the
        state of round ``step`` was saved (for ``load_state_dict``).

        Returns:
            The archs, and their values: shape (n, len(objectives)).
        """
        told = [e for e in self._items if 0 <= e.step <= step]
        return [e.arch for e in told], self._matrix(told)

    def candidates(self, start: int = 0) -> list[Candidate]:
        """The evaluations from index ``start`` on, as :class:`Candidate` s."""
        new = self._items[start:]
        if not new:
            return []
        names = self.objectives.names
        feasible = self.objectives.feasible(self._matrix(new)).tolist()
        return [Candidate(index=start + i, step=e.step, arch=e.arch,
                          values=dict(zip(names, e.values.tolist(), strict=True)),
                          feasible=bool(ok))
                for i, (e, ok) in enumerate(zip(new, feasible, strict=True))]

    def to_result(self, *, strategy: dict[str, Any], stopped: str, n_asked: int,
                  seconds: float) -> SearchResult:
        """The :class:`SearchResult` of every evaluation (``strategy``: its ``describe()``)."""
        return SearchResult(archs=[e.arch for e in self._items], values=self._matrix(self._items),
                            steps=np.asarray([e.step for e in self._items], dtype=np.int64),
                            objectives=self.objectives, strategy=strategy, stopped=stopped,
                            n_asked=n_asked, seconds=seconds)

    def _matrix(self, items: list[Evaluated]) -> np.ndarray:
        return np.asarray([e.values for e in items], dtype=np.float64).reshape(
            len(items), len(self.objectives))


def _identity(arch: Arch) -> Hashable:
    return arch
