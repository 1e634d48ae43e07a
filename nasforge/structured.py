"""The one bounded reader of structured input: YAML and JSON files a user hands in.

Every recipe, experiment, sweep, arch file, manifest, profile and table goes through
:func:`read_text` (regular files only, a size cap) and :func:`parse_structured` (no duplicate
key, depth and node count bounded), or both at once through :func:`load_structured`. The
bounds are counted over YAML's alias graph, never over the expanded tree, so a "billion laughs"
file is refused in microseconds; YAML 1.1 merge keys (``<<: *base``) are accepted.

Example:
    >>> bomb = "a: &a [x, x]\\n" + "".join(
    ...     f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\\n" for p, n in zip("abcdefghi", "bcdefghij"))
    >>> def user_sees(call, *args):
    ...     try:
    ...         return call(*args)
    ...     except InvalidInputError as e:
    ...         print(f"error: {e}")
    >>> user_sees(parse_structured, bomb, "bomb.yaml")  # doctest: +ELLIPSIS
    error: bomb.yaml: 3456790133 nodes with its aliases expanded, over the limit of 4000000; ...
    >>> parse_structured("base: &b {lr: 0.1, wd: 0}\\nrun: {<<: *b, lr: 0.2}\\n", "r.yaml")
    {'base': {'lr': 0.1, 'wd': 0}, 'run': {'lr': 0.2, 'wd': 0}}
    >>> user_sees(read_text, "/dev/zero", "arch file")  # doctest: +ELLIPSIS
    error: arch file /dev/zero is a character device, not a regular file; give a file
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nasforge.errors import InvalidInputError

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_TABLE_BYTES",
    "MAX_TABLE_NODES",
    "check_depth",
    "check_text_depth",
    "load_structured",
    "parse_structured",
    "read_text",
]

#: deepest nesting of lists/mappings accepted in a YAML/JSON input file
MAX_DEPTH = 64
#: most nodes a configuration file may hold, its YAML aliases expanded
MAX_NODES = 4_000_000
#: largest configuration file read (recipe, experiment, sweep, arch file, manifest)
MAX_CONFIG_BYTES = 16 * 2 ** 20
#: largest table read (benchmark CSV, latency table, predictor state)
MAX_TABLE_BYTES = 2 ** 30
#: most nodes a table may hold, its YAML aliases expanded
MAX_TABLE_NODES = 2 ** 26

_MERGE_TAG = "tag:yaml.org,2002:merge"
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _mib(n: int) -> str:
    if n < 2 ** 20:
        return f"{n} bytes"
    return f"{n / 2 ** 20:.1f} MiB" if n % 2 ** 20 else f"{n // 2 ** 20} MiB"


def _check_regular(mode: int, p: Path, what: str) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    if kind == "a directory":
        raise InvalidInputError(f"{what} {p} is a directory; give a file")
    raise InvalidInputError(f"{what} {p} is {kind}, not a regular file; give a file")


def _too_big(p: Path, what: str, size: int | None, max_bytes: int) -> InvalidInputError:
    got = f"is {_mib(size)}" if size is not None else "holds more"
    return InvalidInputError(f"{what} {p} {got}, over the {_mib(max_bytes)} limit for a {what}; "
                             "give a smaller file")


def read_bytes(path: str | Path, what: str = "file", *,
               max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """A regular file's bytes, at most ``max_bytes``; never blocks on a FIFO or a device.

    Args:
        path: the file.
        what: what the file is, for messages (``recipe``, ``arch file``).
        max_bytes: the size cap.

    Raises:
        InvalidInputError: missing, unreadable, not a regular file, or over the cap.
    """
    p = Path(path)
    try:
        _check_regular(os.stat(p).st_mode, p, what)
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO cannot block
    except OSError as e:
        raise InvalidInputError(f"cannot read {what} {p}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        _check_regular(info.st_mode, p, what)
        if info.st_size > max_bytes:
            raise _too_big(p, what, info.st_size, max_bytes)
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise InvalidInputError(f"cannot read {what} {p}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise _too_big(p, what, None, max_bytes)
    return data


def read_text(path: str | Path, what: str = "file", *,
              max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """A UTF-8 regular file's content, at most ``max_bytes`` long.

    Args:
        path: the file.
        what: what the file is, for messages (``benchmark table``, ``device profile``).
        max_bytes: the size cap (:data:`MAX_CONFIG_BYTES`; tables pass :data:`MAX_TABLE_BYTES`).

    Raises:
        InvalidInputError: missing, a directory, a FIFO or device, unreadable, over the cap, or
            not UTF-8.
    """
    data = read_bytes(path, what, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(
            f"{what} {path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "save it as UTF-8") from None


class _DuplicateKeyError(Exception):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(key, line)
        self.key, self.line = key, line


class _Measure:
    """Expanded node count and depth of a graph, each shared node walked once.

    ``children(node)`` gives a collection's children (None for a scalar); ``visit(node)`` runs
    once per distinct collection (the duplicate-key check).
    """

    def __init__(self, source: str, children: Callable[[Any], list[Any] | None],
                 visit: Callable[[Any], None], limit: int) -> None:
        self.source, self.children, self.visit, self.limit = source, children, visit, limit
        self.done: dict[int, tuple[int, int]] = {}  # id -> (expanded nodes, height)
        self.open: set[int] = set()

    def _deep(self) -> InvalidInputError:
        return InvalidInputError(
            f"{self.source}: nested deeper than {self.limit} levels; flatten the file")

    def size(self, node: Any, depth: int = 0) -> tuple[int, int]:
        """(expanded nodes, height) of ``node`` reached at ``depth`` collections down."""
        kids = self.children(node)
        if kids is None:
            return 1, 0
        key = id(node)
        if key in self.open:
            mark = getattr(node, "start_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise InvalidInputError(f"{self.source}{line}: an alias refers to a node that "
                                    "contains it (a cycle); write the value out")
        if key not in self.done:
            if depth + 1 > self.limit:
                raise self._deep()
            self.open.add(key)
            self.visit(node)
            got = [self.size(k, depth + 1) for k in kids]
            self.open.discard(key)
            self.done[key] = (1 + sum(n for n, _ in got), 1 + max((h for _, h in got), default=0))
        nodes, height = self.done[key]
        if depth + height > self.limit:
            raise self._deep()
        return nodes, height


def _node_children(node: yaml.Node) -> list[Any] | None:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return None


def _unique_keys(loader: yaml.SafeLoader, node: Any) -> None:
    """Refuse a mapping that writes a key twice (merged-in keys may be overridden)."""
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue  # a complex key: the constructor judges it
        key = loader.construct_object(key_node)
        if key in seen:
            raise _DuplicateKeyError(key, key_node.start_mark.line + 1)
        seen.add(key)


def _data_children(item: Any) -> list[Any] | None:
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    return list(item) if isinstance(item, list | tuple) else None


def _check_nodes(source: str, nodes: int, limit: int) -> None:
    if nodes > limit:
        raise InvalidInputError(
            f"{source}: {nodes} nodes with its aliases expanded, over the limit of {limit}; "
            "split the file, or write repeated parts out instead of nesting aliases")


def check_depth(data: Any, source: str, limit: int = MAX_DEPTH) -> None:
    """Refuse loaded lists/mappings nested deeper than ``limit`` (shared parts walked once).

    Raises:
        InvalidInputError: too deep, or a container that contains itself.
    """
    _Measure(source, _data_children, lambda _: None, limit).size(data)


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


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k, 0)
        out[k] = v
    return out


def _json_line(text: str, key: Any) -> str:
    needle = json.dumps(key)
    first = text.find(needle)
    second = text.find(needle, first + 1) if first >= 0 else -1
    return f" (line {text.count(chr(10), 0, second) + 1})" if second >= 0 else ""


def _load_yaml(text: str, source: str, max_nodes: int) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        nodes, _ = _Measure(source, _node_children, lambda n: _unique_keys(loader, n),
                            MAX_DEPTH).size(node)
        _check_nodes(source, nodes, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _load_json(text: str, source: str, max_nodes: int) -> Any:
    data = json.loads(text, object_pairs_hook=_json_pairs)
    nodes, _ = _Measure(source, _data_children, lambda _: None, MAX_DEPTH).size(data)
    _check_nodes(source, nodes, max_nodes)
    return data


def parse_structured(text: str, source: str, *, kind: str | None = None,
                     max_nodes: int = MAX_NODES) -> Any:
    """Parse YAML or JSON text: no duplicate key, depth and node count bounded.

    Args:
        text: the file's content.
        source: the file's name, for messages.
        kind: ``json`` or ``yaml``; None: by ``source``'s suffix (YAML, a superset of JSON,
            unless it ends in ``.json``).
        max_nodes: most nodes the document may hold, YAML aliases expanded (counted over
            the alias graph, each shared node once, so a "billion laughs" costs microseconds).

    Raises:
        InvalidInputError: malformed (names the line), a duplicate key, nested deeper than
            :data:`MAX_DEPTH`, an alias cycle, or more nodes than allowed.
    """
    kind = kind or ("json" if str(source).endswith(".json") else "yaml")
    label = "JSON" if kind == "json" else "YAML"
    check_text_depth(text, source)
    try:
        if kind == "json":
            return _load_json(text, source, max_nodes)
        return _load_yaml(text, source, max_nodes)
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


def load_structured(path: str | Path, what: str = "file", *, kind: str | None = None,
                    max_bytes: int = MAX_CONFIG_BYTES, max_nodes: int = MAX_NODES) -> Any:
    """Read and parse a YAML/JSON file through every bound (:func:`read_text`, then
    :func:`parse_structured`).

    Example:
        >>> try:
        ...     load_structured("/nope/exp.yaml", "experiment")
        ... except InvalidInputError as e:
        ...     print(f"error: {e}")
        error: cannot read experiment /nope/exp.yaml: No such file or directory
    """
    return parse_structured(read_text(path, what, max_bytes=max_bytes), str(path), kind=kind,
                            max_nodes=max_nodes)
