"""The search-space contract and a declarative base for spaces made of discrete choices.

Call protocol (every space):

* ``sample(rng)``, ``mutate(arch, rng, prob)``, ``crossover(a, b, rng)`` return *valid*
  architectures; randomness always comes from the ``numpy.random.Generator`` passed in.
* ``validate(arch)`` raises :class:`~nasforge.errors.InvalidArchitectureError` naming the field,
  the value and the allowed set; ``arch_from_dict`` validates what it loads.
* ``blocks(arch)`` decomposes an architecture into :class:`~nasforge.search_spaces.block.Block` s;
  ``flops``, ``flops_reference`` and ``params`` are computed from blocks alone.
* ``encode(arch)`` is a fixed-length float vector for predictors; ``encoding_names()`` names
  its columns.

Spaces made of discrete choices (:class:`ChoiceSpace`) also offer a vectorised *index matrix*
view for search loops: an architecture is a row of option indices, one per flat choice
(``index_names()`` names the columns), and ``sample_indices``, ``mutate_indices``,
``crossover_indices``, ``repair_indices`` and ``encode_indices`` work on ``(n, num_choices)``
int64 matrices in numpy; ``to_indices`` / ``from_indices`` convert at the boundaries.
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar
from typing import cast

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import total_flops
from nasforge.search_spaces.block import total_flops_reference
from nasforge.search_spaces.block import total_params

if TYPE_CHECKING:
    import torch

__all__ = ["Choice", "ChoiceSpace", "SearchSpace"]

#: Architectures :meth:`ChoiceSpace.from_indices` memoises per space before starting afresh.
_MEMO_SIZE = 200_000


class SearchSpace(abc.ABC):
    """Base class of every search space (see the module docstring for the call protocol)."""

    #: Registered name, set by :func:`~nasforge.search_spaces.registry.register_space`.
    name: str = ""
    #: The architecture dataclass of this space.
    arch_cls: ClassVar[type[Arch]] = Arch
    #: Short description for ``nas spaces``.
    description: ClassVar[str] = ""
    #: Whether :meth:`build_model` exists (vision spaces) or the space is tabular only.
    has_model: ClassVar[bool] = True

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

    def build_model(self, arch: Arch, num_classes: int | None = None) -> torch.nn.Module:
        """A randomly initialised static PyTorch model of ``arch`` (the supernet's twin)."""
        from nasforge.supernet.static import build_model

        return build_model(self, arch, num_classes=num_classes)

    def check_arch_type(self, arch: Arch) -> None:
        """Raise when ``arch`` belongs to another space."""
        if not isinstance(arch, self.arch_cls) or arch.space != self.name:
            raise InvalidArchitectureError(
                f"architecture of space {getattr(arch, 'space', type(arch).__name__)!r} given to "
                f"space {self.name!r}; load it with the space it was made for"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


@dataclass(frozen=True)
class Choice:
    """One field of an architecture made of discrete choices.

    Attributes:
        field: the dataclass field name.
        options: allowed values, one tuple per element (``length`` tuples) or a single tuple
            for a scalar field.
        scalar: the field holds one value rather than a tuple.
    """

    field: str
    options: tuple[tuple[Any, ...], ...]
    scalar: bool = False

    @property
    def length(self) -> int:
        return len(self.options)

    @staticmethod
    def one(field: str, values: Sequence[Any]) -> Choice:
        return Choice(field, (tuple(values),), scalar=True)

    @staticmethod
    def each(field: str, options: Sequence[Sequence[Any]]) -> Choice:
        return Choice(field, tuple(tuple(o) for o in options))

    @staticmethod
    def repeat(field: str, values: Sequence[Any], n: int) -> Choice:
        return Choice(field, tuple(tuple(values) for _ in range(n)))


def _fmt_allowed(values: Sequence[Any]) -> str:
    vs = list(values)
    if len(vs) > 3 and all(isinstance(v, int) for v in vs):
        steps = {b - a for a, b in itertools.pairwise(vs)}
        if len(steps) == 1:
            return f"{vs[0]}..{vs[-1]} step {steps.pop()}"
    return "{" + ", ".join(str(v) for v in vs) + "}"


class ChoiceSpace(SearchSpace):
    """A space declared as a list of :class:`Choice` s plus optional cross-field rules.

    Subclasses set :meth:`choices` and :meth:`blocks`, and may override :meth:`_repair`
    (make a freshly combined dict of values valid), :meth:`_check` (cross-field rules) and
    :meth:`size`.
    """

    def __init__(self) -> None:
        self._choices: tuple[Choice, ...] = tuple(self.choices())
        self._flat: list[tuple[Any, ...]] = [o for c in self._choices for o in c.options]
        self._flat_sets = [frozenset(o) for o in self._flat]
        self._sizes = np.array([len(o) for o in self._flat], dtype=np.float64)
        self._spans = [(c, sum(x.length for x in self._choices[:i])) for i, c in
                       enumerate(self._choices)]
        names: list[str] = []
        for c in self._choices:
            for i, opts in enumerate(c.options):
                label = c.field if c.scalar else f"{c.field}[{i}]"
                if all(isinstance(v, int | float) for v in opts):
                    names.append(label)
                else:
                    names.extend(f"{label}={v}" for v in opts)
        self._enc_names = names
        self._fields = [(c.field, start, start + c.length, c.scalar) for c, start in self._spans]
        self._index_labels = [c.field if c.scalar else f"{c.field}[{i}]"
                              for c in self._choices for i in range(c.length)]
        # ---- tables of the index-matrix view ----
        self._n_opts = np.array([len(o) for o in self._flat], dtype=np.int64)
        self._index_of = [{v: i for i, v in enumerate(o)} for o in self._flat]
        self._opt_off = np.concatenate([[0], np.cumsum(self._n_opts)[:-1]]).astype(np.int64)
        values = np.empty(int(self._n_opts.sum()), dtype=object)
        values[:] = [v for o in self._flat for v in o]
        self._values = values  # every option value, choice-major; row j starts at _opt_off[j]
        pos: list[int] = []
        off: list[int] = []
        lut: list[float] = []
        for j, opts in enumerate(self._flat):
            if _ordered(opts):  # numeric column: the value itself
                pos.append(j)
                off.append(len(lut))
                lut.extend(float(v) for v in opts)
            else:  # one one-hot column per option
                for o in opts:
                    pos.append(j)
                    off.append(len(lut))
                    lut.extend(1.0 if v == o else 0.0 for v in opts)
        self._enc_pos = np.asarray(pos, dtype=np.int64)
        self._enc_off = np.asarray(off, dtype=np.int64)
        self._enc_lut = np.asarray(lut, dtype=np.float64)
        self._key_dtype = np.uint8 if int(self._n_opts.max(initial=1)) <= 256 else np.int64
        self._memo: dict[bytes, Arch] = {}
        cls = type(self)
        self._has_repair = cls._repair is not ChoiceSpace._repair
        self._fast_encode = (cls.encode is ChoiceSpace.encode
                             or cls.encode_indices is not ChoiceSpace.encode_indices)

    @abc.abstractmethod
    def choices(self) -> list[Choice]:
        """The declared choices, in field order."""

    # ---- hooks ---------------------------------------------------------------------------
    def _repair(self, values: dict[str, Any], rng: np.random.Generator | None) -> None:
        """Make ``values`` (field -> value/list, edited in place) satisfy cross-field rules."""

    def _check(self, arch: Arch) -> None:
        """Raise :class:`InvalidArchitectureError` on a broken cross-field rule."""

    def _repair_indices(self, idx: np.ndarray, rng: np.random.Generator | None) -> None:
        """Vectorised :meth:`_repair`: make every row of ``idx`` satisfy the cross-field rules.

        The default goes row by row through :meth:`_repair` (correct for any space, slow);
        spaces with rules override it with numpy.

        Args:
            idx: (n, num_choices) int64 option indices, edited in place.
            rng: where a repair draws a random valid option; None takes the first valid one.
        """
        if not self._has_repair:
            return
        for r, row in enumerate(self._values[idx + self._opt_off].tolist()):
            values = {f: (row[s] if sc else row[s:e]) for f, s, e, sc in self._fields}
            self._repair(values, rng)
            flat: list[Any] = []
            for f, _, _, sc in self._fields:
                if sc:
                    flat.append(values[f])
                else:
                    flat.extend(values[f])
            idx[r] = [mp[v] for mp, v in zip(self._index_of, flat, strict=True)]

    # ---- construction ----------------------------------------------------------------------
    def _make(self, flat: list[Any], rng: np.random.Generator | None) -> Arch:
        if not self._has_repair:
            return self.arch_cls(space=self.name, **{
                f: (flat[s] if sc else tuple(flat[s:e])) for f, s, e, sc in self._fields})
        values = {f: (flat[s] if sc else flat[s:e]) for f, s, e, sc in self._fields}
        self._repair(values, rng)
        fields = {k: (v if not isinstance(v, list) else tuple(v)) for k, v in values.items()}
        return self.arch_cls(space=self.name, **fields)

    def _flatten(self, arch: Arch) -> list[Any]:
        out: list[Any] = []
        for c in self._choices:
            v = getattr(arch, c.field)
            if c.scalar:
                out.append(v)
            else:
                out.extend(v)
        return out

    def sample(self, rng: np.random.Generator) -> Arch:
        idx = (rng.random(len(self._flat)) * self._sizes).astype(np.int64)
        return self._make([o[i] for o, i in zip(self._flat, idx.tolist(), strict=True)], rng)

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float = 0.1) -> Arch:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"`0 <= prob <= 1` must hold, but got {prob=}")
        flat = self._flatten(arch)
        hit = np.flatnonzero(rng.random(len(flat)) < prob)
        u = rng.random(len(flat))  # drawn for every choice: the stream does not depend on hits
        picks = (u[hit] * self._sizes[hit]).astype(np.int64).tolist()
        for j, i in zip(hit.tolist(), picks, strict=True):
            flat[j] = self._flat[j][i]
        return self._make(flat, rng)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        fa, fb = self._flatten(a), self._flatten(b)
        pick = (rng.random(len(fa)) < 0.5).tolist()
        return self._make([x if p else y for x, y, p in zip(fa, fb, pick, strict=True)], rng)

    def min_arch(self) -> Arch:
        return self._make([min(o) if _ordered(o) else o[0] for o in self._flat], None)

    def max_arch(self) -> Arch:
        return self._make([max(o) if _ordered(o) else o[0] for o in self._flat], None)

    # ---- checking ----------------------------------------------------------------------
    def validate(self, arch: Arch) -> None:
        self.check_arch_type(arch)
        for c, start in self._spans:
            v = getattr(arch, c.field)
            if c.scalar:
                if v not in self._flat_sets[start]:
                    raise InvalidArchitectureError(
                        f"{self.name}: {c.field} = {v!r} is not allowed; allowed: "
                        f"{_fmt_allowed(c.options[0])}"
                    )
                continue
            if not isinstance(v, tuple) or len(v) != c.length:
                raise InvalidArchitectureError(
                    f"{self.name}: {c.field} must be a list of {c.length} values, but got {v!r}"
                )
            for i, x in enumerate(v):
                if x not in self._flat_sets[start + i]:
                    raise InvalidArchitectureError(
                        f"{self.name}: {c.field}[{i}] = {x!r} is not allowed; allowed: "
                        f"{_fmt_allowed(c.options[i])}"
                    )
        self._check(arch)

    def arch_from_dict(self, data: dict[str, Any]) -> Arch:
        if not isinstance(data, dict):
            raise InvalidArchitectureError(
                f"{self.name}: an architecture must be a mapping of fields, got "
                f"{type(data).__name__}"
            )
        expected = set(self.arch_cls.field_names()) - {"space"}
        given = set(data) - {"space"}
        missing, extra = sorted(expected - given), sorted(given - expected)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing field(s) {', '.join(missing)}")
            if extra:
                parts.append(f"unknown field(s) {', '.join(extra)}")
            raise InvalidArchitectureError(
                f"{self.name}: {'; '.join(parts)}; fields are {', '.join(sorted(expected))}"
            )
        fields: dict[str, Any] = {}
        for k in expected:
            v = data[k]
            fields[k] = tuple(v) if isinstance(v, list) else v
        arch = self.arch_cls(space=self.name, **fields)
        self.validate(arch)
        return arch

    # ---- encoding and counting ---------------------------------------------------------
    def encoding_names(self) -> list[str]:
        return list(self._enc_names)

    def encode(self, arch: Arch) -> np.ndarray:
        out: list[float] = []
        for v, opts in zip(self._flatten(arch), self._flat, strict=True):
            if all(isinstance(o, int | float) for o in opts):
                out.append(float(v))
            else:
                out.extend(1.0 if v == o else 0.0 for o in opts)
        return np.asarray(out, dtype=np.float64)

    def encode_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Stack :meth:`encode` of each arch: shape (len(archs), len(encoding_names())).

        Goes through :meth:`encode_indices` (one table lookup for the batch) unless the space
        has its own :meth:`encode` and no vectorised twin.
        """
        if not archs:
            return np.zeros((0, len(self.encoding_names())))
        if self._fast_encode:
            return self.encode_indices(self.to_indices(archs))
        return np.stack([self.encode(a) for a in archs])

    # ---- the index-matrix view -----------------------------------------------------------
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
                        f"allowed: {_fmt_allowed(self._flat[j])}"
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
        if type(self)._check is ChoiceSpace._check:
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
        rows: list[list[int]] = []
        for a in archs:
            if type(a) is not cls or a.space != name:
                self.check_arch_type(a)
            try:
                rows.append([mp[v] for mp, v in zip(maps, self._flatten(a), strict=True)])
            except (KeyError, TypeError, ValueError):
                self.validate(a)  # raises naming the field, the value and the allowed set
                raise
        if not rows:
            return np.zeros((0, len(self._flat)), dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)

    def from_indices(self, matrix: np.ndarray, *, check: bool = True) -> list[Arch]:
        """The architectures of the rows of an index matrix.

        Architectures are immutable, so equal rows give the same object: built ones are
        memoised per row (up to ``_MEMO_SIZE`` of them), which makes repeated rows cost a dict
        lookup in search loops.

        Args:
            matrix: (n, num_choices) integer option indices.
            check: also check the cross-field rules (:meth:`validate`); rows made by
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
            cls, name, fields = self.arch_cls, self.name, self._fields
            rows = self._values[idx[miss] + self._opt_off].tolist()
            for i, row in zip(miss, rows, strict=True):
                a = memo.get(keys[i])  # a duplicate row earlier in this batch
                if a is None:
                    a = memo[keys[i]] = cls(space=name, **{
                        f: (row[s] if sc else tuple(row[s:e])) for f, s, e, sc in fields})
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

    def sample_indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random valid architectures as an index matrix: shape (n, num_choices).

        Each choice is uniform over its options, then :meth:`repair_indices` applies the
        cross-field rules (the same distribution as :meth:`sample`).
        """
        if n < 0:
            raise InvalidInputError(f"`n >= 0` must hold, but got {n=}")
        idx = (rng.random((n, len(self._flat))) * self._sizes).astype(np.int64)
        self._repair_indices(idx, rng)
        return idx

    def mutate_indices(self, matrix: np.ndarray, rng: np.random.Generator,
                       prob: float = 0.1) -> np.ndarray:
        """Resample each choice of each row with probability ``prob`` (vectorised :meth:`mutate`).

        Args:
            matrix: (n, num_choices) option indices of valid architectures (not modified).
            rng: the random generator.
            prob: per-choice resampling probability.

        Returns:
            A new (n, num_choices) int64 matrix of valid architectures.

        Raises:
            ValueError: ``prob`` outside [0, 1].
        """
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"`0 <= prob <= 1` must hold, but got {prob=}")
        idx = self._checked(matrix)
        hit = rng.random(idx.shape) < prob
        new = (rng.random(idx.shape) * self._sizes).astype(np.int64)
        out = np.where(hit, new, idx)
        self._repair_indices(out, rng)
        return out

    def crossover_indices(self, a: np.ndarray, b: np.ndarray,
                          rng: np.random.Generator) -> np.ndarray:
        """Uniform crossover of row ``i`` of ``a`` with row ``i`` of ``b`` (vectorised
        :meth:`crossover`).

        Args:
            a: (n, num_choices) option indices (not modified).
            b: (n, num_choices) option indices (not modified).
            rng: the random generator.

        Returns:
            A new (n, num_choices) int64 matrix of valid architectures.

        Raises:
            InvalidInputError: ``a`` and ``b`` differ in shape.
        """
        ia, ib = self._checked(a), self._checked(b)
        if ia.shape != ib.shape:
            raise InvalidInputError(
                f"crossover_indices needs matrices of one shape, got {ia.shape} and {ib.shape}")
        out = np.where(rng.random(ia.shape) < 0.5, ia, ib)
        self._repair_indices(out, rng)
        return out

    def repair_indices(self, matrix: np.ndarray,
                       rng: np.random.Generator | None = None) -> np.ndarray:
        """A copy of ``matrix`` whose rows satisfy the space's cross-field rules.

        Args:
            matrix: (n, num_choices) option indices.
            rng: where a repair draws a random valid option; None takes the first valid one.

        Returns:
            (n, num_choices) int64 matrix.
        """
        idx = self._checked(matrix).copy()
        self._repair_indices(idx, rng)
        return idx

    def encode_indices(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`encode` of every row of an index matrix, by table lookup.

        Args:
            matrix: (n, num_choices) option indices.

        Returns:
            float64 matrix of shape (n, len(encoding_names())), equal to
            ``encode_many(from_indices(matrix))``.
        """
        idx = self._checked(matrix)
        if type(self).encode is not ChoiceSpace.encode:  # the space's own encoding
            archs = self.from_indices(idx, check=False)
            if not archs:
                return np.zeros((0, len(self.encoding_names())))
            return np.stack([self.encode(a) for a in archs])
        return self._enc_lut[idx[:, self._enc_pos] + self._enc_off]

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

    def num_choices(self) -> int:
        return len(self._flat)

    def size(self) -> int:
        return math.prod(len(o) for o in self._flat)


def _ordered(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) for v in values)
