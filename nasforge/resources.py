"""Memory and size limits checked before work: an allocation a flag sizes, a file read whole.

A flag that sets the size of a tensor (``--batch-size``, ``--input-size``, ``--resolution``)
is checked against the memory this process may still take (:func:`available_memory`: the
smaller of the system's available memory and the address-space limit, ``ulimit -v``) before
any tensor is made, so a typo ends in one line naming the flag instead of an allocator crash.
Files that are read whole (a benchmark CSV) must be regular files under a size cap.
"""

from __future__ import annotations

import logging
import os
import resource
import stat
from pathlib import Path

from nasforge.errors import InvalidInputError

__all__ = ["FLOAT_BYTES", "MAX_TABLE_BYTES", "available_memory", "check_allocation",
           "check_image_batch", "check_regular_file", "format_bytes", "image_batch_bytes"]

logger = logging.getLogger(__name__)

FLOAT_BYTES = 4
#: the largest table (a benchmark CSV) read whole: NAS-Bench-201's full table is ~20 MB
MAX_TABLE_BYTES = 1 << 30


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps it >= 1.

    Example:
        >>> format_bytes(512), format_bytes(3 * 2**30), format_bytes(5.5 * 2**40)
        ('512 B', '3.0 GiB', '5.5 TiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover - the loop returns


def _meminfo_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (psutil's figure where installed)."""
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _address_space_left() -> int | None:
    """Bytes the address-space limit (``ulimit -v``) still allows this process, or None."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        used = pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(0, soft - used)


def available_memory() -> int | None:
    """Bytes this process may still allocate: the smaller of the system's available memory and
    what ``ulimit -v`` leaves; None when neither is known.

    Example:
        >>> m = available_memory()
        >>> m is None or m >= 0
        True
    """
    known = [m for m in (_meminfo_available(), _address_space_left()) if m is not None]
    return min(known) if known else None


def image_batch_bytes(batch_size: int, side: int, channels: int = 3) -> int:
    """Bytes of one float32 image batch ``(batch_size, channels, side, side)``: a lower bound
    of what a step holds (activations come on top).

    Example:
        >>> image_batch_bytes(128, 224)
        77070336
    """
    return int(batch_size) * channels * int(side) ** 2 * FLOAT_BYTES


def check_allocation(flags: str, need: int, what: str = "one batch") -> None:
    """Refuse an allocation of ``need`` bytes that the memory left cannot hold.

    Args:
        flags: the flags that set the size, as the user wrote them (``--batch-size 10000000``).
        need: the estimated bytes.
        what: what is allocated.

    Raises:
        InvalidInputError: ``need`` exceeds :func:`available_memory`.

    Example:
        >>> check_allocation("--batch-size 2", 1024)
        >>> check_allocation("--batch-size 1e12", 2**62)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidInputError: --batch-size 1e12: one batch needs an estimated ...
    """
    free = available_memory()
    if free is None or need <= free:
        return
    raise InvalidInputError(
        f"{flags}: {what} needs an estimated {format_bytes(need)}, more than the "
        f"{format_bytes(free)} of memory available; lower the value"
    )


def check_image_batch(batch_size: int, side: int, batch_flag: str = "--batch-size",
                      side_flag: str | None = "--input-size") -> None:
    """:func:`check_allocation` of one float32 image batch, naming both flags (``side_flag``
    None: the side is a default, given in px).

    Example:
        >>> check_image_batch(32, 224)
        >>> check_image_batch(10**12, 4096)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidInputError: --batch-size 1000000000000 at --input-size 4096: ...
    """
    at = f"{side_flag} {side}" if side_flag else f"{side} px"
    check_allocation(f"{batch_flag} {batch_size} at {at}",
                     image_batch_bytes(batch_size, side), "one image batch")


def check_regular_file(path: Path, what: str, cap: int = MAX_TABLE_BYTES) -> None:
    """Refuse a path that is not a regular file (a device, a FIFO, a folder) or is over ``cap``
    bytes, before it is read whole.

    Raises:
        InvalidInputError: not a regular file, or too large.

    Example:
        >>> check_regular_file(Path("/dev/zero"), "benchmark table")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidInputError: benchmark table /dev/zero is not a regular file ...
    """
    try:
        st = path.stat()
    except OSError:
        return  # a missing file: the reader names it
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"{what} {path} is not a regular file (a device, a FIFO or a "
                                "folder); pass a file")
    if st.st_size > cap:
        raise InvalidInputError(f"{what} {path} is {format_bytes(st.st_size)}, over the "
                                f"{format_bytes(cap)} cap for a file read whole")
