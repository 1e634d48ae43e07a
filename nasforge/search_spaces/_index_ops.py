"""The index codec's operators on rows of option indices: sample, mutate, crossover and repair,
on whole matrices (``*_indices``) and on one row (``_*_row``, behind a space's ``sample`` /
``mutate`` / ``crossover``), a mixin of :class:`~nasforge.search_spaces.codec.IndexCodec`
(which supplies the option tables, the repair hooks and the matrix check)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError

__all__ = ["IndexOperators"]


class IndexOperators:
    """Sampling, mutation, crossover and repair of index rows (see the module docstring)."""

    _sizes: np.ndarray
    _flat: list[tuple[Any, ...]]

    def _repair_indices(self, idx: np.ndarray, rng: np.random.Generator | None) -> None:
        raise NotImplementedError  # IndexCodec's

    def _checked(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # IndexCodec's

    # ---- operators -----------------------------------------------------------------------
    # Each operator's draws are made once, here: the index-matrix operators (``*_indices``)
    # apply them to a batch in numpy and repair by :meth:`_repair_indices`; the one-row
    # operators (``_*_row``, behind the space's ``sample`` / ``mutate`` / ``crossover``) apply
    # the same draws to one row of Python ints (numpy costs more than it saves on one row)
    # and repair by :meth:`_repair_row`. A batch of one and one row draw the same numbers.
    def _draw_options(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """A uniform option index for every cell of ``shape`` (last axis: the choices)."""
        return (rng.random(shape) * self._sizes).astype(np.int64)

    @staticmethod
    def _draw_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
        """True with probability ``p`` for every cell of ``shape``."""
        return rng.random(shape) < p

    def _sample_row(self, rng: np.random.Generator) -> list[int]:
        return self._draw_options(rng, (len(self._flat),)).tolist()

    def _mutate_row(self, row: list[int], rng: np.random.Generator, prob: float) -> list[int]:
        hit = np.flatnonzero(self._draw_mask(rng, (len(row),), prob))
        new = self._draw_options(rng, (len(row),))  # drawn for every choice
        out = list(row)
        for j in hit.tolist():
            out[j] = int(new[j])
        return out

    def _crossover_row(self, a: list[int], b: list[int], rng: np.random.Generator) -> list[int]:
        pick = self._draw_mask(rng, (len(a),), 0.5).tolist()
        return [x if p else y for x, y, p in zip(a, b, pick)]  # noqa: B905  (equal lengths)

    def sample_indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random valid architectures as an index matrix: shape (n, num_choices).

        Each choice is uniform over its options, then :meth:`repair_indices` applies the
        cross-field rules (the same distribution as ``sample``).
        """
        if n < 0:
            raise InvalidInputError(f"`n >= 0` must hold, but got {n=}")
        idx = self._draw_options(rng, (n, len(self._flat)))
        self._repair_indices(idx, rng)
        return idx

    def mutate_indices(self, matrix: np.ndarray, rng: np.random.Generator,
                       prob: float = 0.1) -> np.ndarray:
        """Resample each choice of each row with probability ``prob`` (vectorised ``mutate``).

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
        hit = self._draw_mask(rng, idx.shape, prob)
        out = np.where(hit, self._draw_options(rng, idx.shape), idx)  # drawn for every choice
        self._repair_indices(out, rng)
        return out

    def crossover_indices(self, a: np.ndarray, b: np.ndarray,
                          rng: np.random.Generator) -> np.ndarray:
        """Uniform crossover of row ``i`` of ``a`` with row ``i`` of ``b`` (vectorised
        ``crossover``).

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
        out = np.where(self._draw_mask(rng, ia.shape, 0.5), ia, ib)
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
