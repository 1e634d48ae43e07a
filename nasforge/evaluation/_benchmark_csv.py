"""A benchmark CSV read once for a run, every column it uses checked on every row.

A negative, NaN, infinite or non-numeric value, or an architecture listed twice, would
otherwise become a wrong result with exit code 0 (issue 16). The accuracy column and a latency
column (``--device pixel3_ms``) share the rows read here.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.evaluation._tabular import TabularBenchmark
from nasforge.resources import check_regular_file
from nasforge.structured import MAX_TABLE_BYTES
from nasforge.validation import check_unique
from nasforge.validation import read_text

if TYPE_CHECKING:
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["read_benchmark"]


def read_benchmark(path: str, metric: str, space: SearchSpace, *,
                   latency_column: str | None = None) -> TabularBenchmark:
    """The benchmark CSV at ``path`` as its ``metric`` column, every used column checked.

    Args:
        path: the CSV (one row per architecture, keyed by ``arch_str`` or ``arch_id``).
        metric: the accuracy column, in % (0..100).
        space: the search space of the rows.
        latency_column: a latency column the run also reads (ms, > 0), or None.

    Raises:
        InvalidInputError: an unreadable or empty file, a key listed twice, or the first bad
            row of a used column (its row, value and the count of bad rows).
    """
    import pandas as pd

    check_regular_file(Path(path), "benchmark table")  # /dev/zero, a FIFO: refused unread
    text = read_text(path, "benchmark table", max_bytes=MAX_TABLE_BYTES)
    try:
        table = pd.read_csv(io.StringIO(text))
    except ValueError as exc:  # empty file, ragged rows: pandas' parser errors
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(f"benchmark table {path} is not a readable CSV: {first}"
                                ) from None
    if len(table) == 0:
        raise InvalidInputError(f"benchmark table {path} has no rows; give one row per "
                                "architecture")
    for key in ("arch_str", "arch_id"):
        if key in table.columns:
            check_unique(table[key].astype(str), f"benchmark table {path}, column {key}")
            break
    _check_column(table, metric, path, low=0.0, high=100.0, what="an accuracy in % (0..100)")
    if latency_column is not None:
        _check_column(table, latency_column, path, low=0.0, low_open=True,
                      what="a latency in ms (> 0)")
    return TabularBenchmark(table, metric, space, source=str(path))


def _check_column(table: Any, column: str, source: str, *, low: float | None = None,
                  high: float | None = None, low_open: bool = False, what: str = "a number"
                  ) -> None:
    """Every value of ``table[column]`` is a finite number in range (a missing column is left
    to :class:`TabularBenchmark`, which names the closest one).

    Raises:
        InvalidInputError: the first bad row (1-based data row, as a spreadsheet counts after
            the header), its value, and how many rows are bad.
    """
    import pandas as pd

    if column not in table.columns:
        return
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if low is not None:
        bad |= values <= low if low_open else values < low
    if high is not None:
        bad |= values > high
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"benchmark table {source}, column {column}, row {i + 1}: {raw.iloc[i]!r} is not "
            f"{what} ({int(bad.sum())} bad row(s)); fix or drop those rows")
