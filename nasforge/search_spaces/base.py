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
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import total_flops
from nasforge.search_spaces.block import total_flops_reference
from nasforge.search_spaces.block import total_params

if TYPE_CHECKING:
    import torch

__all__ = ["Choice", "ChoiceSpace", "SearchSpace"]


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
        from nasforge.search_spaces.static import build_model

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
        steps = {b - a for a, b in zip(vs, vs[1:], strict=False)}
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

    @abc.abstractmethod
    def choices(self) -> list[Choice]:
        """The declared choices, in field order."""

    # ---- hooks ---------------------------------------------------------------------------
    def _repair(self, values: dict[str, Any], rng: np.random.Generator | None) -> None:
        """Make ``values`` (field -> value/list, edited in place) satisfy cross-field rules."""

    def _check(self, arch: Arch) -> None:
        """Raise :class:`InvalidArchitectureError` on a broken cross-field rule."""

    # ---- construction ----------------------------------------------------------------------
    def _make(self, flat: list[Any], rng: np.random.Generator | None) -> Arch:
        values: dict[str, Any] = {}
        for c, start in self._spans:
            if c.scalar:
                values[c.field] = flat[start]
            else:
                values[c.field] = list(flat[start:start + c.length])
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
        hit = rng.random(len(flat)) < prob
        idx = (rng.random(len(flat)) * self._sizes).astype(np.int64)
        new = [o[i] if h else v for v, o, i, h in
               zip(flat, self._flat, idx.tolist(), hit.tolist(), strict=True)]
        return self._make(new, rng)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        fa, fb = self._flatten(a), self._flatten(b)
        pick = rng.random(len(fa)) < 0.5
        return self._make([x if p else y for x, y, p in zip(fa, fb, pick.tolist(), strict=True)],
                          rng)

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
                f"{self.name}: an architecture must be a mapping of fields, got {type(data).__name__}"
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

    def num_choices(self) -> int:
        return len(self._flat)

    def size(self) -> int:
        return math.prod(len(o) for o in self._flat)


def _ordered(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) for v in values)
