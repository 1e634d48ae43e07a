"""One run folder, one writer: the lock every command that writes a run folder holds.

:func:`lock_run_folder` holds ``OUT/.nas.lock`` (an exclusive ``flock``, released by the kernel
even on ``kill -9``, so the lock of a dead process is free again and the next run takes it over)
while a command writes the folder; the file holds the holder's process id, which the refusal of
a second writer names, and is removed when the command ends (a finished run folder holds only
its outputs). :func:`check_run_folder_free` asks the same question without taking the
lock, for the checks a command runs before any work. Where ``flock`` does not exist (Windows)
every lock is granted.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with lock_run_folder(Path(d) / "run", "training"):
    ...         check_run_folder_free(Path(d) / "run", "training")
    ...         print(sorted(p.name for p in (Path(d) / "run").iterdir()))
    ...     print(sorted(p.name for p in (Path(d) / "run").iterdir()))
    ['.nas.lock']
    []
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from nasforge.errors import InvalidInputError

__all__ = ["LOCK", "check_run_folder_free", "is_leader_process", "lock_run_folder"]

#: the lock file of a run folder in use
LOCK = ".nas.lock"


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock of ``fd`` without waiting; whether it was free (always True
    where ``flock`` does not exist)."""
    if sys.platform == "win32":
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> str:
    return os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"


def _in_use(out: Path, fd: int, what: str, flag: str | None) -> InvalidInputError:
    named = f"{flag} {str(out)!r}" if flag else repr(str(out))
    other = f"give another {flag} or " if flag else ""
    return InvalidInputError(
        f"run folder {named} is in use by another {what} (process {_holder(fd)}); {other}wait "
        "for it to finish")


def is_leader_process() -> bool:
    """Whether this process owns the run folders it writes: not a rank > 0 that ``torchrun``
    started (rank 0 holds the lock for the whole group).

    Example:
        >>> is_leader_process() == (os.environ.get("RANK", "0") == "0")
        True
    """
    return os.environ.get("RANK", "0") == "0"


def check_run_folder_free(out: Path, what: str = "run", flag: str | None = "--out") -> None:
    """Refuse a run folder that another process holds (the lock is not taken; this process's
    own lock passes).

    Raises:
        InvalidInputError: another process holds ``out``'s lock (the message names its pid).
    """
    try:
        fd = os.open(out / LOCK, os.O_RDONLY)
    except OSError:
        return  # no lock file (or none readable): nobody to wait for
    try:
        if not _try_lock(fd) and _holder(fd) != str(os.getpid()):
            raise _in_use(out, fd, what, flag)
    finally:
        os.close(fd)


@contextlib.contextmanager
def lock_run_folder(out: Path, what: str = "run", flag: str | None = "--out"
                    ) -> Iterator[None]:
    """Create the run folder ``out`` and hold its lock while the block runs.

    A run refused or failed before it wrote anything leaves no folder behind (only the folders
    it created, and only when empty, are removed).

    Args:
        out: the run folder.
        what: what writes it (``search``, ``training``, ...), for the refusal.
        flag: the option that named ``out`` (``None``: no option did).

    Raises:
        InvalidInputError: ``out`` cannot be created or written (an existing file, a read-only
            folder), or another process holds its lock.
    """
    made = [d for d in (out, *out.parents) if not d.exists()]  # the folders this run creates
    fd = _acquire(out, what, flag)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    except BaseException:
        _release(out, fd)
        for d in made:
            with contextlib.suppress(OSError):
                d.rmdir()  # only if empty
        raise
    _release(out, fd)


def _acquire(out: Path, what: str, flag: str | None) -> int:
    """The descriptor of ``out``'s lock file, locked by this process; a lock file unlinked by
    its last holder between our open and our lock is opened again (the path must name the
    file we lock)."""
    named = f"{flag} {str(out)!r}" if flag else repr(str(out))
    while True:
        try:
            out.mkdir(parents=True, exist_ok=True)
            fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InvalidInputError(f"cannot write the run folder {named}: "
                                    f"{exc.strerror or exc}; give a writable folder") from None
        if not _try_lock(fd):
            err = _in_use(out, fd, what, flag)  # the holder's folder: leave it as it is
            os.close(fd)
            raise err
        if _same_file(out / LOCK, fd):
            return fd
        os.close(fd)


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False


def _release(out: Path, fd: int) -> None:
    """Remove the lock file (a finished run leaves only its outputs) and release the lock."""
    try:
        if _same_file(out / LOCK, fd):
            (out / LOCK).unlink()
    except OSError:
        pass  # a folder made read-only meanwhile: the kernel still releases the lock
    finally:
        os.close(fd)
