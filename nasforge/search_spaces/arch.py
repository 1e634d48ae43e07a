"""Architectures: frozen dataclasses with a canonical JSON/YAML form and a stable ``arch_id``.

Every space defines one subclass of :class:`Arch`. Fields are ints, strings or tuples of them,
so the canonical JSON (``sort_keys``, no floats) is identical across runs and machines, and
``arch_id`` (the first 16 hex digits of its sha1) can key caches and deduplicate candidates.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from functools import cached_property
from typing import Any

import yaml

__all__ = ["Arch", "canonical_json"]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


#: the encoder of :func:`canonical_json`, made once (``json.dumps`` with these options makes
#: one per call)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


#: the attribute of an arch's ``__dict__`` that keeps its canonical JSON once written (what
#: ``cached_property`` does for ``arch_id``; the fields decide it, and they never change)
JSON_TEXT = "_canonical_json"


def canonical_json(data: dict[str, Any]) -> str:
    """The canonical JSON text of a plain dict: sorted keys, no spaces (what
    ``json.dumps(data, sort_keys=True, separators=(",", ":"))`` writes)."""
    return _CANONICAL.encode(data)


def json_id(text: str) -> str:
    """The ``arch_id`` of an arch whose canonical JSON is ``text``: the first 16 hex digits
    of its sha1."""
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Arch:
    """Base of every space's architecture dataclass.

    Attributes:
        space: the registered name of the search space the architecture belongs to.
    """

    space: str

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (lists for tuples), the form written to JSON and YAML."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, compact, ints stay ints (kept on the arch once written,
        as :attr:`arch_id` is: an arch is immutable). The fields are encoded as they are (the
        encoder writes a tuple as a list: :meth:`to_dict`'s text without its copies) unless
        the class has its own :meth:`to_dict`."""
        text = self.__dict__.get(JSON_TEXT)
        if text is None:
            data = (self.to_dict() if type(self).to_dict is not Arch.to_dict
                    else {name: getattr(self, name) for name in self.field_names()})
            text = self.__dict__[JSON_TEXT] = canonical_json(data)
        return text

    def to_yaml(self) -> str:
        """YAML with the same content as :meth:`to_json`, lists in flow style."""
        return _dump_yaml(self.to_dict())

    @cached_property
    def arch_id(self) -> str:
        """First 16 hex digits of the sha1 of the canonical JSON."""
        return json_id(self.to_json())

    @classmethod
    @functools.cache
    def field_names(cls) -> tuple[str, ...]:
        """Names of the dataclass fields, ``space`` first (found once per class)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> Arch:
        """A copy with some fields changed (``dataclasses.replace``); not validated."""
        return dataclasses.replace(self, **changes)


class _FlowDumper(yaml.SafeDumper):
    pass


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_FlowDumper.add_representer(list, _represent_list)


def _dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_FlowDumper, sort_keys=True, default_flow_style=False)
