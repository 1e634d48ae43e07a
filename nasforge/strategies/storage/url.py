"""Storage URLs: the one place where a search's storage is named, parsed, shown and opened.

As Optuna's ``storages.get_storage`` is the one place Optuna turns a string into a storage,
:class:`StorageURL` is ours; every other module calls it. A storage is one of

* ``sqlite:///PATH`` or a plain path: a SQLite file (its folder is created; a file that is not
  SQLite, one in nasforge's previous format, or ``sqlite:///:memory:``, which a search cannot
  resume from, is refused in one line);
* ``journal:PATH``: an Optuna ``JournalStorage`` file;
* any other URL Optuna's RDB storage takes: ``postgresql://USER@HOST:PORT/DB`` (opened with
  the PostgreSQL driver that is installed: psycopg 3, else psycopg2), ``mysql://...``;

and, where a study is named with it (``nas report URL#STUDY``), ``#STUDY`` after it. A run
with no storage given keeps its study in ``OUT/search.db`` (:meth:`StorageURL.for_run`).

Example:
    >>> url = StorageURL.parse("postgresql://me:secret@db:5432/nas#evo", with_study=True)
    >>> url.scheme, url.label, url.study
    ('postgresql', 'postgresql://me:***@db:5432/nas', 'evo')
    >>> StorageURL.parse("runs/a/search.db").url
    'sqlite:///runs/a/search.db'
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage

from nasforge.errors import InvalidInputError

__all__ = ["StorageURL", "open_storage", "route_optuna_logs"]

logger = logging.getLogger(__name__)

_JOURNAL = "journal:"
_SQLITE = "sqlite:///"
#: the file of a run's study when no storage is given
DEFAULT_FILE = "search.db"


def route_optuna_logs() -> None:
    """Send Optuna's messages ("A new study created ...") through Python logging like ours,
    so the application decides what a person sees; Optuna's own handler would hold on to
    whatever ``sys.stderr`` was when it was first used. Called where nasforge opens a study
    (importing nasforge leaves Optuna's logging alone)."""
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    rdb_log = logging.getLogger("optuna.storages._rdb.storage")
    if _demote_fallback not in rdb_log.filters:
        rdb_log.addFilter(_demote_fallback)


def _demote_fallback(record: logging.LogRecord) -> bool:
    """Optuna's RDB storage warns (with the whole SQL statement) when a query fails and it
    retries a slower one: a query that failed because the connection is gone fails again,
    and nasforge's retry says so in one line; the warning is shown at debug level only."""
    if record.levelno == logging.WARNING and "Falling back to a slower" in record.getMessage():
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return True


@dataclass(frozen=True)
class StorageURL:
    """Where a search's study lives (see the module docstring).

    Attributes:
        url: the URL, a plain path written as ``sqlite:///PATH``; ``journal:PATH`` as given.
        study: the study named after ``#`` (only :meth:`parse` ``(with_study=True)`` reads
            one), else None.
    """

    url: str
    study: str | None = None

    @classmethod
    def parse(cls, text: str | Path | StorageURL, *, with_study: bool = False) -> StorageURL:
        """The storage named by ``text``: a URL, ``journal:PATH`` or a SQLite file path.

        Args:
            text: the storage (a :class:`StorageURL` is returned as it is).
            with_study: read a ``#STUDY`` suffix (``nas report``); else ``#`` is part of the
                URL.
        """
        if isinstance(text, StorageURL):
            return text
        url, study = str(text), None
        if with_study:
            url, _, name = url.partition("#")
            study = name or None
        if not url.startswith(_JOURNAL) and "://" not in url:
            url = _SQLITE + url
        return cls(url, study)

    @classmethod
    def for_run(cls, storage: str | None, out: Path) -> StorageURL:
        """A run's storage: ``storage`` when given, else the SQLite file ``OUT/search.db``.

        Example:
            >>> str(StorageURL.for_run(None, Path("runs/a")))
            'sqlite:///runs/a/search.db'
            >>> str(StorageURL.for_run("journal:j.log", Path("runs/a")))
            'journal:j.log'
        """
        return cls.parse(storage) if storage else cls(f"{_SQLITE}{out / DEFAULT_FILE}")

    @staticmethod
    def is_url(text: str) -> bool:
        """Whether ``text`` names a storage by URL (``SCHEME://...`` or ``journal:PATH``)
        rather than a file or folder.

        Example:
            >>> [StorageURL.is_url(t) for t in ("sqlite:///a.db", "journal:j.log", "runs/a")]
            [True, True, False]
        """
        return "://" in text or text.startswith(_JOURNAL)

    def __str__(self) -> str:
        return self.url

    @property
    def scheme(self) -> str:
        """``journal``, ``sqlite``, ``postgresql``, ``mysql+pymysql``, ..."""
        return "journal" if self.url.startswith(_JOURNAL) else self.url.split("://", 1)[0]

    @property
    def path(self) -> Path | None:
        """The file of a SQLite or journal storage; None for a database server."""
        if self.url.startswith(_JOURNAL):
            return Path(self._journal_file())
        if self.url.startswith(_SQLITE):
            return Path(self.url[len(_SQLITE):])
        return None

    @property
    def label(self) -> str:
        """The URL with any password hidden (for messages).

        Example:
            >>> StorageURL.parse("postgresql://me:secret@db:5432/nas").label
            'postgresql://me:***@db:5432/nas'
        """
        if self.url.startswith(_JOURNAL) or self.url.startswith(_SQLITE):
            return self.url
        try:
            from sqlalchemy.engine import make_url

            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return self.url

    def dashboard_command(self) -> str:
        """The ``optuna-dashboard`` command that shows the studies of this storage.

        Example:
            >>> StorageURL.parse("runs/a/search.db").dashboard_command()
            'optuna-dashboard sqlite:///runs/a/search.db'
            >>> StorageURL.parse("journal:runs/j.log").dashboard_command()
            'optuna-dashboard runs/j.log'
        """
        if self.url.startswith(_JOURNAL):
            return f"optuna-dashboard {self._journal_file()}"
        return f"optuna-dashboard {self.label}"

    def _journal_file(self) -> str:
        return self.url[len(_JOURNAL):].removeprefix("//")

    def open(self) -> BaseStorage:
        """The Optuna storage: a ``JournalStorage`` on a journal file, else Optuna's (cached)
        RDB storage, SQLite files in WAL mode (:func:`_sqlite_fast`).

        Raises:
            InvalidInputError: an unknown URL scheme, a missing database driver, an
                unreachable server, a file that is not an Optuna SQLite database (the
                previous format named), a folder that cannot be created.
        """
        if self.url.startswith(_JOURNAL):
            return _open_journal(Path(self._journal_file()), self.label)
        path = self.path
        if path is not None and (not str(path) or str(path) == ":memory:"):
            raise InvalidInputError(
                f"search storage {self.label!r} is an in-memory database, which a search "
                "cannot resume from or share; give a file (sqlite:///PATH) or a server URL")
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInputError(
                    f"cannot create the folder of search storage {str(path)!r}: {exc}") from None
            _check_sqlite_file(path)
        return _rdb_storage(_with_driver(self.url, self.label), self.label)


def open_storage(storage: BaseStorage | StorageURL | str | Path) -> tuple[BaseStorage, str]:
    """An Optuna storage and its label from a URL, a path or a storage.

    Args:
        storage: ``sqlite:///PATH``, ``postgresql://...``, ``mysql://...``, ``journal:PATH``,
            a plain path (SQLite file; its folder is created), a :class:`StorageURL` or an
            Optuna storage.

    Returns:
        The storage (RDB storages are Optuna's cached ones) and a label (password hidden).

    Raises:
        InvalidInputError: see :meth:`StorageURL.open`.
    """
    route_optuna_logs()
    if isinstance(storage, BaseStorage):
        return storage, type(storage).__name__
    url = StorageURL.parse(storage)
    return url.open(), url.label


def _open_journal(path: Path, label: str) -> BaseStorage:
    from optuna.storages.journal import JournalFileBackend

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)  # replays the file's log
    except OSError as exc:
        raise InvalidInputError(f"cannot open journal storage {label!r}: {exc}") from None
    except Exception as exc:  # the log's lines are not Optuna's JSON operations
        raise InvalidInputError(
            f"journal storage {label!r} is not an Optuna journal file ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'unreadable'}); "
            "give another file") from None


