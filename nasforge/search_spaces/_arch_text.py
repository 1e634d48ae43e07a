"""The canonical JSON of a space's architectures, written by one format string.

``Arch.to_json`` builds a dict of lists and runs the JSON encoder with sorted keys: about
5 µs for an ``ofa_mbv3`` arch, which is a third of what persisting a candidate costs in a
predictor-speed search (every evaluated arch is stored as its JSON). The JSON of an arch of a
:class:`~nasforge.search_spaces.codec.IndexCodec` space has one fixed shape: its fields in
sorted order, a scalar or a fixed-length list per choice field, and ``space``. So it is a
``%`` template with one conversion per column of the index matrix, filled from the arch's
flat values: about 3 µs, and the same text. An arch built by the codec's ``from_indices``
keeps its row key (``IndexCodec.row_attr``); its text is then joined from per-option pieces
picked by the row (about 2 µs: no value read, no type to check, the row being what built
the values).

The template is only used where it writes exactly what ``to_json`` writes: the arch class
does not override ``to_dict`` / ``to_json`` and has no field besides ``space`` and the choice
fields, and the space builds an arch from its row with the codec's own ``_build`` (a space
whose archs drop inactive slots, such as HAT's layers past ``layer_num``, does not); each
column's options are all ``int`` (``%d``), all finite ``float`` (``%r``, the
JSON encoder's own ``float.__repr__``) or all plain strings (``"%s"``: ASCII with no
character JSON escapes); and, per arch, every value has its column's exact type. Anything
else (a ``bool`` where ints are expected, a value of another type, an arch of another class
or space) is left to ``to_json`` (the encoder returns None).

The per-option pieces are also a self-contained *row format* (:attr:`ArchText.row_format`,
plain JSON): :class:`RowText` writes the JSON of a row key from it with no space at hand.
This is how a single writer stores a candidate: its row key (a few dozen bytes) with the
format stored once per study, not its JSON, whose writing and hashing cost more than the
insert (``benchmarks/writer_cost.py``).

Example:
    >>> from nasforge.search_spaces import get_space
    >>> import numpy as np
    >>> space = get_space("nasbench201")
    >>> arch = space.sample(np.random.default_rng(0))
    >>> ArchText(space)(arch) == arch.to_json()
    True
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.codec import IndexCodec

__all__ = ["ArchText", "RowText"]

#: a string JSON writes as itself between quotes, and ``%`` leaves alone
_PLAIN = re.compile(r"[ -~]*").fullmatch


def _kind(options: tuple[Any, ...]) -> tuple[type, str] | None:
    """``(type, conversion)`` of a column whose options the template writes, else None."""
    kinds = {type(v) for v in options}
    if kinds == {int}:
        return int, "%d"
    if kinds == {float} and all(math.isfinite(v) for v in options):
        return float, "%r"
    if kinds == {str} and all(_PLAIN(v) and '"' not in v and "\\" not in v for v in options):
        return str, '"%s"'
    return None


class ArchText:
    """Canonical JSON of the architectures of one index-codec space (see the module
    docstring); call it on an arch: its ``to_json()`` text, or None where the template does
    not apply (then use ``to_json``).

    Args:
        codec: the space.
    """

    def __init__(self, codec: IndexCodec) -> None:
        from nasforge.search_spaces.arch import Arch
        from nasforge.search_spaces.codec import IndexCodec

        self._cls = codec.arch_cls
        self._space = codec.name
        self._flatten: Callable[[Arch], list[Any]] = codec._flatten
        self._template: str | None = None
        self._row_attr: str | None = None
        self._row_format: dict[str, Any] | None = None
        names = [f.name for f in dataclasses.fields(self._cls)]
        spans = {f: (start, end, scalar) for f, start, end, scalar in codec._fields}
        kinds = [_kind(o) for o in codec.index_options()]
        space = type(codec)
        if (self._cls.to_dict is not Arch.to_dict or self._cls.to_json is not Arch.to_json
                or space._build is not IndexCodec._build
                or space._flatten is not IndexCodec._flatten
                or set(names) != {"space", *spans} or any(k is None for k in kinds)
                or not _PLAIN(self._space) or '"' in self._space or "\\" in self._space):
            return
        conv = [k[1] for k in kinds if k is not None]
        self._types = tuple(k[0] for k in kinds if k is not None)
        before, order, tail = _layout(sorted(names), self._space, spans)
        self._template = "".join(b.replace("%", "%%") + conv[c] for b, c in zip(
            before, order, strict=True)) + tail.replace("%", "%%")
        self._pick: Callable[[Any], tuple[Any, ...]] = (
            operator.itemgetter(*order) if len(order) > 1 else lambda flat: tuple(flat))
        # the text of an arch that keeps its row key (codec.row_attr): per column, in the
        # template's order, its text before the value and the value, for every option
        self._row_attr = codec.row_attr
        if self._row_attr is not None:
            options = codec.index_options()
            self._row_format = {
                "pieces": [[b + conv[c] % (v,) for v in options[c]]
                           for b, c in zip(before, order, strict=True)],
                "columns": order, "tail": tail, "width": np.dtype(codec._key_dtype).itemsize,
                "num_columns": len(options)}
            self._rows = RowText(self._row_format)

    @property
    def applies(self) -> bool:
        """Whether the space's archs are written by the template at all."""
        return self._template is not None

    @property
    def row_format(self) -> dict[str, Any] | None:
        """The space's row format (plain JSON, for :class:`RowText`): the text of each option
        per template position (``pieces``), the column each position reads (``columns``),
        the text after the last (``tail``), the bytes per index of a row key (``width``) and
        the number of columns; None where archs keep no row key or the template does not
        apply."""
        return self._row_format

    def row_key(self, arch: Arch) -> bytes | None:
        """The row key ``arch`` keeps (its JSON is that of the key in :attr:`row_format`),
        or None (an arch built otherwise, of another class or space)."""
        attr = self._row_attr if self._row_format is not None else None
        if attr is None or type(arch) is not self._cls or arch.space != self._space:
            return None
        return arch.__dict__.get(attr)

    def __call__(self, arch: Arch) -> str | None:
        """``arch.to_json()``, or None where the template does not apply to ``arch``."""
        if self._template is None or type(arch) is not self._cls or arch.space != self._space:
            return None
        attr = self._row_attr
        key = arch.__dict__.get(attr) if attr is not None else None
        if key is not None:  # its row's pieces: no values read, no type to check
            return self._rows.text(key)
        flat = self._flatten(arch)
        if tuple(map(type, flat)) != self._types:
            return None
        return self._template % self._pick(flat)


