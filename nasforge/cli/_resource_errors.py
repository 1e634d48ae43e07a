"""Resource failures as one line: the part of the CLI's error boundary past ``NasforgeError``.

A full disk or a file-size limit (``ENOSPC`` / ``EFBIG``), a permission refused, a
safetensors file that cannot be read or written, an exhausted memory limit (``MemoryError``,
torch's "can't allocate" ``RuntimeError``) are not bugs of the input, but they are not bugs of
nasforge either: the person needs the file (or the flag) and the cause, not a traceback.
:func:`resource_error_line` words them; :func:`~nasforge.cli._common.run_app` prints the line.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

__all__ = ["cwd_error_line", "resource_error_line"]

#: flags whose value is a file or folder nasforge writes (named when the OS error names none)
_OUTPUT_FLAGS = ("--out", "--csv", "-o", "--output")
_ALLOC_WORDS = ("can't allocate", "cannot allocate", "could not allocate", "out of memory",
                "failed to allocate", "bad_alloc")
_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def cwd_error_line() -> str | None:
    """The error line for a working directory that no longer exists, else None.

    Checked before torch loads: its MKL would end the process with a fatal error instead.

    Example:
        >>> cwd_error_line() is None
        True
    """
    try:
        os.getcwd()
    except OSError as e:
        return (f"the working directory no longer exists or cannot be read ({e.strerror}); "
                "cd into an existing folder and run the command again")
    return None


def resource_error_line(e: BaseException, argv: Sequence[str]) -> str | None:
    """One line for a resource failure ``e`` of the command ``argv``, or None for others.

    Example:
        >>> line = resource_error_line(OSError(errno.EFBIG, "File too large"), ["--out", "r"])
        >>> line.split(";")[0]
        'no space or file size limit writing under --out r (File too large)'
        >>> resource_error_line(PermissionError(errno.EACCES, "Permission denied", "a.csv"), [])
        'permission denied: a.csv; check the path and its permissions'
        >>> resource_error_line(MemoryError(), ["eval", "--batch-size", "9999999"])
        'out of memory (--batch-size 9999999); lower the sizes the flags set or free memory'
        >>> resource_error_line(ValueError("x"), []) is None
        True
    """
    if isinstance(e, OSError):
        return _os_line(e, argv)
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and _is_alloc(str(e))):
        return f"out of memory{_size_flags(argv)}; lower the sizes the flags set or free memory"
    if type(e).__name__ == "SafetensorError":
        return _safetensors_line(e, argv)
    return None


def _os_line(e: OSError, argv: Sequence[str]) -> str | None:
    where = str(e.filename) if e.filename is not None else _flag_values(argv, _OUTPUT_FLAGS)
    cause = e.strerror or str(e)
    if e.errno in _SPACE_ERRNOS:
        target = where if e.filename is not None else (f"under {where}" if where else "a file")
        return (f"no space or file size limit writing {target} ({cause}); free disk space or "
                "raise the file size limit (ulimit -f)")
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {where or 'a file'}; check the path and its permissions"
    if e.errno == errno.ENOMEM:
        return f"out of memory{_size_flags(argv)}; lower the sizes the flags set or free memory"
    if e.filename is None:
        return None
    return f"{e.filename}: {cause}; check the path and its permissions"


def _safetensors_line(e: BaseException, argv: Sequence[str]) -> str:
    text = " ".join(str(e).split())
    if any(w in text for w in ("FileTooLarge", "StorageFull", "os error 27", "os error 28")):
        where = _flag_values(argv, _OUTPUT_FLAGS)
        return (f"no space or file size limit writing a safetensors file"
                f"{' under ' + where if where else ''} ({text}); free disk space or raise the "
                "file size limit (ulimit -f)")
    files = _existing_paths(argv)
    return (f"a safetensors file{' of ' + files if files else ''} cannot be read or written "
            f"({text}); pass a file written by nasforge")


def _is_alloc(message: str) -> bool:
    low = message.lower()
    return any(w in low for w in _ALLOC_WORDS)


def _flag_values(argv: Sequence[str], flags: Sequence[str]) -> str:
    """``--flag value`` pairs of ``argv`` for ``flags`` (both ``--f v`` and ``--f=v``)."""
    found: list[str] = []
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in flags:
            value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            found.append(f"{name} {value}")
    return ", ".join(found)


def _size_flags(argv: Sequence[str]) -> str:
    sizes = _flag_values(argv, ("--batch-size", "--input-size", "--resolution", "--batch"))
    return f" ({sizes})" if sizes else ""


def _existing_paths(argv: Sequence[str]) -> str:
    """The arguments that are files on disk (what a load may have read)."""
    return ", ".join(a.partition("=")[2] or a for a in argv
                     if os.path.isfile(a.partition("=")[2] or a))
