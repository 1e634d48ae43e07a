"""Edge checks for what a user hands in: numbers, text files, YAML/JSON, tables, output paths.

Files and YAML/JSON are read by :mod:`nasforge.structured` (re-exported here): regular files
only, a size cap, depth and node count bounded over the alias graph.

Every check raises :class:`~nasforge.errors.InvalidInputError` with one line that names the
field (or file), the value and what is allowed, so the CLI prints it as ``error: ...`` with
exit code 2. They run at the edge (the CLI, config loaders, file readers), before any work.

Example:
    >>> check_number(25.0, "--latency", low=0, low_open=True)
    25.0
    >>> check_number(float("nan"), "--latency", low=0, low_open=True)
    Traceback (most recent call last):
    ...
    nasforge.errors.InvalidInputError: --latency must be a finite number > 0, got nan
    >>> parse_structured('{"a": 1, "a": 2}', "x.json")
    Traceback (most recent call last):
    ...
    nasforge.errors.InvalidInputError: x.json: duplicate key 'a' (line 1); keep one of them
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.structured import MAX_DEPTH
from nasforge.structured import check_depth
from nasforge.structured import check_text_depth
from nasforge.structured import load_structured
from nasforge.structured import parse_structured
from nasforge.structured import read_text

__all__ = [
    "MAX_DEPTH",
    "check_depth",
    "check_inside",
    "check_int",
    "check_number",
    "check_output_dir",
    "check_output_file",
    "check_text_depth",
    "check_unique",
    "load_structured",
    "parse_structured",
    "read_text",
]

def _num(x: float) -> str:
    """A bound as people write it: integers in full (4294967295, not 4.29497e+09)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


def _rule(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {_num(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {_num(high)}")
    return " and ".join(parts)


def check_number(value: Any, name: str, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> float:
    """A finite number within ``[low, high]`` (open ends with ``low_open``/``high_open``).

    Args:
        value: what the user gave.
        name: the flag or field (``--latency``, ``constraints.latency_ms``).
        low: smallest allowed value (None: unbounded).
        high: largest allowed value (None: unbounded).
        low_open: exclude ``low`` itself.
        high_open: exclude ``high`` itself.

    Returns:
        The value as a float.

    Raises:
        InvalidInputError: not a number, NaN or infinite, or out of range.
    """
    rule = _rule(low, high, low_open, high_open)
    text = f"{name} must be a finite number{' ' + rule if rule else ''}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(text)
    v = float(value) if not isinstance(value, int) or abs(value) < 2 ** 1000 else math.inf
    if not math.isfinite(v):
        raise InvalidInputError(text.replace(f"{value!r}", str(v)))
    if (low is not None and (v < low or (low_open and v == low))) or (
            high is not None and (v > high or (high_open and v == high))):
        raise InvalidInputError(text)
    return v


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """An integer within ``[low, high]``.

    Raises:
        InvalidInputError: not an integer, or out of range.
    """
    rule = _rule(low, high, False, False)
    if isinstance(value, bool) or not isinstance(value, int) or (
            low is not None and value < low) or (high is not None and value > high):
        raise InvalidInputError(
            f"{name} must be an integer{' ' + rule if rule else ''}, got {value!r}")
    return value


def _probe_writable(folder: Path, flag: str, target: Path) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".nasforge-probe-", dir=folder)
    except OSError as e:
        raise InvalidInputError(
            f"{flag} {target}: cannot write into {folder} ({e.strerror or e}); choose a "
            "writable location") from None
    os.close(fd)
    os.unlink(name)


def _existing_ancestor(path: Path, flag: str, target: Path) -> Path:
    """The nearest existing folder at or above ``path``; a file on the way is an error."""
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise InvalidInputError(
            f"{flag} {target}: {p} is a file, not a folder; choose a path under a folder")
    return p


def check_output_dir(path: str | Path, flag: str) -> Path:
    """An output folder that exists as a writable folder or can be created.

    Nothing is created; a probe file is written and removed in the nearest existing folder.

    Args:
        path: the folder.
        flag: the option or field naming it (``--out``), for messages.

    Raises:
        InvalidInputError: an existing file, a file on the way, or a read-only location.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InvalidInputError(f"{flag} {p} is an existing file; give a folder (or remove "
                                "the file)")
    _probe_writable(_existing_ancestor(p, flag, p), flag, p)
    return p


def check_output_file(path: str | Path, flag: str, *, suffixes: tuple[str, ...] = ()) -> Path:
    """An output file whose folder exists and is writable, or can be created.

    Args:
        path: the file.
        flag: the option naming it (``--out``), for messages.
        suffixes: the allowed suffixes (``(".png",)``); empty: any.

    Raises:
        InvalidInputError: a directory, a file on the way, a read-only location, or another
            suffix.
    """
    p = Path(path)
    if p.is_dir():
        raise InvalidInputError(f"{flag} {p} is a directory; give a file name")
    if suffixes and p.suffix.lower() not in suffixes:
        raise InvalidInputError(
            f"{flag} {p} must end in {' or '.join(suffixes)}, got {p.suffix or 'no suffix'!r}")
    _probe_writable(_existing_ancestor(p.parent, flag, p), flag, p)
    if p.exists() and not os.access(p, os.W_OK):
        raise InvalidInputError(f"{flag} {p} exists and is read-only; choose another file")
    return p


def check_inside(folder: str | Path, name: Any, what: str) -> Path:
    """``folder / name`` for a file name stored in a manifest, refused if it leaves ``folder``.

    Args:
        folder: the folder the manifest lives in.
        name: the stored relative path.
        what: the field, for messages (``profile.json: table``).

    Raises:
        InvalidInputError: not a non-empty string, absolute, or escaping ``folder`` (``..``,
            a symlink out).

    Example:
        >>> check_inside("/data/dev", "table.csv", "table").as_posix()
        '/data/dev/table.csv'
    """
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"{what} must be a file name inside {folder}, got {name!r}")
    base = Path(folder)
    rel = Path(name)
    target = (base / rel).resolve()
    if rel.is_absolute() or not target.is_relative_to(base.resolve()):
        raise InvalidInputError(
            f"{what} {name!r} points outside its folder {base}; stored paths must stay inside "
            "the folder (a plain file name)")
    return base / rel


def check_unique(keys: Iterable[Any], what: str) -> None:
    """Refuse a key seen twice (a benchmark row, a latency-table key).

    Raises:
        InvalidInputError: the first duplicate, with how many times it occurs.
    """
    seen: dict[Any, int] = {}
    for k in keys:
        seen[k] = seen.get(k, 0) + 1
    dups = [k for k, n in seen.items() if n > 1]
    if dups:
        raise InvalidInputError(
            f"{what}: key {dups[0]!r} appears {seen[dups[0]]} times"
            f"{f' ({len(dups)} duplicated keys in all)' if len(dups) > 1 else ''}; keep one row "
            "per key")