#: the drivers SQLAlchemy can use for ``postgresql://`` (its default first), module names
_POSTGRES_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))


def _with_driver(url: str, label: str) -> str:
    """``url`` with the PostgreSQL driver that is installed named, when it names none:
    SQLAlchemy 2.1 reads ``postgresql://`` as psycopg 3, while ``nasforge[postgres]`` may
    have installed psycopg2.

    Raises:
        InvalidInputError: no PostgreSQL driver is installed.
    """
    if not url.startswith("postgresql://") and not url.startswith("postgres://"):
        return url
    import importlib.util

    rest = url.split("://", 1)[1]
    for name, module in _POSTGRES_DRIVERS:
        if importlib.util.find_spec(module) is not None:
            if name == "psycopg" and "client_encoding" not in rest:
                # psycopg 3 returns bytes for text from a SQL_ASCII database (initdb's default
                # under the C locale), which SQLAlchemy cannot read; ask for UTF-8 text
                rest += ("&" if "?" in rest else "?") + "client_encoding=utf8"
            return f"postgresql+{name}://{rest}"
    raise InvalidInputError(
        f"storage {label!r} needs a PostgreSQL driver (psycopg or psycopg2), and none is "
        "installed: pip install 'nasforge[postgres]'")


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not SQLite, or a SQLite file of the previous nasforge format."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE "
                                                "type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidInputError(
            f"search storage {str(path)!r} is not a SQLite database ({exc}); give another file"
        ) from None
    if {"candidates", "steps", "studies"} <= tables and "trials" not in tables:
        raise InvalidInputError(
            f"search storage {str(path)!r} is in nasforge's previous format (SQLite tables "
            "studies/candidates/steps), which this version does not read; rerun the search "
            "into a new file (searches are Optuna studies now)"
        )


