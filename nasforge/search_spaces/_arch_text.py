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

__all__ = ["ArchText"]

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
        options = codec.index_options()
        self._pieces = [[b + conv[c] % (v,) for v in options[c]]
                        for b, c in zip(before, order, strict=True)]
        self._tail = tail
        wide = codec._key_dtype != np.uint8  # int64 keys: read as machine integers
        self._key_ints: Callable[[bytes], Any] = (
            (lambda key: memoryview(key).cast("q")) if wide else (lambda key: key))

    @property
    def applies(self) -> bool:
        """Whether the space's archs are written by the template at all."""
        return self._template is not None

    def __call__(self, arch: Arch) -> str | None:
        """``arch.to_json()``, or None where the template does not apply to ``arch``."""
        if self._template is None or type(arch) is not self._cls or arch.space != self._space:
            return None
        key = arch.__dict__.get(self._row_attr) if self._row_attr is not None else None
        if key is not None:  # its row's pieces: no values read, no type to check
            return "".join(map(list.__getitem__, self._pieces,
                               self._pick(self._key_ints(key)))) + self._tail
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
