"""Latency lookup tables: block key -> mean / std / count in milliseconds, and their file formats.

Formats read by :func:`read_table`:

* ``nnmeter-hybrid``: nn-Meter's hybrid-transformer JSON, one flat object ``{key: ms}``;
* ``ofa-yaml``: Once-for-All's latency tables, ``{key: {count, mean, std}}`` with keys such as
  ``expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:0``;
* ``csv``: nasforge's own, header ``key,mean_ms,std_ms,count`` (``std_ms`` and ``count`` may be
  empty). :meth:`LatencyTable.write_csv` writes it.

A malformed file raises :class:`~nasforge.errors.InvalidInputError` naming the file and the key
(JSON/YAML) or line (CSV). Latencies must be finite and positive: a missing number never becomes 0.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.structured import MAX_TABLE_BYTES
from nasforge.structured import MAX_TABLE_NODES
from nasforge.structured import parse_structured
from nasforge.structured import read_text

__all__ = ["TABLE_FORMATS", "LatencyEntry", "LatencyTable", "read_table"]

TABLE_FORMATS: tuple[str, ...] = ("nnmeter-hybrid", "ofa-yaml", "csv")
CSV_HEADER = ("key", "mean_ms", "std_ms", "count")


@dataclass(frozen=True, slots=True)
class LatencyEntry:
    """One measured block.

    Attributes:
        mean: mean latency in ms (finite, > 0).
        std: standard deviation in ms, NaN when the source does not give one.
        count: number of runs behind ``mean``, 0 when unknown.
    """

    mean: float
    std: float = math.nan
    count: int = 0


class LatencyTable(Mapping[str, LatencyEntry]):
    """A read-only mapping ``key -> LatencyEntry``.

    Args:
        entries: the entries.
        source: where they came from (a file path, "profiled on cpu-local"), for messages.
    """

    def __init__(self, entries: Mapping[str, LatencyEntry], source: str = "") -> None:
        self._entries = dict(entries)
        self.source = source
        self._means: dict[str, float] | None = None

    def __getitem__(self, key: str) -> LatencyEntry:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def means(self) -> dict[str, float]:
        """``key -> mean ms`` as a plain dict (built once; the fast path of lookups)."""
        if self._means is None:
            self._means = {k: e.mean for k, e in self._entries.items()}
        return self._means

    def merged(self, other: LatencyTable) -> LatencyTable:
        """A new table with ``other``'s entries added (``other`` wins on equal keys)."""
        return LatencyTable({**self._entries, **other._entries}, self.source or other.source)

    def write_csv(self, path: Path) -> None:
        """Write the table in nasforge's CSV format (sorted keys, full float precision)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for k in sorted(self._entries):
                e = self._entries[k]
                w.writerow([k, repr(e.mean), "" if math.isnan(e.std) else repr(e.std), e.count])

    def __repr__(self) -> str:
        return f"LatencyTable({len(self)} entries, source={self.source!r})"


def _number(value: Any, path: Path, where: str, what: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(
            f"{path}: {where}: {what} must be a number of milliseconds, got {value!r}; fix or "
            "remove the entry"
        )
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0) or (not positive and v < 0):
        raise InvalidInputError(
            f"{path}: {where}: {what} must be finite and {'> 0' if positive else '>= 0'}, got "
            f"{value!r}; fix or remove the entry"
        )
    return v


def _read_nnmeter(path: Path, text: str) -> dict[str, LatencyEntry]:
    data = parse_structured(text, str(path), kind="json", max_nodes=MAX_TABLE_NODES)
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(
            f"{path}: an nn-Meter hybrid table is a non-empty JSON object {{key: ms}}, got "
            f"{type(data).__name__ if data else 'an empty one'}"
        )
    return {str(k): LatencyEntry(_number(v, path, f"key {k!r}", "the value")) for k, v in
            data.items()}


def _read_ofa(path: Path, text: str) -> dict[str, LatencyEntry]:
    data = parse_structured(text, str(path), kind="yaml", max_nodes=MAX_TABLE_NODES)
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(
            f"{path}: an OFA latency table is a non-empty mapping {{key: {{count, mean, std}}}}"
        )
    out: dict[str, LatencyEntry] = {}
    for k, v in data.items():
        if not isinstance(v, dict) or "mean" not in v:
            raise InvalidInputError(
                f"{path}: key {k!r}: an OFA entry is a mapping with 'mean' (and 'std', "
                f"'count'), got {v!r}"
            )
        mean = _number(v["mean"], path, f"key {k!r}", "mean")
        std = _number(v["std"], path, f"key {k!r}", "std", positive=False) if v.get(
            "std") is not None else math.nan
        count = v.get("count", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInputError(
                f"{path}: key {k!r}: count must be a non-negative integer, got {count!r}")
        out[str(k)] = LatencyEntry(mean, std, count)
    return out


def _read_csv(path: Path, text: str) -> dict[str, LatencyEntry]:
    rows = list(csv.reader(text.splitlines()))
    if not rows or tuple(c.strip() for c in rows[0][:2]) != CSV_HEADER[:2]:
        raise InvalidInputError(
            f"{path} line 1: a nasforge latency CSV starts with the header "
            f"{','.join(CSV_HEADER)} (std_ms and count optional), got "
            f"{rows[0] if rows else '(empty file)'}"
        )
    header = [c.strip() for c in rows[0]]
    out: dict[str, LatencyEntry] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        rec = dict(zip(header, (c.strip() for c in row), strict=False))
        key = rec.get("key", "")
        if not key:
            raise InvalidInputError(f"{path} line {lineno}: empty key; every row needs a key")
        if key in out:
            raise InvalidInputError(f"{path} line {lineno}: key {key!r} appears twice; keep one")
        try:
            mean = float(rec.get("mean_ms", ""))
            std = float(rec["std_ms"]) if rec.get("std_ms") else math.nan
            count = int(rec["count"]) if rec.get("count") else 0
        except ValueError:
            raise InvalidInputError(
                f"{path} line {lineno}: key {key!r}: mean_ms/std_ms must be numbers and count an "
                f"integer, got {row[1:]}"
            ) from None
        mean = _number(mean, path, f"line {lineno} key {key!r}", "mean_ms")
        out[key] = LatencyEntry(mean, std, count)
    if not out:
        raise InvalidInputError(f"{path}: the table has no rows after the header")
    return out


_READERS = {"nnmeter-hybrid": _read_nnmeter, "ofa-yaml": _read_ofa, "csv": _read_csv}


def read_table(path: Path, fmt: str) -> LatencyTable:
    """Read a latency table file.

    Args:
        path: the file.
        fmt: one of :data:`TABLE_FORMATS`.

    Returns:
        The table, with ``source`` set to the path.

    Raises:
        InvalidInputError: unknown format, unreadable file, or a malformed entry (the message
            names the file and the key or line).
    """
    path = Path(path)
    if fmt not in _READERS:
        raise InvalidInputError(
            f"unknown latency-table format {fmt!r}; use one of {', '.join(TABLE_FORMATS)}")
    text = read_text(path, "latency table", max_bytes=MAX_TABLE_BYTES)
    return LatencyTable(_READERS[fmt](path, text), source=str(path))
