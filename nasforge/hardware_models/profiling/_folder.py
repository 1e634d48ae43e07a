"""A profiled device's folder: its name, and the CSV files ``nas profile`` appends to.

Rows are appended (and synced) as they are measured, so a killed run leaves a readable table
and the next run resumes; a torn last row is skipped on reading.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge._paths import devices_cache_dir
from nasforge.errors import InvalidInputError
from nasforge.hardware_models._local import LOCAL
from nasforge.hardware_models._local import local_device_name
from nasforge.hardware_models._lut import CSV_HEADER
from nasforge.hardware_models._lut import LatencyEntry

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = ["NET_HEADER", "REMOTE_BACKENDS", "append_rows", "network_key",
           "profiled_device_folder", "read_networks", "read_partial_table"]

NET_HEADER = ("arch_id", "space", "ms", "std_ms", "arch")
#: backends that reach a device other than this machine (then any device name is allowed).
REMOTE_BACKENDS = ("command", "adb", "adb-executorch")


def profiled_device_folder(device: str, backend: str, threads: int,
                           clock: str = "wall") -> tuple[str, Path]:
    """The device name and folder ``nas profile`` writes.

    Raises:
        InvalidInputError: a device other than ``cpu-local`` without ``--backend adb`` or
            ``command``, or a name that is not a simple identifier.
    """
    if device == LOCAL:
        if backend in ("adb", "adb-executorch"):
            raise InvalidInputError(
                f"--backend {backend} measures a phone, not this machine: name it, e.g. "
                f"--device my-pixel --backend {backend} [--serial SERIAL]")
        name = local_device_name(backend, threads, clock)
    else:
        if backend not in REMOTE_BACKENDS:
            raise InvalidInputError(
                f"device {device!r} is not this machine: only {LOCAL!r} is measured with the "
                f"{backend} backend; profile a phone with --backend adb [--serial S], another "
                "device with --backend command --command 'TEMPLATE {model}'")
        if not all(c.isalnum() or c in "-_." for c in device) or device[:1] in ("", "."):
            raise InvalidInputError(
                f"device names use letters, digits, '-', '_' and '.', got {device!r}")
        name = device
    return name, devices_cache_dir() / name


def read_partial_table(path: Path) -> dict[str, LatencyEntry]:
    """The rows of a table CSV being written; a torn last row (a killed run) is skipped."""
    out: dict[str, LatencyEntry] = {}
    if not path.is_file():
        return out
    with path.open(newline="") as f:
        for row in csv.reader(f):
            if len(row) < 4 or row[0] == CSV_HEADER[0]:
                continue
            try:
                mean = float(row[1])
                std = float(row[2]) if row[2] else math.nan
                out[row[0]] = LatencyEntry(mean, std, int(row[3] or 0))
            except ValueError:
                continue
    return out


def append_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(header)
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def network_key(space: str, arch: Arch) -> str:
    """The cache key of a whole network (converted files are cached by it)."""
    return f"net:{space}:{arch.arch_id}"



def read_networks(path: Path) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    if path.is_file():
        with path.open(newline="") as f:
            for row in csv.reader(f):
                if len(row) == len(NET_HEADER) and row[0] != NET_HEADER[0]:
                    try:
                        out[row[0]] = (float(row[2]), float(row[3]) if row[3] else math.nan)
                    except ValueError:
                        continue
    return out