def _sqlite_fast(storage: BaseStorage) -> BaseStorage:
    """WAL journal and ``synchronous=NORMAL`` for a SQLite storage: readers (other workers,
    optuna-dashboard) no longer block writers, and a commit costs no fsync of its own. A
    committed trial still survives ``kill -9`` of any process (only a power cut may lose the
    last commits)."""
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if engine is None or engine.name != "sqlite":
        return storage
    from sqlalchemy import event

    def pragmas(con: Any, _record: Any) -> None:
        cur = con.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # connections opened from now on get the pragmas
    return storage


def _missing_module(exc: BaseException) -> str | None:
    """The module whose absence caused ``exc`` (a driver SQLAlchemy could not import)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        if isinstance(cur, ModuleNotFoundError):
            return cur.name or str(cur)
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return None


def _rdb_storage(url: str, label: str, tries: int = 4) -> BaseStorage:
    scheme = url.split("://", 1)[0]
    try:
        return _sqlite_fast(optuna.storages.get_storage(url))
    except Exception as exc:
        import sqlalchemy.exc as sa_exc

        missing = _missing_module(exc)
        if missing is not None:
            raise InvalidInputError(
                f"storage {label!r} needs the database driver {missing!r}, which is not "
                "installed: pip install 'nasforge[postgres]' (PostgreSQL) or the driver for "
                f"{scheme!r}"
            ) from None

        cause: BaseException = exc
        while cause.__cause__ is not None and not isinstance(cause, sa_exc.SQLAlchemyError):
            cause = cause.__cause__
        if isinstance(cause, sa_exc.NoSuchModuleError | sa_exc.ArgumentError):
            raise InvalidInputError(
                f"storage URL scheme {scheme!r} is not one Optuna knows ({label!r}); use "
                "sqlite:///PATH, postgresql://USER@HOST:PORT/DB, mysql://..., or journal:PATH"
            ) from None
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if tries > 1 and (isinstance(cause, sa_exc.IntegrityError) or (
                isinstance(cause, sa_exc.OperationalError | sa_exc.ProgrammingError) and any(
                    m in first for m in ("already exists", "closed the connection", "locked")))):
            # workers creating the schema of a fresh database at once: one wins, retry
            time.sleep(0.5)
            return _rdb_storage(url, label, tries - 1)
        hint = ("check the file and its folder" if url.startswith("sqlite:") else
                "check that the database server runs and the URL (host, port, user, database) "
                "is right")
        raise InvalidInputError(f"cannot open search storage {label!r}: {first}; {hint}"
                                ) from None
