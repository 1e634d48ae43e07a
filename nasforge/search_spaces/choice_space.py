"""A declarative base for spaces made of discrete choices: :class:`ChoiceSpace`.

A space lists its :class:`~nasforge.search_spaces.choice.Choice` s (and may add cross-field
rules); it is then an :class:`~nasforge.search_spaces.codec.IndexCodec`, and each
per-architecture operator is the codec's operator on one row, ``from_indices(op(to_indices(
[arch])))``: ``sample``, ``mutate`` and ``crossover`` make the codec's draws for one row and
repair it with the space's one-row hook
(:meth:`~nasforge.search_spaces.codec.IndexCodec._repair_row`), so that each architecture
draws exactly the numbers it drew before the codec existed.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201")
    >>> a = space.sample(np.random.default_rng(0))
    >>> space.from_indices(space.to_indices([a]))[0] == a
    True
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace
from nasforge.search_spaces.choice import Choice
from nasforge.search_spaces.choice import fmt_allowed
from nasforge.search_spaces.choice import is_ordered
from nasforge.search_spaces.codec import IndexCodec

__all__ = ["ChoiceSpace"]


class ChoiceSpace(IndexCodec, SearchSpace):
    """A space declared as a list of :class:`Choice` s plus optional cross-field rules.

    Subclasses set :meth:`choices` and :meth:`blocks`, and may override the codec's hooks
    :meth:`_repair_row` / :meth:`_repair_indices` (make freshly combined rows valid) and
    :meth:`_check` (cross-field rules), and :meth:`size`.
    """

    def __init__(self) -> None:
        self._init_codec(self.choices())
        self._flat_sets = [frozenset(o) for o in self._flat]
        names: list[str] = []
        for c in self._choices:
            for i, opts in enumerate(c.options):
                label = c.field if c.scalar else f"{c.field}[{i}]"
                if is_ordered(opts):
                    names.append(label)
                else:
                    names.extend(f"{label}={v}" for v in opts)
        self._enc_names = names
        # encode_indices' lookup table: column k of a row's encoding is
        # _enc_lut[row[_enc_pos[k]] + _enc_off[k]]
        pos: list[int] = []
        off: list[int] = []
        lut: list[float] = []
        for j, opts in enumerate(self._flat):
            if is_ordered(opts):  # numeric column: the value itself
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
        cls = type(self)
        self._own_encode = cls.encode is not ChoiceSpace.encode
        self._fast_encode = (not self._own_encode
                             or cls.encode_indices is not ChoiceSpace.encode_indices)

    @abc.abstractmethod
    def choices(self) -> list[Choice]:
        """The declared choices, in field order."""

    # ---- the codec's operators on one row --------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch:
        return self._from_row(self._sample_row(rng), rng)

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float = 0.1) -> Arch:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"`0 <= prob <= 1` must hold, but got {prob=}")
        return self._from_row(self._mutate_row(self._row_of(arch), rng, prob), rng)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        return self._from_row(self._crossover_row(self._row_of(a), self._row_of(b), rng), rng)

    def _extreme(self, pick: Any) -> Arch:
        return self._from_row([self._index_of[j][pick(o)] if is_ordered(o) else 0
                               for j, o in enumerate(self._flat)], None)

    def min_arch(self) -> Arch:
        return self._extreme(min)

    def max_arch(self) -> Arch:
        return self._extreme(max)

    # ---- checking ----------------------------------------------------------------------
    def validate(self, arch: Arch) -> None:
        self.check_arch_type(arch)
        for c, start in self._spans:
            v = getattr(arch, c.field)
            if c.scalar:
                if v not in self._flat_sets[start]:
                    raise InvalidArchitectureError(
                        f"{self.name}: {c.field} = {v!r} is not allowed; allowed: "
                        f"{fmt_allowed(c.options[0])}"
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
                        f"{fmt_allowed(c.options[i])}"
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

    # ---- encoding ----------------------------------------------------------------------
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

    def encode_indices(self, matrix: np.ndarray) -> np.ndarray:
        """``encode`` of every row of an index matrix, by table lookup.

        Args:
            matrix: (n, num_choices) option indices.

        Returns:
            float64 matrix of shape (n, len(encoding_names())), equal to
            ``encode_many(from_indices(matrix))``.
        """
        idx = self._checked(matrix)
        if self._own_encode:  # the space's own encoding
            archs = self.from_indices(idx, check=False)
            if not archs:
                return np.zeros((0, len(self.encoding_names())))
            return np.stack([self.encode(a) for a in archs])
        return self._enc_lut[idx[:, self._enc_pos] + self._enc_off]
