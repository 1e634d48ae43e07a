"""What went wrong with a storage, in one line: the one place where a database error raised
while a study is read or written becomes an :class:`~nasforge.errors.InvalidInputError` that
names the storage (password hidden) and the cause.

* a lost connection to a database server is retried (:data:`RETRY_DELAYS_S`, a short
  backoff); when it stays lost, the line says that what was evaluated is stored and that
  ``--resume`` continues;
* a SQLite file that cannot be written names the cause it can see: the file size limit
  (``ulimit -f``) reached, a full disk, or SQLite's own words;
* a stored candidate that cannot be read (a value rewritten as text or NULL, an attribute
  or an arch that is no JSON) is named as a changed storage.

:func:`guarded` wraps the methods of
:class:`~nasforge.strategies.storage.study.SearchStudy` that touch the storage; a call inside
another guarded call goes straight through, so a retry covers one whole step.
"""

from __future__ import annotations

import functools
import logging
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from typing import Protocol
from typing import TypeVar

from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError

__all__ = ["RETRY_DELAYS_S", "connection_lost", "database_locked", "guarded", "stored_data_error",
           "translate", "write_error"]

logger = logging.getLogger(__name__)

#: seconds waited before each new try of a step whose database connection was lost
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
#: words of a driver's message that mean the connection to the server is gone
_LOST = ("connection", "server closed", "terminating", "could not connect", "shutting down",
         "gone away", "lost connection", "the database system is")
#: exceptions of a stored value that cannot be read back
_BAD_DATA = (ValueError, TypeError, AssertionError, KeyError, UnicodeError)

F = TypeVar("F", bound=Callable[..., Any])


class _Guarded(Protocol):
    label: str
    path: Path | None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes (``raise ... from``) and contexts, outermost first."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _database_error(exc: BaseException) -> BaseException | None:
    """The driver's (or SQLAlchemy's) error under ``exc``, or None when it is none."""
    import sqlite3

    import sqlalchemy.exc as sa_exc

    for e in _chain(exc):
        if isinstance(e, sqlite3.Error):
            return e
        if isinstance(e, sa_exc.DBAPIError) and e.orig is not None:
            return e.orig
        if isinstance(e, sa_exc.SQLAlchemyError):
            return e
    return None


def database_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked": another process holds the write
    lock, or (WAL) committed after this transaction's read began, so it may not write; a
    new transaction succeeds."""
    err = _database_error(exc)
    return err is not None and "locked" in _first_line(err).lower()


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says that the connection to a database server is gone."""
    import sqlite3

    import sqlalchemy.exc as sa_exc

    for e in _chain(exc):
        if isinstance(e, sqlite3.Error):
            return False
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sa_exc.DisconnectionError | sa_exc.InterfaceError):
            return True
        if isinstance(e, sa_exc.OperationalError) and any(
                w in _first_line(e).lower() for w in _LOST):
            return True
    return False


def write_error(label: str, path: Path | None, exc: BaseException) -> InvalidInputError:
    """The one line for a storage that refused a write or a read: the cause named where it
    can be seen (the file size limit, a full disk), else the database's own words."""
    cause = _first_line(_database_error(exc) or exc)
    if path is not None and path.exists():
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        sizes = [p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()]
        free = shutil.disk_usage(path.parent).free
        if limit != resource.RLIM_INFINITY and sizes and max(sizes) + 65536 >= limit:
            cause = (f"the file size limit of this process (ulimit -f: {limit} bytes) is "
                     f"reached ({cause})")
        elif free < 1 << 20:
            cause = f"the disk is full ({free} bytes free; {cause})"
    return InvalidInputError(
        f"cannot use search storage {label!r}: {cause}; fix that and rerun with --resume "
        "(what was stored before is kept)")


def stored_data_error(label: str, exc: BaseException) -> InvalidInputError:
    """The one line for a stored candidate (a trial, an attribute, a row of the candidate
    table) that cannot be read back."""
    what = (f"{type(exc).__name__}: {_first_line(exc)}" if str(exc).strip()
            else "a stored value is NULL")
    return InvalidInputError(
        f"search storage {label!r} holds a candidate that cannot be read back ({what}): it was "
        "changed outside nasforge; "
        "restore it from a copy or search into a new storage")


def _lost_error(label: str, exc: BaseException) -> InvalidInputError:
    return InvalidInputError(
        f"lost the connection to search storage {label!r} "
        f"({_first_line(_database_error(exc) or exc)}) and {len(RETRY_DELAYS_S)} retries "
        "failed; what was evaluated is stored: rerun with --resume once the database is "
        "reachable")


def translate(label: str, path: Path | None, exc: BaseException) -> InvalidInputError | None:
    """The one line for ``exc`` raised by the storage ``label`` (its file ``path``), or None
    (not a storage error)."""
    if _database_error(exc) is not None or _is_storage_internal(exc):
        return (_lost_error(label, exc) if connection_lost(exc)
                else write_error(label, path, exc))
    if isinstance(exc, _BAD_DATA):
        return stored_data_error(label, exc)
    return None


def _is_storage_internal(exc: BaseException) -> bool:
    from optuna.exceptions import StorageInternalError

    return isinstance(exc, StorageInternalError)


def guarded(method: F) -> F:
    """Run a storage step of ``self`` (a :class:`_Guarded`): retry it after a lost
    connection, and turn a storage error into one line (:func:`translate`)."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_guard_depth", 0):
            return method(self, *args, **kwargs)
        delays = iter(RETRY_DELAYS_S)
        while True:
            self._guard_depth = 1
            try:
                return method(self, *args, **kwargs)
            except NasforgeError:
                raise
            except Exception as exc:
                delay = next(delays, None) if connection_lost(exc) else None
                if delay is None:
                    err = translate(self.label, self.path, exc)
                    if err is None:
                        raise
                    raise err from exc
                logger.info("search storage %s: connection lost (%s); retrying in %.1f s",
                            self.label, _first_line(_database_error(exc) or exc), delay)
                time.sleep(delay)
            finally:
                self._guard_depth = 0

    return run  # type: ignore[return-value]
