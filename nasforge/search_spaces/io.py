"""Reading and writing architecture files (our YAML/JSON), and the exchange-format registry.

Our format is one mapping with a ``space`` key and the arch's fields, or a list of them, or an
export config holding one under ``arch:``. :func:`read_arch_file` is the one reader of these
files (the CLI, export and training all use it).
Exchange formats (``elasticvit-tuple``, ``ofa``, ``nb201``, ``hat``) register an importer that
turns a file's text into architectures, and optionally an exporter.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.registry import Registry
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.arch import _dump_yaml
from nasforge.search_spaces.registry import get_space
from nasforge.validation import check_text_depth
from nasforge.validation import parse_structured
from nasforge.validation import read_text as _read_utf8

__all__ = [
    "ARCH_FORMATS",
    "ArchFile",
    "ArchFormat",
    "arch_file_from_data",
    "archs_from_data",
    "archs_to_yaml",
    "load_arch",
    "load_archs",
    "parse_text",
    "read_arch_file",
    "read_text",
]


@dataclass(frozen=True)
class ArchFormat:
    """An exchange format: ``load(text, resolution=None) -> archs``; optionally ``dump(arch)``.

    ``resolution`` overrides (or supplies) the input resolution for formats that do not carry
    one (OFA's ``net.config`` keeps it in ``run.config``; NAS-Bench-201 cells have none).
    """

    load: Callable[..., list[Arch]]
    dump: Callable[[Arch], str] | None = None
    description: str = ""


ARCH_FORMATS: Registry[ArchFormat] = Registry("architecture format")


def read_text(path: str | Path, what: str = "file") -> str:
    """Read a UTF-8 regular file through the bounded reader (:mod:`nasforge.structured`); a
    missing, unreadable, oversized or non-UTF-8 file, a directory, FIFO or device is an
    :class:`InvalidInputError` naming ``what`` (``arch file``)."""
    return _read_utf8(path, what)


def parse_text(text: str, source: str = "<input>") -> Any:
    """Parse YAML (a superset of JSON) safely; a syntax error names the line, a duplicate key
    or nesting deeper than :data:`nasforge.validation.MAX_DEPTH` is refused."""
    return parse_structured(text, source, kind="yaml")


@dataclass(frozen=True)
class ArchFile:
    """What an architecture file holds: its architectures and any other top-level keys.

    Attributes:
        archs: the architectures, validated against their spaces (at least one).
        extra: the keys beside ``arch:`` in a file that wraps one architecture (an export
            config: ``num_classes``, ``input_size``, ``format``, ...); empty otherwise.
        source: where the data came from (the path), for messages.
    """

    archs: tuple[Arch, ...]
    extra: dict[str, Any]
    source: str

    def one(self) -> Arch:
        """The file's only architecture.

        Raises:
            InvalidInputError: the file holds several.
        """
        if len(self.archs) != 1:
            raise InvalidInputError(
                f"{self.source}: expected one architecture, but the file holds "
                f"{len(self.archs)}; keep one (or split the list into files)")
        return self.archs[0]


def arch_file_from_data(data: Any, source: str = "<input>", *, space: str | None = None,
                        expect_space: str | None = None) -> ArchFile:
    """An :class:`ArchFile` from parsed YAML/JSON: the one reading of every arch file.

    Accepted forms: one mapping with ``space`` and the arch's fields (as ``arch.to_yaml()``
    writes it), a list of them, or a mapping with ``arch:`` holding that mapping beside other
    keys (an export config; ``space`` may sit at its top level).

    Args:
        data: the parsed file.
        source: the file's name, for messages.
        space: the space of architectures that carry no ``space`` field.
        expect_space: the space every architecture must belong to (e.g. a supernet's).

    Raises:
        InvalidInputError: an empty file, an item that is not a mapping, or no space known.
        InvalidArchitectureError: an architecture outside its space.
        IncompatibleComponentsError: an architecture of another space than ``expect_space``.
        UnknownNameError: an unknown space name.
    """
    extra: dict[str, Any] = {}
    if isinstance(data, dict) and "arch" in data:
        data, extra = data["arch"], {k: v for k, v in data.items() if k != "arch"}
        if isinstance(data, dict) and "space" not in data and "space" in extra:
            data = {**data, "space": extra["space"]}
        extra.pop("space", None)
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidInputError(f"{source}: no architecture in the file")
    out = []
    for i, item in enumerate(items):
        where = source if len(items) == 1 else f"{source}[{i}]"
        if not isinstance(item, dict):
            raise InvalidInputError(
                f"{where}: an architecture is a mapping with a `space` key and its fields, got "
                f"{type(item).__name__}"
            )
        name = item.get("space", space)
        if name is None:
            raise InvalidInputError(f"{where}: missing `space` (which search space the "
                                    f"architecture belongs to); add `space: NAME`")
        if expect_space is not None and name != expect_space:
            raise IncompatibleComponentsError(
                f"{where} is an architecture of space {name!r}, but {expect_space!r} is "
                f"expected here; give an architecture of {expect_space!r}")
        out.append(get_space(str(name)).arch_from_dict(item))
    return ArchFile(tuple(out), extra, source)


def read_arch_file(path: str | Path, *, space: str | None = None,
                   expect_space: str | None = None) -> ArchFile:
    """Read one of our architecture files (YAML or JSON; see :func:`arch_file_from_data`)."""
    data = parse_text(read_text(path, "arch file"), str(path))
    return arch_file_from_data(data, str(path), space=space, expect_space=expect_space)


def archs_from_data(data: Any, source: str = "<input>") -> list[Arch]:
    """Architectures from parsed YAML/JSON (see :func:`arch_file_from_data`)."""
    return list(arch_file_from_data(data, source).archs)


def load_archs(path: str | Path, *, space: str | None = None) -> list[Arch]:
    """Load the architectures of one of our YAML/JSON files (validated against their space)."""
    return list(read_arch_file(path, space=space).archs)


def load_arch(path: str | Path, *, space: str | None = None,
              expect_space: str | None = None) -> Arch:
    """Load the one architecture of a YAML/JSON file (see :func:`arch_file_from_data`).

    Raises:
        InvalidInputError: an unreadable or malformed file, or one holding several archs.
        IncompatibleComponentsError: an architecture of another space than ``expect_space``.
    """
    return read_arch_file(path, space=space, expect_space=expect_space).one()


def archs_to_yaml(archs: list[Arch]) -> str:
    """YAML text: one mapping for one arch, a list for several."""
    if len(archs) == 1:
        return archs[0].to_yaml()
    return _dump_yaml([a.to_dict() for a in archs])


# ---- built-in exchange formats ----------------------------------------------------------------
def _literal(text: str) -> Any:
    """JSON/YAML, or a Python literal such as ElasticViT's tuple text (safely, no eval)."""
    check_text_depth(text, "the file")
    try:
        return parse_structured(text, "the file", kind="json")
    except InvalidInputError as e:
        if "malformed" not in str(e):  # a duplicate key: not a syntax question
            raise
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return parse_text(text)


def _load_elasticvit_tuple(text: str, resolution: int | None = None) -> list[Arch]:
    from nasforge.search_spaces._elasticvit_io import arch_from_elasticvit_tuple

    data = _literal(text)
    space = get_space("elasticvit")
    if isinstance(data, dict):  # {name: tuple} as in the repo's configs
        data = list(data.values())
    archs: list[Arch]
    if isinstance(data, list | tuple) and data and isinstance(data[0], list | tuple) and len(
            data[0]) == 10 and not isinstance(data[0][0], list | tuple):
        archs = [arch_from_elasticvit_tuple(space, d) for d in data]  # type: ignore[arg-type]
    else:
        archs = [arch_from_elasticvit_tuple(space, data)]  # type: ignore[arg-type]
    if resolution is not None:
        archs = [a.replace(resolution=resolution) for a in archs]
        for a in archs:
            space.validate(a)
    return archs


def _dump_elasticvit_tuple(arch: Arch) -> str:
    from nasforge.search_spaces._elasticvit_io import arch_to_elasticvit_tuple

    return json.dumps(arch_to_elasticvit_tuple(arch)) + "\n"  # type: ignore[arg-type]


ARCH_FORMATS.add("elasticvit-tuple", ArchFormat(
    _load_elasticvit_tuple, _dump_elasticvit_tuple,
    "ElasticViT's 10-field tuple (res, channels, depths, conv_ratio, kernel, mlp_ratio, "
    "num_heads, window, qk_scale, v_scale); JSON or Python literal, one or a list",
))


def _load_ofa(text: str, resolution: int | None = None) -> list[Arch]:
    from nasforge.search_spaces._ofa_mbv3_io import arch_from_ofa_config

    data = _literal(text)
    if not isinstance(data, dict):
        raise InvalidInputError(f"an OFA net.config is a JSON object, got {type(data).__name__}")
    if resolution is None and not ({"image_size", "resolution"} & set(data)):
        raise InvalidInputError(
            "the net.config holds no input size (OFA keeps it in run.config as image_size); "
            "pass --resolution, e.g. --resolution 224")
    return [arch_from_ofa_config(None, data, resolution=resolution)]


def _dump_ofa(arch: Arch) -> str:
    from nasforge.search_spaces._ofa_mbv3_io import arch_to_ofa_config

    return json.dumps(arch_to_ofa_config(arch), indent=2) + "\n"  # type: ignore[arg-type]


def _load_nb201(text: str, resolution: int | None = None) -> list[Arch]:
    from nasforge.search_spaces._nasbench201_cell import arch_from_nb201_str

    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InvalidInputError("no NAS-Bench-201 arch_str in the file (one per line)")
    return [arch_from_nb201_str(ln) for ln in lines]


def _dump_nb201(arch: Arch) -> str:
    return f"{arch.to_arch_str()}\n"  # type: ignore[attr-defined]


ARCH_FORMATS.add("ofa", ArchFormat(
    _load_ofa, _dump_ofa,
    "Once-for-All's net.config JSON of a MobileNetV3 subnet (released specialized nets); the "
    "resolution from its image_size/resolution key or --resolution",
))
ARCH_FORMATS.add("nb201", ArchFormat(
    _load_nb201, _dump_nb201, "NAS-Bench-201 arch_str, one cell per line",
))


def _load_hat(text: str, resolution: int | None = None, space: str | None = None) -> list[Arch]:
    from nasforge.search_spaces._hat import HAT_CFGS
    from nasforge.search_spaces._hat import HATSpace
    from nasforge.search_spaces._hat_io import arch_from_hat_config

    if space is None or space not in HAT_CFGS:
        raise InvalidInputError(
            f"a HAT SubTransformer config does not name its task; pass --space with one of "
            f"{', '.join(HAT_CFGS)}" + ("" if space is None else f" (got {space!r})"))
    target = get_space(space)
    if not isinstance(target, HATSpace):  # pragma: no cover - HAT_CFGS names HAT spaces
        raise InvalidInputError(f"space {space!r} is not a HAT space")
    return [arch_from_hat_config(target, parse_text(text, "the HAT config"))]


def _dump_hat(arch: Arch) -> str:
    from nasforge.search_spaces._hat import HATArch
    from nasforge.search_spaces._hat_io import hat_config_to_yaml

    if not isinstance(arch, HATArch):
        raise InvalidInputError(
            f"the hat format holds HAT SubTransformers; this architecture is of space "
            f"{arch.space!r}")
    return hat_config_to_yaml(arch)


ARCH_FORMATS.add("hat", ArchFormat(
    _load_hat, _dump_hat,
    "HAT's SubTransformer YAML (configs/<task>/subtransformer/*.yml); the task's space from "
    "--space (hat_wmt14ende, hat_wmt14enfr, hat_wmt19ende, hat_iwslt14deen)",
))
