"""Edge checks for what a user hands in: numbers, text files, YAML/JSON, tables, output paths.

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

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from nasforge.errors import InvalidInputError

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
    "parse_structured",
    "read_text",
]

#: deepest nesting of lists/mappings accepted in a YAML/JSON input file
MAX_DEPTH = 64


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


def read_text(path: str | Path, what: str = "file") -> str:
    """A UTF-8 text file's content.

    Args:
        path: the file.
        what: what the file is, for messages (``benchmark table``, ``device profile``).

    Raises:
        InvalidInputError: missing, a directory, unreadable, or not UTF-8.
    """
    p = Path(path)
    if p.is_dir():
        raise InvalidInputError(f"{what} {p} is a directory; give a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"cannot read {what} {p}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(
            f"{what} {p} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "save it as UTF-8") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                              deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            dup = key in seen
        except TypeError:  # an unhashable key: the base constructor reports it
            break
        if dup:
            raise _DuplicateKeyError(key, key_node.start_mark.line + 1)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_unique_mapping)


class _DuplicateKeyError(Exception):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(key, line)
        self.key, self.line = key, line


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k, 0)
        out[k] = v
    return out


def parse_structured(text: str, source: str, *, kind: str | None = None) -> Any:
    """Parse YAML or JSON text: no duplicate keys, nesting at most :data:`MAX_DEPTH`.

    Args:
        text: the file's content.
        source: the file's name, for messages.
        kind: ``json`` or ``yaml``; None: by ``source``'s suffix (YAML, a superset of JSON,
            unless it ends in ``.json``).

    Raises:
        InvalidInputError: malformed (names the line), a duplicate key, or nested too deeply.
    """
    kind = kind or ("json" if str(source).endswith(".json") else "yaml")
    label = "JSON" if kind == "json" else "YAML"
    check_text_depth(text, source)
    try:
        if kind == "json":
            data = json.loads(text, object_pairs_hook=_json_pairs)
        else:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except _DuplicateKeyError as e:
        where = f" (line {e.line})" if e.line else _json_line(text, e.key)
        raise InvalidInputError(
            f"{source}: duplicate key {e.key!r}{where}; keep one of them") from None
    except RecursionError:
        raise InvalidInputError(
            f"{source}: nested deeper than {MAX_DEPTH} levels; flatten the file") from None
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{source} line {e.lineno}: malformed {label}: {e.msg}"
                                ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InvalidInputError(f"{source}{line}: malformed {label}: {problem}") from None
    check_depth(data, source)
    return data


def _json_line(text: str, key: Any) -> str:
    needle = json.dumps(key)
    first = text.find(needle)
    second = text.find(needle, first + 1) if first >= 0 else -1
    return f" (line {text.count(chr(10), 0, second) + 1})" if second >= 0 else ""


def check_text_depth(text: str, source: str, limit: int = MAX_DEPTH) -> None:
    """Refuse text whose brackets (``[``, ``{``, ``(``) nest deeper than ``limit``, before a
    parser recurses into it.

    Raises:
        InvalidInputError: too deep.
    """
    depth = 0
    for c in text:
        if c in "[{(":
            depth += 1
            if depth > limit:
                raise InvalidInputError(
                    f"{source}: nested deeper than {limit} levels; flatten the file")
        elif c in "]})":
            depth = max(depth - 1, 0)


def check_depth(data: Any, source: str, limit: int = MAX_DEPTH) -> None:
    """Refuse lists/mappings nested deeper than ``limit``.

    Raises:
        InvalidInputError: too deep.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth > limit:
                raise InvalidInputError(
                    f"{source}: nested deeper than {limit} levels; flatten the file")
            children: Iterable[Any] = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)


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
