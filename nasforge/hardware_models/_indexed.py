"""Latency on index matrices: which cached sum each cell of a row stands for (segment codes).

:meth:`~nasforge.hardware_models._model.BlockSumLatencyModel.predict_indices` sums, per row of
a space's index matrix, a few cached values gathered by integer code, in numpy, with no
architecture built per row. The codes come from one of two places, chosen so that the sum is
bitwise the one :meth:`~nasforge.hardware_models._model.BlockSumLatencyModel.predict_many`
computes per architecture (the same terms added in the same order):

* a key scheme that cuts architectures into segments (``segments`` / ``segment_of_stage``, e.g.
  nn-Meter's per-stage cut of ``elasticvit``) names, in :attr:`KeyScheme.segment_columns`, the
  index columns each segment depends on; a segment's code is the mixed-radix number of those
  columns' option indices (one code range per segment);
* a scheme without segments sums every block in order; a space whose blocks each depend on a
  few choices offers :meth:`~nasforge.search_spaces.codec.IndexCodec.segment_codes` (one column
  per block position, ``-1`` where there is no block, e.g. ``ofa_mbv3``'s inactive slots).

Example:
    >>> import numpy as np
    >>> from nasforge.hardware_models import get_key_scheme
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elasticvit")
    >>> rows = space.to_indices([space.max_arch()])
    >>> codes = segment_codes(space, get_key_scheme("elasticvit"), rows)
    >>> codes.codes.shape, codes.by_stage["head"]
    ((1, 7), 6)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import NamedTuple

import numpy as np

if TYPE_CHECKING:
    from nasforge.hardware_models._keys import KeyScheme
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.search_spaces.block import Block

__all__ = ["SegmentCodes", "column_sums", "segment_codes", "sum_columns"]


class SegmentCodes(NamedTuple):
    """The codes of an index matrix's rows.

    Attributes:
        codes: (n, columns) int64, ``-1`` where a row has nothing.
        size: codes lie in ``[0, size)``.
        by_stage: block stage -> column (a segmented scheme), or None (the blocks are the
            present columns, one each, in order).
    """

    codes: np.ndarray
    size: int
    by_stage: dict[str, int] | None


def segment_codes(space: SearchSpace, scheme: KeyScheme,
                  matrix: np.ndarray) -> SegmentCodes | None:
    """The codes of ``matrix``'s rows under ``scheme`` (see the module docstring), or None when
    neither the scheme nor the space offers them."""
    if scheme.segment_of_stage:
        if not scheme.segment_columns or not hasattr(space, "index_names"):
            return None
        codes, size = _mixed_radix(space, scheme.segment_columns, matrix)
        return SegmentCodes(codes, size, dict(scheme.segment_of_stage))
    hook = getattr(space, "segment_codes", None)
    per_block = None if hook is None else hook(matrix)
    if per_block is None:
        return None
    return SegmentCodes(per_block, int(space.num_segment_codes()), None)  # type: ignore[attr-defined]


def _mixed_radix(space: SearchSpace, groups: Sequence[Sequence[str]],
                 matrix: np.ndarray) -> tuple[np.ndarray, int]:
    weights, offsets, size = _radix_plan(space, tuple(map(tuple, groups)))
    return np.asarray(matrix, dtype=np.int64) @ weights + offsets, size


_PLANS: dict[tuple[SearchSpace, tuple[tuple[str, ...], ...]],
             tuple[np.ndarray, np.ndarray, int]] = {}


def _radix_plan(space: SearchSpace, groups: tuple[tuple[str, ...], ...]
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """(num_choices, segments) int64 weights, (segments,) offsets and the code count: a
    segment's code is ``row @ weights[:, g] + offsets[g]`` (memoised per space and groups)."""
    key = (space, groups)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    names = {n: i for i, n in enumerate(space.index_names())}  # type: ignore[attr-defined]
    sizes = space.index_sizes()  # type: ignore[attr-defined]
    weights = np.zeros((len(sizes), len(groups)), dtype=np.int64)
    offsets = np.zeros(len(groups), dtype=np.int64)
    total = 0
    for g, cols in enumerate(groups):
        step = 1
        for c in reversed(cols):
            weights[names[c], g] += step
            step *= int(sizes[names[c]])
        offsets[g] = total
        total += step
    plan = _PLANS[key] = (weights, offsets, total)
    return plan


def column_sums(row: np.ndarray, blocks: Sequence[Block], values: Sequence[float],
                by_stage: dict[str, int] | None) -> dict[int, float] | None:
    """Per present column of one row, the sum of its blocks' values in block order (from 0.0,
    as the per-architecture path adds them); None when the blocks do not fit the codes."""
    present = [j for j in range(len(row)) if row[j] >= 0]
    if by_stage is None:
        if len(present) != len(blocks):
            return None
        cols = present
    else:
        cols = [by_stage.get(b.stage, -1) for b in blocks]
        if any(c not in present for c in cols):
            return None
    sums = dict.fromkeys(present, 0.0)
    for c, v in zip(cols, values, strict=True):
        sums[c] += v
    return sums


def sum_columns(vals: np.ndarray) -> np.ndarray:
    """Row sums of ``vals`` (n, columns) added left to right, as Python's ``sum`` does."""
    out = np.zeros(len(vals))
    for j in range(vals.shape[1]):
        out += vals[:, j]
    return out
