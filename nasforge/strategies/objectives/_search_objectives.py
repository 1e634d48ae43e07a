"""The objectives of one search: evaluation in column order, feasibility, scores.

:class:`SearchObjectives` collects objectives, computes the cheap ones first (memoised per
architecture and per index row, :class:`~._memo.ArchMemo`), checks feasibility and gives the
scalar score of single-objective mode (the primary objective, sign-adjusted so that larger is
better; ``-inf`` when a bound is violated) or the minimisation matrix of Pareto mode.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.strategies.objectives import FlopsObjective, ParamsObjective
    >>> space = get_space("nasbench201")
    >>> objs = SearchObjectives([FlopsObjective(space, upper=100.0), ParamsObjective(space)],
    ...                         primary="params_m", mode="single")
    >>> archs = [space.sample(np.random.default_rng(0)) for _ in range(3)]
    >>> values = objs.evaluate(archs)
    >>> values.shape, objs.score(values).shape
    ((3, 2), (3,))
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.strategies.objectives._memo import ArchMemo
from nasforge.strategies.objectives.base import Objective

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["SearchObjectives"]

#: Cheap-value memos are emptied when they hold more entries than this (a long search).
_MAX_MEMO = 200_000


class SearchObjectives:
    """The objectives of one search, in column order.

    Args:
        objectives: the objectives; names must be unique.
        primary: name of the objective optimised in single-objective mode (its sign-adjusted
            value is the score); defaults to the first expensive objective, else the first one.
        mode: ``single`` (maximise the primary's score under all bounds) or ``pareto``
            (the non-dominated set over :attr:`pareto_names`).
        pareto: names of the objectives of the Pareto front (default: all).

    Raises:
        InvalidInputError: empty list, duplicate names, unknown primary or mode.
    """

    def __init__(self, objectives: Sequence[Objective], *, primary: str | None = None,
                 mode: Literal["single", "pareto"] = "single",
                 pareto: Sequence[str] | None = None) -> None:
        objs = list(objectives)
        if not objs:
            raise InvalidInputError("a search needs at least one objective; got none")
        names = [o.name for o in objs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidInputError(
                f"objective names must be unique, but {', '.join(dup)} appear twice; pass "
                "name=... to tell them apart"
            )
        if mode not in ("single", "pareto"):
            raise InvalidInputError(f"mode must be 'single' or 'pareto', got {mode!r}")
        self.objectives = objs
        self.names = names
        self.mode = mode
        if primary is None:
            expensive = [o.name for o in objs if not o.cheap]
            primary = expensive[0] if expensive else names[0]
        self._check_names([primary], "primary")
        self.primary = primary
        self.primary_index = names.index(primary)
        self.pareto_names = list(pareto) if pareto is not None else list(names)
        self._check_names(self.pareto_names, "pareto")
        self.pareto_index = [names.index(n) for n in self.pareto_names]
        self.signs = np.array([o.sign for o in objs])
        self.cheap_index = [i for i, o in enumerate(objs) if o.cheap]
        self.expensive_index = [i for i, o in enumerate(objs) if not o.cheap]
        #: the cheap objectives with a bound: all a feasibility filter computes
        self.bounded_cheap_index = [i for i in self.cheap_index if objs[i].bound is not None]
        #: the other cheap objectives (reported, not filtered on)
        self._free_cheap_index = [i for i in self.cheap_index if objs[i].bound is None]
        self._cheap_memo: ArchMemo[Arch] = ArchMemo(len(self.cheap_index), _MAX_MEMO)
        #: per (space, objective columns): the values of those columns per index row
        self._row_memos: dict[tuple[ChoiceSpace, tuple[int, ...]], ArchMemo[bytes]] = {}
        #: the space of each name whose index rows were evaluated (None: several spaces of
        #: that name, whose archs are then evaluated as archs; see :meth:`_rows_of`)
        self._row_spaces: dict[str, ChoiceSpace | None] = {}

    def _check_names(self, wanted: Sequence[str], what: str) -> None:
        for n in wanted:
            if n not in self.names:
                close = difflib.get_close_matches(n, self.names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise InvalidInputError(
                    f"{what} objective {n!r} is not among the objectives{hint} Available: "
                    f"{', '.join(self.names)}"
                )

    def __len__(self) -> int:
        return len(self.objectives)

    def __iter__(self) -> Iterator[Objective]:
        return iter(self.objectives)

    def __getitem__(self, name: str) -> Objective:
        self._check_names([name], "requested")
        return self.objectives[self.names.index(name)]

    @property
    def has_cheap_bounds(self) -> bool:
        """Whether some cheap objective has a bound (so rejection sampling is needed)."""
        return bool(self.bounded_cheap_index)

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate_cheap(self, archs: Sequence[Arch]) -> np.ndarray:
        """Values of the cheap objectives only: shape ``(len(archs), len(cheap_index))``.

        Results are memoised per architecture so that the full evaluation that follows a
        rejection filter does not recompute them.
        """
        return self._cheap_memo.lookup(archs, lambda todo: self._cheap_columns(
            [archs[i] for i in todo]))

    def _cheap_columns(self, archs: list[Arch]) -> np.ndarray:
        cols = [self.objectives[j].evaluate_many(archs) for j in self.cheap_index]
        return np.stack(cols, axis=1) if cols else np.zeros((len(archs), 0))

    def evaluate_cheap_indices(self, space: ChoiceSpace, matrix: np.ndarray) -> np.ndarray:
        """:meth:`evaluate_cheap` of the rows of an index matrix of ``space``.

        The bounded objectives' values are memoised per row (what a feasibility filter
        computed is looked up: a dict lookup per row, no architecture built); the others (no
        bound: only reported) are computed for every row, with no memo. Rows are evaluated in
        one batch, through the objectives' ``evaluate_indices`` when every objective of the
        batch has one (no architecture built), else as architectures (one
        :meth:`evaluate_cheap` call).

        Args:
            space: the space the rows index (see ``ChoiceSpace.to_indices``).
            matrix: (n, num_choices) option indices of valid architectures.

        Returns:
            float64 array of shape ``(n, len(cheap_index))``.
        """
        idx = np.asarray(matrix)
        self._register(space)
        pos = {j: c for c, j in enumerate(self.cheap_index)}
        out = np.empty((len(idx), len(self.cheap_index)))
        bounded, free = self.bounded_cheap_index, self._free_cheap_index
        out[:, [pos[j] for j in bounded]] = self._indexed(space, idx, bounded)
        out[:, [pos[j] for j in free]] = self._cheap_rows(space, idx, free)
        return out

    def _indexed(self, space: ChoiceSpace, idx: np.ndarray, which: list[int]) -> np.ndarray:
        """The values of the objectives ``which`` (cheap ones) of index rows, memoised per
        row and per set of columns: shape ``(len(idx), len(which))``."""
        key = (space, tuple(which))
        memo = self._row_memos.get(key)
        if memo is None:
            memo = self._row_memos[key] = ArchMemo(len(which), _MAX_MEMO)
            self._register(space)
        return memo.lookup(space.row_keys(idx),
                           lambda todo: self._cheap_rows(space, idx[todo], which))

    def _register(self, space: ChoiceSpace) -> None:
        """Note that rows of ``space`` were evaluated (see :meth:`_rows_of`)."""
        if self._row_spaces.setdefault(space.name, space) not in (space, None):
            self._row_spaces[space.name] = None

    def _cheap_rows(self, space: ChoiceSpace, rows: np.ndarray, which: list[int]
                    ) -> np.ndarray:
        """Values of the objectives ``which`` of index rows: each objective's
        ``evaluate_indices`` when all have one (no architecture built), else
        :meth:`evaluate_cheap` of the rows' architectures."""
        if not len(rows) or not which:
            return np.zeros((len(rows), len(which)))
        cols = []
        for j in which:
            col = self.objectives[j].evaluate_indices(space, rows)
            if col is None:
                vals = self.evaluate_cheap(space.from_indices(rows, check=False))
                return vals[:, [self.cheap_index.index(k) for k in which]]
            cols.append(col)
        return np.stack(cols, axis=1)

    def cheap_feasible_indices(self, space: ChoiceSpace, matrix: np.ndarray) -> np.ndarray:
        """:meth:`cheap_feasible` of the rows of an index matrix (the bounded cheap objectives
        only are computed, memoised per row as in :meth:`evaluate_cheap_indices`): bool array
        of shape ``(n,)``."""
        n = len(matrix)
        if not self.has_cheap_bounds or n == 0:
            return np.ones(n, dtype=bool)
        bounded = self.bounded_cheap_index
        return self._within_bounds(self._indexed(space, np.asarray(matrix), bounded), bounded)

    def _within_bounds(self, vals: np.ndarray, which: list[int]) -> np.ndarray:
        """Mask of the rows of ``vals`` (one column per objective of ``which``) inside every
        bound."""
        ok = np.ones(len(vals), dtype=bool)
        for c, j in enumerate(which):
            b = self.objectives[j].bound
            if b is not None:
                ok &= b.satisfied(vals[:, c])
        return ok

    def cheap_feasible(self, archs: Sequence[Arch]) -> np.ndarray:
        """Mask of the archs that satisfy every cheap bound (all True when there is none)."""
        if not self.has_cheap_bounds or not archs:
            return np.ones(len(archs), dtype=bool)
        return self._within_bounds(self.evaluate_cheap(archs), self.cheap_index)

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        """Every objective: shape ``(len(archs), len(self))``, columns in :attr:`names` order.

        The cheap values of archs of a space whose index rows were evaluated before
        (:meth:`evaluate_cheap_indices`, e.g. by a strategy's feasibility filter) come from
        that row memo (the same values: the index paths equal the per-arch ones)."""
        out = np.empty((len(archs), len(self.objectives)))
        if not archs:
            return out
        if self.cheap_index:
            rows = self._rows_of(archs)
            out[:, self.cheap_index] = (self.evaluate_cheap(archs) if rows is None
                                        else self.evaluate_cheap_indices(*rows))
        for j in self.expensive_index:
            out[:, j] = self.objectives[j].evaluate_many(archs)
        return out

    def _rows_of(self, archs: Sequence[Arch]) -> tuple[ChoiceSpace, np.ndarray] | None:
        """``(space, index matrix)`` of ``archs`` when they all belong to the one space whose
        rows this object memoises, else None (then archs are evaluated as archs)."""
        name = archs[0].space
        space = self._row_spaces.get(name)
        if space is None or any(a.space != name for a in archs):
            return None
        try:
            return space, space.to_indices(list(archs))
        except InvalidArchitectureError:  # a value outside the space's options
            return None

    # ---- feasibility and scores ----------------------------------------------------------
    def violation(self, values: np.ndarray) -> np.ndarray:
        """Total bound violation per row of ``values`` (0 for feasible rows)."""
        v = np.atleast_2d(np.asarray(values, dtype=np.float64))
        out = np.zeros(v.shape[0])
        for j, o in enumerate(self.objectives):
            if o.bound is not None:
                out += o.bound.violation(v[:, j])
        return out

    def feasible(self, values: np.ndarray) -> np.ndarray:
        """Mask of the rows of ``values`` that satisfy every bound."""
        return self.violation(values) == 0.0

    def score(self, values: np.ndarray) -> np.ndarray:
        """Single-objective score (larger is better): ``sign * primary``, ``-inf`` if infeasible.

        Args:
            values: shape ``(n, len(self))``.

        Returns:
            float64 array of shape ``(n,)``.
        """
        v = np.atleast_2d(np.asarray(values, dtype=np.float64))
        s = self.signs[self.primary_index] * v[:, self.primary_index]
        s = np.where(np.isnan(s), -math.inf, s)
        return np.where(self.feasible(v), s, -math.inf)

    def minimization_matrix(self, values: np.ndarray) -> np.ndarray:
        """The Pareto objectives turned into minimisation: shape ``(n, len(pareto_names))``."""
        v = np.atleast_2d(np.asarray(values, dtype=np.float64))
        return -(v[:, self.pareto_index] * self.signs[self.pareto_index])

    def describe(self) -> list[dict[str, Any]]:
        """Every objective's :meth:`Objective.describe`, in column order."""
        return [o.describe() for o in self.objectives]
