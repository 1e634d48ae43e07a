"""Where nasforge keeps per-user files (imported latency tables, profiled devices, datasets), and
why a file given to it cannot be read.

The cache directory is ``$NASFORGE_CACHE`` when set, else ``~/.cache/nasforge``. It is read at
call time (never stored in a global), so tests and users can point it elsewhere per process.

:func:`check_outside_data` keeps what a command writes out of the image folder it reads.
:func:`unreadable_reason` names what stands between a path and its bytes (missing, a broken
link, a folder, not a regular file, no read permission), so a loader says that, not
"corrupted"; :func:`readable_file` is the check a loader runs before it opens a file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nasforge.errors import InvalidInputError

__all__ = [
    "cache_dir",
    "check_outside_data",
    "devices_cache_dir",
    "readable_file",
    "unreadable_reason",
]


def cache_dir() -> Path:
    """The nasforge cache directory (not created).

    Returns:
        ``Path($NASFORGE_CACHE)`` if that variable is set and non-empty, else
        ``~/.cache/nasforge``.
    """
    env = os.environ.get("NASFORGE_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nasforge"


def devices_cache_dir() -> Path:
    """The folder holding user devices: one sub-folder per device name (not created)."""
    return cache_dir() / "devices"


def unreadable_reason(path: Path | str) -> str | None:
    """Why ``path`` cannot be read as a file, or ``None`` when it can be opened for reading.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     print(unreadable_reason(d), "|", unreadable_reason(Path(d) / "x.jpg"))
        it is a folder, not a file | not found (no such file)
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        if p.is_symlink():
            return f"it is a broken symbolic link (to {os.readlink(p)})"
        return "not found (no such file)"
    except OSError as exc:
        return f"it cannot be reached: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return "it is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "it is not a regular file (a pipe, socket or device)"
    try:
        with open(p, "rb"):
            pass
    except PermissionError:
        return "permission denied (no read access for this user)"
    except OSError as exc:
        return f"it cannot be opened: {exc.strerror or exc}"
    return None


def readable_file(path: Path | str, what: str) -> Path:
    """``path`` when it is a regular file this process may read.

    Args:
        path: the file.
        what: what it is (``checkpoint``, ``arch file``, ...), for the message.

    Raises:
        InvalidInputError: one line naming the file and why it cannot be read.
    """
    reason = unreadable_reason(path)
    if reason is not None:
        raise InvalidInputError(f"cannot read the {what} {path}: {reason}")
    return Path(path)


def check_outside_data(out: Path, spec: str | None, flag: str = "--out") -> None:
    """Refuse an output path inside the folder of an ``imagefolder:`` spec, where what a run
    writes would be read as a class (or an image) of the data next time.

    Args:
        out: the file or folder a command writes.
        spec: the data spec it reads (``None`` or another scheme: nothing to check).
        flag: the option that named ``out``, for the message.

    Raises:
        InvalidInputError: ``out`` is the image folder or lies inside it.

    Example:
        >>> check_outside_data(Path("runs/a"), "imagefolder:data/imgs")
        >>> check_outside_data(Path("data/imgs/run"), "imagefolder:data/imgs")
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidInputError: --out data/imgs/run is inside the image folder \
data/imgs (--data imagefolder:data/imgs): what it writes would be read as data; give an --out \
outside data/imgs
    """
    kind, _, arg = (spec or "").partition(":")
    if kind != "imagefolder" or not arg:
        return
    root = Path(arg).expanduser().resolve()
    target = Path(out).expanduser().resolve()
    if target == root or root in target.parents:
        raise InvalidInputError(
            f"{flag} {out} is inside the image folder {arg} (--data imagefolder:{arg}): what it "
            f"writes would be read as data; give an {flag} outside {arg}")