def _layout(names: list[str], space: str, spans: dict[str, tuple[int, int, bool]]
            ) -> tuple[list[str], list[int], str]:
    """The canonical JSON's fixed text: the text before each column's value, the columns in
    the order they are written (fields sorted by name), and the text after the last."""
    before: list[str] = []
    order: list[int] = []
    text = "{"
    for n, name in enumerate(names):
        text += "," if n else ""
        if name == "space":
            text += '"space":"' + space + '"'
            continue
        start, end, scalar = spans[name]
        text += f'"{name}":' + ("" if scalar else "[")
        for k, c in enumerate(range(start, end)):
            before.append(text + ("," if k else ""))
            order.append(c)
            text = ""
        text += "" if scalar else "]"
    return before, order, text + "}"


class RowText:
    """The canonical JSON of row keys, from a space's row format
    (:attr:`ArchText.row_format`) alone: no space, no arch.

    Args:
        row_format: the format (as stored: lists, not tuples).

    Raises:
        ValueError: ``row_format`` is not a row format.

    Example:
        >>> import numpy as np
        >>> from nasforge.search_spaces import get_space
        >>> space = get_space("ofa_mbv3_w12")
        >>> arch = space.from_indices(space.sample_indices(np.random.default_rng(0), 1))[0]
        >>> rows = RowText(ArchText(space).row_format)
        >>> rows.checked_text(ArchText(space).row_key(arch)) == arch.to_json()
        True
    """

    def __init__(self, row_format: dict[str, Any]) -> None:
        try:
            self._pieces: list[list[str]] = [list(map(str, p)) for p in row_format["pieces"]]
            columns = [int(c) for c in row_format["columns"]]
            self._tail = str(row_format["tail"])
            self._width = int(row_format["width"])
            self._num = int(row_format["num_columns"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a row format ({type(exc).__name__}: {exc})") from None
        if (len(columns) != len(self._pieces) or self._width not in (1, 8)
                or any(not 0 <= c < self._num for c in columns)):
            raise ValueError(f"not a row format ({len(columns)} columns for "
                             f"{len(self._pieces)} positions, width {self._width})")
        self._pick: Callable[[Any], Any] = (
            operator.itemgetter(*columns) if len(columns) > 1
            else lambda ints: tuple(ints[c] for c in columns))

    def text(self, key: bytes) -> str:
        """The JSON of a row key written with this format (unchecked: a key of another
        format gives another text or an ``IndexError``)."""
        ints = memoryview(key).cast("q") if self._width == 8 else key
        return "".join(map(list.__getitem__, self._pieces, self._pick(ints))) + self._tail

    def checked_text(self, key: bytes) -> str:
        """:meth:`text` of a key read back from storage.

        Raises:
            ValueError: ``key`` is not a row of this format (its length, an index out of
                range).
        """
        if not isinstance(key, bytes) or len(key) != self._num * self._width:
            raise ValueError(f"{len(key) if isinstance(key, bytes) else type(key).__name__} "
                             f"bytes, not a row of {self._num} indices of {self._width} "
                             "bytes")
        ints = memoryview(key).cast("Q") if self._width == 8 else key  # negatives: too big
        try:
            return "".join(map(list.__getitem__, self._pieces, self._pick(ints))) + self._tail
        except IndexError:
            raise ValueError("an index out of its column's options") from None
