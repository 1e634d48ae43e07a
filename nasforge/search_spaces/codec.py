"""The index codec: an architecture of discrete choices as a row of option indices.

Every strategy works on this view. A space declared as
:class:`~nasforge.search_spaces.choice.Choice` s (a
:class:`~nasforge.search_spaces.choice_space.ChoiceSpace`) is an :class:`IndexCodec`: an
architecture is a row of option indices, one per flat choice (``index_names()`` names the
columns, ``index_sizes()`` gives each column's number of options), and batches are
``(n, num_choices)`` int64 matrices handled in numpy. ``to_indices`` / ``from_indices``
convert at the boundaries; ``sample_indices``, ``mutate_indices``, ``crossover_indices``
draw rows and ``repair_indices`` applies the space's cross-field rules (the space adds
``encode_indices``, the predictors' feature matrix by table lookup).

What a space supplies is space knowledge only: its :class:`Choice` s (the option tables) and
two hooks for cross-field rules, :meth:`IndexCodec._repair_indices` (a batch of rows) and
:meth:`IndexCodec._repair_row` (one row, as the per-architecture operators draw it). The
space's own ``sample`` / ``mutate`` / ``crossover`` are these operators on one row. How a
search combines them (parent selection, offspring, rejection) lives with the strategies
(:mod:`nasforge.strategies._ga`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar
from typing import cast

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces._index_ops import IndexOperators
from nasforge.search_spaces.choice import Choice
from nasforge.search_spaces.choice import fmt_allowed

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = ["IndexCodec"]

#: Architectures :meth:`IndexCodec.from_indices` memoises per space before starting afresh.
_MEMO_SIZE = 200_000


class IndexCodec(IndexOperators):
    """The index-matrix view of a space made of :class:`Choice` s (see the module docstring).

    A mixin of :class:`~nasforge.search_spaces.choice_space.ChoiceSpace`: it builds its tables
    in :meth:`_init_codec` and uses the space's ``name``, ``arch_cls``, ``check_arch_type``
    and ``validate``.
    """

    name: str
    arch_cls: ClassVar[type[Arch]]

    def _init_codec(self, choices: Sequence[Choice]) -> None:
        self._choices: tuple[Choice, ...] = tuple(choices)
        self._flat: list[tuple[Any, ...]] = [o for c in self._choices for o in c.options]
        self._sizes = np.array([len(o) for o in self._flat], dtype=np.float64)
        self._spans = [(c, sum(x.length for x in self._choices[:i])) for i, c in
                       enumerate(self._choices)]
        self._fields = [(c.field, start, start + c.length, c.scalar) for c, start in self._spans]
        self._index_labels = [c.field if c.scalar else f"{c.field}[{i}]"
                              for c in self._choices for i in range(c.length)]
        self._n_opts = np.array([len(o) for o in self._flat], dtype=np.int64)
        self._index_of = [{v: i for i, v in enumerate(o)} for o in self._flat]
        self._opt_off = np.concatenate([[0], np.cumsum(self._n_opts)[:-1]]).astype(np.int64)
        values = np.empty(int(self._n_opts.sum()), dtype=object)
        values[:] = [v for o in self._flat for v in o]
        self._values = values  # every option value, choice-major; row j starts at _opt_off[j]
        self._key_dtype = np.uint8 if int(self._n_opts.max(initial=1)) <= 256 else np.int64
        self._memo: dict[bytes, Arch] = {}
        self._has_repair = type(self)._repair_row is not IndexCodec._repair_row
        #: where an arch built by :meth:`from_indices` keeps its row key (:meth:`row_keys`),
        #: when its row is the only one of its values (the codec's own ``_build`` and
        #: ``_flatten``, distinct options per column): :meth:`to_indices` reads it back, and
        #: ``ArchText`` writes the JSON from it; None: not kept
        self.row_attr: str | None = (
            f"_nasforge_row_{uuid.uuid4().hex}"  # unique, also in another process
            if type(self)._build is IndexCodec._build
            and type(self)._flatten is IndexCodec._flatten
            and all(len(m) == len(o) for m, o in zip(self._index_of, self._flat, strict=True))
            else None)

    # ---- hooks (space knowledge) ---------------------------------------------------------
    def _check(self, arch: Arch) -> None:
        """Raise :class:`InvalidArchitectureError` on a broken cross-field rule."""

    def _repair_row(self, row: list[int], rng: np.random.Generator | None) -> None:
        """Make one row of option indices satisfy the cross-field rules, in place.

        The per-architecture operators (``sample``, ``mutate``, ``crossover``, ``min_arch``)
        repair through this hook, one draw of ``rng`` at a time.

        Args:
            row: num_choices option indices, edited in place.
            rng: where a repair draws a random valid option; None takes the first valid one.
        """

    def _repair_indices(self, idx: np.ndarray, rng: np.random.Generator | None) -> None:
        """Vectorised :meth:`_repair_row`: make every row of ``idx`` satisfy the rules.

        The default goes row by row through :meth:`_repair_row` (correct for any space,
        slow); spaces with rules override it with numpy.

        Args:
            idx: (n, num_choices) int64 option indices, edited in place.
            rng: where a repair draws a random valid option; None takes the first valid one.
        """
        self._repair_each(idx, rng)

    def _repair_each(self, idx: np.ndarray, rng: np.random.Generator | None) -> None:
        """:meth:`_repair_row` on each row of ``idx`` in turn (in place)."""
        if not self._has_repair:
            return
        for r in range(len(idx)):
            row = idx[r].tolist()
            self._repair_row(row, rng)
            idx[r] = row

    # ---- tables ----------------------------------------------------------------------------
    def index_names(self) -> list[str]:
        """Column names of index matrices: ``field`` or ``field[i]``, in field order."""
        return list(self._index_labels)

    def index_sizes(self) -> np.ndarray:
        """Number of options of each index column: int64 array of shape (num_choices,)."""
        return self._n_opts.copy()

    def index_options(self) -> list[tuple[Any, ...]]:
        """The option values of each index column: entry ``j`` of row ``r`` of an index
        matrix stands for ``index_options()[j][r[j]]``; one tuple per column, in
        :meth:`index_names` order."""
        return list(self._flat)

    def columns(self, field: str) -> slice:
        """The index-matrix columns of one field (a one-column slice for a scalar field).

        Raises:
            InvalidInputError: no such field.
        """
        for f, s, e, _ in self._fields:
            if f == field:
                return slice(s, e)
        raise InvalidInputError(
            f"{self.name}: no choice field {field!r}; fields: "
            f"{', '.join(f for f, *_ in self._fields)}"
        )

    def num_choices(self) -> int:
        return len(self._flat)

    def size(self) -> int:
        return math.prod(len(o) for o in self._flat)

    def values_to_indices(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        """Index matrix of rows given as option *values*, one per column (the inverse of
        looking the indices up in :meth:`index_options`).

        Args:
            rows: n rows of num_choices option values, in :meth:`index_names` order.

        Returns:
            int64 matrix of shape (n, num_choices); cross-field rules are not checked (see
            :meth:`valid_rows`).

        Raises:
            InvalidArchitectureError: a row of the wrong length or a value that is not an
                option of its column.

        Example:
            >>> from nasforge.search_spaces import get_space
            >>> space = get_space("nasbench201")
            >>> space.index_options()[0]
            ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')
            >>> space.values_to_indices([["nor_conv_3x3"] * 6]).tolist()
            [[3, 3, 3, 3, 3, 3]]
        """
        m = len(self._flat)
        out = np.zeros((len(rows), m), dtype=np.int64)
        for r, row in enumerate(rows):
            if len(row) != m:
                raise InvalidArchitectureError(
                    f"{self.name}: a row of option values has one value per choice ({m}), "
                    f"got {len(row)} in row {r}"
                )
            for j, (mp, v) in enumerate(zip(self._index_of, row, strict=True)):
                i = mp.get(v)
                if i is None:
                    raise InvalidArchitectureError(
                        f"{self.name}: {self._index_labels[j]} = {v!r} is not allowed; "
                        f"allowed: {fmt_allowed(self._flat[j])}"
                    )
                out[r, j] = i
        return out

    def valid_rows(self, matrix: np.ndarray) -> np.ndarray:
        """Which rows of an index matrix satisfy the space's cross-field rules (rows combined
        without :meth:`repair_indices`, e.g. one categorical draw per column, may not).

        Args:
            matrix: (n, num_choices) option indices.

        Returns:
            bool array of shape (n,).

        Raises:
            InvalidInputError: ``matrix`` is not an (n, num_choices) integer matrix.
            InvalidArchitectureError: an index out of range.

        Example:
            >>> import numpy as np
            >>> from nasforge.search_spaces import get_space
            >>> space = get_space("elasticvit")
            >>> rows = np.zeros((2, space.num_choices()), dtype=np.int64)
            >>> rows[1, space.columns("widths")] = [1, 0, 0, 0, 0, 0, 0]  # stem 24 > C1 16
            >>> space.valid_rows(rows).tolist()
            [True, False]
        """
        archs = self.from_indices(matrix, check=False)
        ok = np.ones(len(archs), dtype=bool)
        if type(self)._check is IndexCodec._check:
            return ok
        for i, a in enumerate(archs):
            try:
                self._check(a)
            except InvalidArchitectureError:
                ok[i] = False
        return ok

    def enumerate_indices(self, limit: int) -> np.ndarray | None:
        """Every architecture of the space as an index matrix, when it has at most ``limit``.

        Rows come in product order (the last column varies fastest); rows breaking a
        cross-field rule are left out.

        Args:
            limit: the largest :meth:`size` that is enumerated.

        Returns:
            (size(), num_choices) int64 matrix, or None when ``size() > limit``.

        Example:
            >>> from nasforge.search_spaces import get_space
            >>> get_space("nasbench201").enumerate_indices(20_000).shape
            (15625, 6)
            >>> get_space("elasticvit").enumerate_indices(20_000) is None
            True
        """
        if self.size() > limit:
            return None
        grid = np.indices(tuple(int(k) for k in self._n_opts), dtype=np.int64)
        rows = grid.reshape(len(self._flat), -1).T.copy()
        return rows[self.valid_rows(rows)]

    # ---- architectures <-> rows ------------------------------------------------------------
    def _flatten(self, arch: Arch) -> list[Any]:
        """The option values of ``arch``, one per column."""
        out: list[Any] = []
        for c in self._choices:
            v = getattr(arch, c.field)
            if c.scalar:
                out.append(v)
            else:
                out.extend(v)
        return out

    def _build(self, row: list[Any]) -> Arch:
        """The architecture of one row of option *values* (no check)."""
        return self.arch_cls(space=self.name, **{
            f: (row[s] if sc else tuple(row[s:e])) for f, s, e, sc in self._fields})

    def _row_of(self, arch: Arch) -> list[int]:
        """:meth:`to_indices` of one architecture, as a list."""
        try:
            if type(arch) is self.arch_cls and arch.space == self.name:
                return [mp[v] for mp, v in zip(self._index_of, self._flatten(arch))]  # noqa: B905
        except (KeyError, TypeError, ValueError):
            pass
        return self.to_indices([arch])[0].tolist()  # raises naming the field and the value

    def _from_row(self, row: list[int], rng: np.random.Generator | None) -> Arch:
        """:meth:`from_indices` of one row made by the one-row operators, repaired one draw at a
        time by :meth:`_repair_row` (edits ``row``; no range check, no memo)."""
        if self._has_repair:
            self._repair_row(row, rng)
        return self._build([o[i] for o, i in zip(self._flat, row)])  # noqa: B905

    def to_indices(self, archs: Sequence[Arch]) -> np.ndarray:
        """Option index of every choice of every arch.

        Args:
            archs: architectures of this space.

        Returns:
            int64 matrix of shape (len(archs), num_choices), columns named by
            :meth:`index_names`.

        Raises:
            InvalidArchitectureError: an arch of another space or with a value outside the space.
        """
        maps, cls, name = self._index_of, self.arch_cls, self.name
        kept = self._kept_rows(archs)
        if kept is not None:
            return kept
        rows: list[list[int]] = []
        for a in archs:
            if type(a) is not cls or a.space != name:
                self.check_arch_type(a)  # type: ignore[attr-defined]
            try:
                rows.append([mp[v] for mp, v in zip(maps, self._flatten(a), strict=True)])
            except (KeyError, TypeError, ValueError):
                self.validate(a)  # type: ignore[attr-defined]  # raises naming the value
                raise
        if not rows:
            return np.zeros((0, len(self._flat)), dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)

    def _kept_rows(self, archs: Sequence[Arch]) -> np.ndarray | None:
        """The index matrix of ``archs`` from the row keys :meth:`from_indices` kept on them
        (see :attr:`row_attr`), or None where one has none (or is of another class or space)."""
        attr, cls, name = self.row_attr, self.arch_cls, self.name
        if attr is None or not archs:
            return None
        keys = []
        for a in archs:
            key = a.__dict__.get(attr) if type(a) is cls and a.space == name else None
            if key is None:
                return None
            keys.append(key)
        flat = np.frombuffer(b"".join(keys), dtype=self._key_dtype)
        return flat.reshape(len(keys), len(self._flat)).astype(np.int64)

    def from_indices(self, matrix: np.ndarray, *, check: bool = True) -> list[Arch]:
        """The architectures of the rows of an index matrix.

        Architectures are immutable, so equal rows give the same object: built ones are
        memoised per row (up to ``_MEMO_SIZE`` of them), which makes repeated rows cost a dict
        lookup in search loops.

        Args:
            matrix: (n, num_choices) integer option indices.
            check: also check the cross-field rules (``validate``); rows made by
                :meth:`sample_indices`, :meth:`mutate_indices`, :meth:`crossover_indices` or
                :meth:`repair_indices` satisfy them, so search loops pass False.

        Returns:
            n architectures.

        Raises:
            InvalidInputError: ``matrix`` is not an (n, num_choices) integer matrix.
            InvalidArchitectureError: an index out of range, or (``check``) a broken rule.
        """
        idx = self._checked(matrix)
        memo = self._memo
        keys = self.row_keys(idx)
        out: list[Arch | None] = [memo.get(k) for k in keys]
        miss = [i for i, a in enumerate(out) if a is None]
        if miss:
            if len(memo) > _MEMO_SIZE:
                memo.clear()
            rows = self._values[idx[miss] + self._opt_off].tolist()
            for i, row in zip(miss, rows, strict=True):
                a = memo.get(keys[i])  # a duplicate row earlier in this batch
                if a is None:
                    a = memo[keys[i]] = self._build(row)
                    if self.row_attr is not None:  # archs are immutable: the row stays true
                        a.__dict__[self.row_attr] = keys[i]
                out[i] = a
        archs = cast("list[Arch]", out)  # every slot is filled above
        if check:
            for a in archs:
                self._check(a)
        return archs

    def row_keys(self, matrix: np.ndarray) -> list[bytes]:
        """A hashable key per row of an index matrix (equal rows, equal keys): the row's
        indices as bytes, for caches keyed by architecture.

        Args:
            matrix: (n, num_choices) option indices (not checked).
        """
        idx = np.asarray(matrix)
        if len(idx) == 0:
            return []
        small = np.ascontiguousarray(idx, dtype=self._key_dtype)
        raw = small.tobytes()
        w = small.shape[1] * small.itemsize
        return [raw[i:i + w] for i in range(0, len(raw), w)]

    # ---- blocks of rows (hook for table-driven latency) ------------------------------------
    def num_segment_codes(self) -> int:
        """How many distinct block codes :meth:`segment_codes` uses (0: the space has none)."""
        return 0

    def segment_codes(self, matrix: np.ndarray) -> np.ndarray | None:
        """The blocks of each row as small integer codes, or None (the default: not offered).

        A space whose blocks each depend on a few choices offers this so that a latency model
        can sum its per-block table values over a whole index matrix in numpy, with no
        architecture built per row. The contract: in row ``r``, the columns with a code
        ``>= 0``, in column order, are exactly the blocks of ``space.blocks(arch of r)`` in
        order (``-1``: no block there, e.g. an inactive slot); equal codes mean equal blocks
        in every row; codes lie in ``[0, num_segment_codes())``.

        Args:
            matrix: (n, num_choices) option indices of valid (repaired) rows.

        Returns:
            int64 array of shape (n, max blocks per row), or None.
        """
        return None

    def _checked(self, matrix: np.ndarray) -> np.ndarray:
        idx = np.asarray(matrix)
        m = len(self._flat)
        if idx.size == 0 and idx.ndim <= 2:
            return np.zeros((0, m), dtype=np.int64)
        if idx.ndim != 2 or idx.shape[1] != m or not np.issubdtype(idx.dtype, np.integer):
            raise InvalidInputError(
                f"{self.name}: an index matrix is (n, {m}) integers (one column per choice: "
                f"{', '.join(self._index_labels[:3])}, ...), got shape {idx.shape} of {idx.dtype}"
            )
        bad = (idx < 0) | (idx >= self._n_opts)
        if bad.any():
            r, j = (int(x[0]) for x in np.nonzero(bad))
            raise InvalidArchitectureError(
                f"{self.name}: index matrix row {r}, column {self._index_labels[j]} = "
                f"{int(idx[r, j])} is out of range; allowed: 0..{int(self._n_opts[j]) - 1}"
            )
        return idx.astype(np.int64, copy=False)
