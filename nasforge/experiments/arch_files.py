"""Architectures given as paths: YAML/JSON files (one arch or a list each), folders of them,
and CSVs with an ``arch`` column of JSON (``candidates.csv`` / ``pareto.csv`` of ``nas search``).

Single files are read by :mod:`nasforge.search_spaces.io`; this module adds folders and CSVs,
for commands that take many architectures (``nas eval --arch``).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elasticvit")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "a.yaml").write_text(space.min_arch().to_yaml())
    ...     archs = read_archs(space, [Path(d)])
    >>> [a.arch_id for a in archs] == [space.min_arch().arch_id]
    True
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.errors import InvalidInputError
from nasforge.search_spaces.io import arch_file_from_data
from nasforge.search_spaces.io import read_arch_file
from nasforge.structured import MAX_TABLE_BYTES
from nasforge.structured import parse_structured
from nasforge.structured import read_text

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["ARCH_SUFFIXES", "read_archs"]

#: suffixes of the architecture files a folder is searched for
ARCH_SUFFIXES = (".yaml", ".yml", ".json")


def read_archs(space: SearchSpace, paths: Sequence[Path]) -> list[Arch]:
    """The architectures of ``space`` in ``paths``, in the order given (a folder's files sorted
    by name).

    Raises:
        InvalidInputError: an unreadable file, an empty folder, a CSV without an ``arch``
            column or with a cell that is not JSON.
        InvalidArchitectureError: an arch outside ``space`` (or of another space).
    """
    archs: list[Arch] = []
    for path in paths:
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix in ARCH_SUFFIXES)
            if not files:
                raise InvalidInputError(f"--arch {path}: the folder holds no architecture file "
                                        f"({', '.join(ARCH_SUFFIXES)})")
            for f in files:
                archs.extend(_file_archs(space, f))
        elif path.suffix == ".csv":
            archs.extend(_csv_archs(space, path))
        else:
            archs.extend(_file_archs(space, path))
    return archs


def _file_archs(space: SearchSpace, path: Path) -> list[Arch]:
    """One arch, or a list of them (``nas arch sample --n N`` writes one), of ``space``."""
    return list(read_arch_file(path, space=space.name, expect_space=space.name).archs)


def _csv_archs(space: SearchSpace, path: Path) -> list[Arch]:
    text = read_text(path, "arch file", max_bytes=MAX_TABLE_BYTES)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows or "arch" not in rows[0]:
        raise InvalidInputError(f"{path}: a CSV of architectures needs an `arch` column of JSON "
                                "(as candidates.csv / pareto.csv of `nas search` have)")
    out = []
    for line, row in enumerate(rows, start=2):
        where = f"{path} line {line}"
        data = parse_structured(row["arch"] or "", f"{where}: column `arch`", kind="json")
        out.append(arch_file_from_data(data, where, space=space.name,
                                       expect_space=space.name).one())
    return out
