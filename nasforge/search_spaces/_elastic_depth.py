"""Spaces with elastic depth whose architectures store only their active layers.

:class:`ElasticDepthSpace` is a :class:`~nasforge.search_spaces.choice_space.ChoiceSpace`
whose per-layer fields (``decoder_ffn_embed_dim``, ...) are declared for the maximum depth
in the index codec, while the architecture holds a tuple of exactly ``layer_num`` entries
(HAT's and MatFormer's form). In an index row, the columns of layers beyond the depth are
*inactive* and held at option 0 (the canonical form, like ``ofa_mbv3``'s inactive blocks):
sampling, mutation and crossover repair them so, :meth:`~ElasticDepthSpace.from_indices`
drops them, :meth:`~ElasticDepthSpace.to_indices` writes them, and the encoding writes 0 for
them. Hence one network has one row and one ``arch_id``, and :meth:`~ElasticDepthSpace.size`
counts active configurations:
``prod(other options) * prod_g sum_{d in depths_g} prod_{i < d} prod_{f in g} |options_f[i]|``
over the depth groups ``g``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.choice import fmt_allowed
from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["ElasticDepthSpace"]


class ElasticDepthSpace(ChoiceSpace):
    """A :class:`ChoiceSpace` whose per-layer tuples hold the active layers only.

    Subclasses declare :meth:`choices` (per-layer fields at the maximum depth, the depth fields
    as scalar choices) and :meth:`layer_fields`.
    """

    def layer_fields(self) -> dict[str, str]:
        """Per-layer field -> the scalar depth field that sets its length."""
        return {}

    def __init__(self) -> None:
        super().__init__()
        self._depth_of = self.layer_fields()
        spans = {f: (s, e) for f, s, e, _ in self._fields}
        # per index column: (depth column, slot) for layer columns, None otherwise
        slot_of: list[tuple[int, int] | None] = [None] * len(self._flat)
        for f, d in self._depth_of.items():
            s, e = spans[f]
            for i in range(e - s):
                slot_of[s + i] = (spans[d][0], i)
        self._slot_of = slot_of
        layers = [(j, x) for j, x in enumerate(slot_of) if x is not None]
        self._layer_cols = np.asarray([j for j, _ in layers], dtype=np.int64)
        self._layer_depth_col = np.asarray([x[0] for _, x in layers], dtype=np.int64)
        self._layer_slot = np.asarray([x[1] for _, x in layers], dtype=np.int64)
        self._depth_values = {c: np.asarray(self._flat[c], dtype=np.int64)
                              for c in {x[0] for _, x in layers}}
        enc_layer = [(k, slot_of[j]) for k, j in enumerate(self._enc_pos.tolist())]
        enc_layer = [(k, x) for k, x in enc_layer if x is not None]
        self._enc_layer_cols = np.asarray([k for k, _ in enc_layer], dtype=np.int64)
        self._enc_depth_col = np.asarray([x[0] for _, x in enc_layer], dtype=np.int64)
        self._enc_slot = np.asarray([x[1] for _, x in enc_layer], dtype=np.int64)

    # ---- rows <-> architectures ------------------------------------------------------------
    def _flatten(self, arch: Arch) -> list[Any]:
        out: list[Any] = []
        for c in self._choices:
            v = getattr(arch, c.field)
            if c.scalar:
                out.append(v)
            elif (c.field in self._depth_of and isinstance(v, tuple)
                  and len(v) == getattr(arch, self._depth_of[c.field]) <= c.length):
                out.extend(v)
                out.extend(c.options[i][0] for i in range(len(v), c.length))
            else:
                out.extend(v)
        return out

    def _build(self, row: list[Any]) -> Arch:
        fields: dict[str, Any] = {}
        for f, s, e, sc in self._fields:
            fields[f] = row[s] if sc else tuple(row[s:e])
        for f, d in self._depth_of.items():
            fields[f] = fields[f][:fields[d]]
        return self.arch_cls(space=self.name, **fields)

    def _active_mask(self, idx: np.ndarray) -> np.ndarray:
        """(n, n_layer_cols) bool: which layer columns of each row are active."""
        depth = np.empty((len(idx), len(self._layer_cols)), dtype=np.int64)
        for c, values in self._depth_values.items():
            cols = self._layer_depth_col == c
            depth[:, cols] = values[idx[:, c]][:, None]
        return self._layer_slot[None, :] < depth

    def _repair_row(self, row: list[int], rng: np.random.Generator | None) -> None:
        """Inactive layer columns to option 0 (``rng`` unused: the form is deterministic).

        Args:
            row: num_choices option indices, edited in place.
            rng: unused.
        """
        for j, x in enumerate(self._slot_of):
            if x is not None and x[1] >= self._flat[x[0]][row[x[0]]]:
                row[j] = 0

    def _repair_indices(self, idx: np.ndarray, rng: np.random.Generator | None) -> None:
        """Vectorised :meth:`_repair_row`: inactive layer columns to option 0.

        Args:
            idx: (n, num_choices) option indices, edited in place.
            rng: unused.
        """
        if len(idx) == 0 or len(self._layer_cols) == 0:
            return
        block = idx[:, self._layer_cols]
        block[~self._active_mask(idx)] = 0
        idx[:, self._layer_cols] = block

    def enumerate_indices(self, limit: int) -> np.ndarray | None:
        """Every architecture once, as canonical rows (inactive layer columns at 0).

        Any row is a valid architecture here (inactive columns are ignored, so strategies
        drawing one option per column need no rejection); the enumeration keeps only the
        canonical row of each, so it has :meth:`size` rows.

        Args:
            limit: the largest :meth:`size` that is enumerated.

        Returns:
            (size(), num_choices) int64 matrix in product order, or None when
            ``size() > limit``.
        """
        rows = super().enumerate_indices(limit)
        if rows is None or len(rows) == 0:
            return rows
        return rows[(rows == self.repair_indices(rows)).all(axis=1)]

    # ---- checking ----------------------------------------------------------------------
    def validate(self, arch: Arch) -> None:
        self.check_arch_type(arch)
        for c, start in self._spans:
            if c.scalar:
                v = getattr(arch, c.field)
                if v not in self._flat_sets[start]:
                    raise InvalidArchitectureError(
                        f"{self.name}: {c.field} = {v!r} is not allowed; allowed: "
                        f"{fmt_allowed(c.options[0])}")
        for c, start in self._spans:
            if c.scalar:
                continue
            v = getattr(arch, c.field)
            n = getattr(arch, self._depth_of[c.field]) if c.field in self._depth_of else c.length
            if not isinstance(v, tuple) or len(v) != n:
                rule = (f"one value per layer ({self._depth_of[c.field]} = {n})"
                        if c.field in self._depth_of else f"{n} values")
                raise InvalidArchitectureError(
                    f"{self.name}: {c.field} must be a list of {rule}, but got "
                    f"{list(v) if isinstance(v, tuple) else v!r}")
            for i, x in enumerate(v):
                if x not in self._flat_sets[start + i]:
                    raise InvalidArchitectureError(
                        f"{self.name}: {c.field}[{i}] = {x!r} is not allowed; allowed: "
                        f"{fmt_allowed(c.options[i])}")
        self._check(arch)

    # ---- encoding ----------------------------------------------------------------------
    def encode(self, arch: Arch) -> np.ndarray:
        """The table encoding of every column, 0 for the columns of inactive layers."""
        return self.encode_indices(self.to_indices([arch]))[0]

    def encode_indices(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`encode` of every row of an index matrix: (n, len(encoding_names())) float64."""
        idx = self._checked(matrix)
        out = self._enc_lut[idx[:, self._enc_pos] + self._enc_off]
        if len(idx) and len(self._enc_layer_cols):
            depth = np.empty((len(idx), len(self._enc_layer_cols)), dtype=np.int64)
            for c, values in self._depth_values.items():
                depth[:, self._enc_depth_col == c] = values[idx[:, c]][:, None]
            block = out[:, self._enc_layer_cols]
            block[self._enc_slot[None, :] >= depth] = 0.0
            out[:, self._enc_layer_cols] = block
        return out

    # ---- counting ----------------------------------------------------------------------
    def size(self) -> int:
        """Distinct active configurations (see the module docstring)."""
        layer_cols = {j for j, x in enumerate(self._slot_of) if x is not None}
        depth_cols = {x[0] for x in self._slot_of if x is not None}
        total = math.prod(len(o) for j, o in enumerate(self._flat)
                          if j not in layer_cols and j not in depth_cols)
        for dc in sorted(depth_cols):
            per_slot: dict[int, int] = {}
            for j, x in enumerate(self._slot_of):
                if x is not None and x[0] == dc:
                    per_slot[x[1]] = per_slot.get(x[1], 1) * len(self._flat[j])
            total *= sum(math.prod(per_slot.get(i, 1) for i in range(d))
                         for d in self._flat[dc])
        return total
