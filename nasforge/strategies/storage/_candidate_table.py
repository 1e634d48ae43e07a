"""A single writer's candidates on an RDB storage: one row each in nasforge's own table,
``nasforge_candidates``, of the study's database, until the study is shared.

An Optuna trial is 8 rows over 3 tables for ``nas search``'s candidate (the trial, its
``arch``, ``arch_id`` and ``step`` attributes, one row per objective value), and SQLite's
insert of each row with its index entries costs about a microsecond. A predictor- or
table-driven search evaluates a candidate in ~50 µs, so those rows made persistence cost
more than a third of the search (``benchmarks/ofa_search.py --cli``). Here a table row,
``(study_id, number, step, worker, arch_id, key, arch, vals, t_start, t_complete, indices,
n)``, holds the ``n`` candidates numbered ``number`` to ``number + n - 1`` of one round
(``step``) of one worker, evaluated from ``t_start`` to ``t_complete`` (POSIX seconds), with
``vals`` their objective values as little-endian float64 bytes (``n`` x objectives, NaN kept
as NaN, bit-exact). Their archs are stored in one of two forms:

* ``indices``: per candidate its arch's row key, its option index per column of the space's
  index matrix (one byte each for every registered space), concatenated, with ``arch`` and
  ``arch_id`` empty: a round in one row (a row per 1,024 candidates of a bigger one). The
  study's user attribute ``nasforge_rows`` (:data:`FORMAT_ATTR`) holds the space's row
  format (:attr:`~nasforge.search_spaces.ArchText.row_format`, written with the first such
  row), from which readers write the canonical JSON and hash the ``arch_id``
  (:class:`~nasforge.search_spaces.RowText`; no space needed, and the same text as
  ``Arch.to_json``). Writing the JSON and its sha1 cost more than the insert, and a row per
  candidate (11 values bound and a B-tree insert) cost more than the rest of the write
  (``benchmarks/writer_cost.py``): a round is one insert of two short byte strings.
* ``arch``, the canonical JSON, ``arch_id`` and ``key``, the dedupe key where it is not the
  ``arch_id`` (else NULL), with ``n`` 1 and ``indices`` NULL: any other arch (one not built
  from an index row, a space without a row format, a study whose stored format is another
  version's), a row each.

A table made before ``indices`` and ``n`` existed gets them when a writer opens it; its rows
are read as one JSON candidate each (``n`` NULL is 1).

The rows of a study continue its trial numbers (``number``: the study's trials, then these
rows, one sequence), and nothing else writes the study while they exist: a single writer
holds the study (:mod:`~nasforge.strategies.storage._single`). Whoever opens the study to
write it otherwise (claims workers joining, a single writer asked for Optuna trials) first
turns the rows into the trials the single writer would have written
(:func:`to_trials`: the same numbers, values and user attributes, in one transaction with
the rows' deletion), so Optuna's tools, optuna-dashboard among them, see every candidate
from then on. :class:`~nasforge.strategies.storage.study.SearchStudy` reads both.

Example:
    >>> import numpy as np, optuna
    >>> from optuna.storages import RDBStorage
    >>> rdb = RDBStorage("sqlite:///:memory:")
    >>> sid = rdb.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
    >>> new = CandidateRows(1, 0, ["a1"], [None], ['{"x": 1}'], np.array([[0.5]]), 0.0, 1.0)
    >>> insert(rdb, sid, [new], None, None)
    (1, 0)
    >>> [(r.number, r.arch_id, r.values) for r in read(rdb, sid)]
    [(0, 'a1', [0.5])]
    >>> to_trials(rdb, sid, "nasforge_values"), read(rdb, sid)
    (1, [])
    >>> t = rdb.get_all_trials(sid)[0]
    >>> t.number, t.values, t.user_attrs["arch_id"], t.user_attrs["step"]
    (0, [0.5], 'a1', 1)
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import logging
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import NamedTuple

import numpy as np
import optuna

from nasforge.search_spaces import RowText
from nasforge.search_spaces.arch import json_id
from nasforge.strategies.storage._rdb_fast import delete_study_attr
from nasforge.strategies.storage._rdb_fast import insert_many
from nasforge.strategies.storage._rdb_fast import set_study_attr
from nasforge.strategies.storage._rdb_fast import study_attr
from nasforge.strategies.storage._rdb_finished import NewTrials
from nasforge.strategies.storage._rdb_finished import lock_and_count
from nasforge.strategies.storage._rdb_finished import write_trials

__all__ = ["FORMAT_ATTR", "TABLE_NAME", "CandidateRows", "StoredRow", "count", "forget",
           "insert", "read", "to_trials"]

logger = logging.getLogger(__name__)

TABLE_NAME = "nasforge_candidates"
#: the study user attribute that holds the row format of the study's ``indices`` rows
FORMAT_ATTR = "nasforge_rows"
_COLUMNS = ("study_id", "number", "step", "worker", "arch_id", "key", "arch", "vals",
            "t_start", "t_complete", "indices", "n")
#: the columns a table made by an earlier nasforge may lack
_LATER = ("indices", "n")
_FLOAT = np.dtype("<f8")
#: the most candidates one table row holds (a round of more is several rows: a row stays a
#: few hundred kB at most)
_ROUND_ROW = 1024
#: the byte strings' declared size (MySQL: MEDIUMBLOB, not a 64 kB BLOB; others ignore it)
_BYTES = 1 << 24


@dataclass(frozen=True)
class CandidateRows:
    """Candidates of one round to insert (a single writer's, kept until its next write).

    Attributes:
        step: the round.
        worker: the writer's worker number.
        arch_ids: per candidate, its ``arch_id`` (empty where ``indices`` holds the archs).
        keys: per candidate, its dedupe key's text where that is not the ``arch_id``, else
            None.
        archs: per candidate, its canonical arch JSON (empty where ``indices`` holds the
            archs).
        values: (n, n_objectives) float64 values (NaN where an evaluation failed).
        start: when the round's evaluation started (POSIX seconds).
        complete: when it ended (POSIX seconds).
        indices: per candidate, its row key in the study's row format (``archs``,
            ``arch_ids`` and ``keys`` empty: the round is one table row); None: the JSON
            holds each arch (a table row each).
    """

    step: int
    worker: int
    arch_ids: list[str]
    keys: list[str | None]
    archs: list[str]
    values: np.ndarray
    start: float
    complete: float
    indices: Sequence[bytes] | None = None

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, study_id: int, first: int) -> list[tuple[Any, ...]]:
        """The table rows of these candidates, numbered from ``first``."""
        n = len(self)
        if not n:
            return []
        blob = np.ascontiguousarray(self.values, dtype=_FLOAT).tobytes()
        if self.indices is not None:  # a row per _ROUND_ROW candidates (a bounded row)
            width = len(blob) // n
            return [(study_id, first + i, self.step, self.worker, "", None, "",
                     blob[i * width:(i + len(part)) * width], self.start, self.complete,
                     b"".join(part), len(part))
                    for i in range(0, n, _ROUND_ROW)
                    for part in [self.indices[i:i + _ROUND_ROW]]]
        width = len(blob) // n
        repeat = itertools.repeat
        return list(zip(repeat(study_id), range(first, first + n), repeat(self.step),
                        repeat(self.worker), self.arch_ids, self.keys, self.archs,
                        [blob[i:i + width] for i in range(0, len(blob), width)],
                        repeat(self.start), repeat(self.complete), repeat(None), repeat(1),
                        strict=False))


class StoredRow(NamedTuple):
    """A candidate read back (:func:`read`)."""

    number: int
    step: int
    worker: int
    arch_id: str
    key: str | None
    arch: str
    values: list[float]
    start: float
    complete: float


@functools.cache
def _table() -> Any:
    """The table's SQLAlchemy definition (built once, on first use: no SQLAlchemy import
    before a storage is opened)."""
    from sqlalchemy import Column
    from sqlalchemy import Float
    from sqlalchemy import Integer
    from sqlalchemy import LargeBinary
    from sqlalchemy import MetaData
    from sqlalchemy import PrimaryKeyConstraint
    from sqlalchemy import String
    from sqlalchemy import Table
    from sqlalchemy import Text

    return Table(TABLE_NAME, MetaData(),
                 Column("study_id", Integer, nullable=False),
                 Column("number", Integer, nullable=False),
                 Column("step", Integer, nullable=False),
                 Column("worker", Integer, nullable=False),
                 Column("arch_id", String(64), nullable=False),
                 Column("key", Text, nullable=True),
                 Column("arch", Text, nullable=False),
                 Column("vals", LargeBinary(_BYTES), nullable=False),
                 Column("t_start", Float, nullable=False),
                 Column("t_complete", Float, nullable=False),
                 Column("indices", LargeBinary(_BYTES), nullable=True),
                 Column("n", Integer, nullable=True),
                 PrimaryKeyConstraint("study_id", "number"),
                 # SQLite: the rows are the key's B-tree (one insert per row, not a table row
                 # and an index entry: half the cost, benchmarks/writer_cost.py)
                 sqlite_with_rowid=False)


def _exists(rdb: optuna.storages.RDBStorage) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(rdb.engine).has_table(TABLE_NAME))


def _lacks(rdb: optuna.storages.RDBStorage) -> list[str]:
    """The columns of :data:`_LATER` the table lacks (one made by an earlier nasforge)."""
    from sqlalchemy import inspect

    have = {c["name"] for c in inspect(rdb.engine).get_columns(TABLE_NAME)}
    return [c for c in _LATER if c not in have]


def _create(rdb: optuna.storages.RDBStorage) -> None:
    """Create the table unless it exists, or add the columns one made before them lacks (two
    processes doing so at once: the loser's error is dropped once the table is right)."""
    if _exists(rdb) and not _lacks(rdb):
        return
    try:
        if not _exists(rdb):
            _table().create(rdb.engine, checkfirst=True)
        for name in _lacks(rdb):
            kind = _table().c[name].type.compile(dialect=rdb.engine.dialect)
            with rdb.engine.begin() as con:
                con.exec_driver_sql(f"ALTER TABLE {TABLE_NAME} ADD COLUMN {name} {kind}")
            logger.info("the candidate table got its %s column", name)
    except Exception:
        if not _exists(rdb) or _lacks(rdb):
            raise


def _session(rdb: optuna.storages.RDBStorage) -> Any:
    from optuna.storages._rdb.storage import _create_scoped_session

    return _create_scoped_session(rdb.scoped_session)


def _count(session: Any, study_id: int, sized: bool = True) -> int:
    """How many candidates the study's rows hold (``sized``: the table has ``n``)."""
    from sqlalchemy import func
    from sqlalchemy import select

    t = _table()
    each = func.sum(func.coalesce(t.c.n, 1)) if sized else func.count()
    return int(session.scalar(select(each).select_from(t).where(
        t.c.study_id == study_id)) or 0)


def count(rdb: optuna.storages.RDBStorage, study_id: int) -> int:
    """How many candidates of the study are in the table (0 where it does not exist)."""
    if not _exists(rdb):
        return 0
    sized = "n" not in _lacks(rdb)
    with _session(rdb) as session:
        return _count(session, study_id, sized)


def forget(rdb: optuna.storages.RDBStorage, study_id: int) -> None:
    """Delete the rows of ``study_id``: a study just created under the id of one deleted
    through Optuna, whose rows stayed."""
    from sqlalchemy import delete

    if _exists(rdb):
        with _session(rdb) as session:
            session.execute(delete(_table()).where(_table().c.study_id == study_id))


def insert(rdb: optuna.storages.RDBStorage, study_id: int, news: Sequence[CandidateRows],
           study_attr: tuple[str, Any] | None, first_number: int | None, *,
           create: bool = True, row_format: dict[str, Any] | None = None) -> tuple[int, int]:
    """Insert the candidates of ``news`` and set the study user attribute ``study_attr``, in
    one transaction.

    Args:
        first_number: the number of the first new candidate, known to the study's only
            writer from its previous insert; None: the study's trials and rows counted under
            its write lock.
        create: create the table first unless it exists (False: the caller knows it does).
        row_format: the row format of the ``indices`` of ``news``, stored as the study's
            :data:`FORMAT_ATTR` in the same transaction (None: stored already, or no
            candidate has indices).

    Returns:
        How many candidates were inserted and the number of the first.
    """
    n = sum(len(new) for new in news)
    n0 = first_number
    if n and create:
        _create(rdb)
    with _session(rdb) as session:
        if n:
            if n0 is None:
                n0 = lock_and_count(session, study_id) + _count(session, study_id)
            firsts = itertools.accumulate([n0] + [len(new) for new in news])
            with _gc_held():  # tuples dropped right after (see _gc_held)
                _insert_rows(session, [row for new, first in zip(news, firsts, strict=False)
                                       for row in new.rows(study_id, first)])
        if row_format is not None:
            set_study_attr(session, study_id, FORMAT_ATTR, row_format)
        if study_attr is not None:
            set_study_attr(session, study_id, *study_attr)
    return n, -1 if n0 is None else n0


@contextlib.contextmanager
def _gc_held() -> Iterator[None]:
    """The garbage collector held while rows are built and inserted: they are tuples without
    cycles, dropped right after, and the allocations would trigger a full pass over every
    object the search holds (a third of the write's cost at 12,000 candidates)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _insert_rows(session: Any, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows of the table: the driver's ``executemany`` on SQLite (one prepared
    statement stepped per row, no flattened parameter tuple: cheaper than a multi-row
    ``VALUES`` for rows this wide); a batched Core insert elsewhere."""
    con = session.connection()
    if con.dialect.name == "sqlite":
        con.exec_driver_sql(_INSERT, rows)
    else:
        insert_many(session, _table(), _COLUMNS, rows)


_INSERT = (f"INSERT INTO {TABLE_NAME} ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")


def _read(session: Any, study_id: int, since: int, lacks: Sequence[str]) -> list[StoredRow]:
    """The candidates numbered ``since`` and on, in number order (``lacks``: the columns of
    :data:`_LATER` the table lacks)."""
    from sqlalchemy import func
    from sqlalchemy import literal
    from sqlalchemy import select

    t = _table()
    columns = [t.c[c] if c not in lacks else literal(None) for c in _COLUMNS[1:]]
    got = session.execute(select(*columns).where(
        t.c.study_id == study_id,
        t.c.number + (func.coalesce(t.c.n, 1) if "n" not in lacks else 1) > since,
    ).order_by(t.c.number)).all()
    texts = _RowTexts(session, study_id)
    out = []
    for number, step, worker, aid, key, arch, vals, t0, t1, indices, n in got:
        keys, values = _split(number, indices, 1 if n is None else n, vals)
        for i, (one, v) in enumerate(zip(keys, values, strict=True)):
            if number + i >= since:
                own_id, own_arch = texts(number + i, aid, arch, one)
                out.append(StoredRow(int(number) + i, int(step), int(worker), own_id, key,
                                     own_arch, v, float(t0), float(t1)))
    return out


def _split(number: int, indices: Any, n: int, vals: Any
           ) -> tuple[list[bytes | None], list[list[float]]]:
    """Per candidate of a row, its row key (None: a JSON row) and its values.

    Raises:
        ValueError: the row's sizes do not fit ``n`` (it was changed outside nasforge).
    """
    values = _values(number, vals)
    if n < 1 or len(values) % n or (indices is None and n != 1):
        raise ValueError(f"the row of candidate {number} holds {len(values)} values and "
                         f"{'no' if indices is None else len(indices)} index bytes for "
                         f"{n} candidates")
    k = len(values) // n
    per = [values[i * k:(i + 1) * k] for i in range(n)]
    if indices is None:
        return [None], per
    blob = bytes(indices)
    if len(blob) % n:
        raise ValueError(f"the row of candidate {number} holds {len(blob)} index bytes for "
                         f"{n} candidates")
    w = len(blob) // n
    return [blob[i * w:(i + 1) * w] for i in range(n)], per


class _RowTexts:
    """``(arch_id, arch JSON)`` of a stored row: its own, or those of its ``indices`` in the
    study's row format (read once, on the first such row)."""

    def __init__(self, session: Any, study_id: int) -> None:
        self._session = session
        self._study_id = study_id
        self._rows: RowText | None = None

    def __call__(self, number: int, aid: Any, arch: Any, indices: Any) -> tuple[str, str]:
        """Raises:
            ValueError: the row's indices are not a row of the study's format, or the study
                has none (the row was changed outside nasforge)."""
        if indices is None:
            return str(aid), str(arch)
        try:
            text = self._format().checked_text(bytes(indices))
        except ValueError as exc:
            raise ValueError(f"the indices of candidate {number} are not an arch of the "
                             f"study's row format: {exc}") from None
        return json_id(text), text

    def _format(self) -> RowText:
        if self._rows is None:
            got = study_attr(self._session, self._study_id, FORMAT_ATTR)
            if got is None:
                raise ValueError(f"the study has no {FORMAT_ATTR} attribute")
            self._rows = RowText(got)
        return self._rows


def _values(number: int, blob: Any) -> list[float]:
    """The values of a row's ``vals`` (bytes; a server driver's memoryview).

    Raises:
        ValueError: not float64 bytes (the row was changed outside nasforge).
    """
    if not isinstance(blob, bytes | bytearray | memoryview) or not len(blob) or len(blob) % 8:
        raise ValueError(f"the values of candidate {number} are not float64 bytes "
                         f"({type(blob).__name__} {str(blob)[:40]!r})")
    return np.frombuffer(bytes(blob), dtype=_FLOAT).tolist()


def read(rdb: optuna.storages.RDBStorage, study_id: int, since: int = 0) -> list[StoredRow]:
    """The study's rows numbered ``since`` and on, in number order (none where the table
    does not exist)."""
    if not _exists(rdb):
        return []
    lacks = _lacks(rdb)
    with _session(rdb) as session:
        return _read(session, study_id, since, lacks)


def to_trials(rdb: optuna.storages.RDBStorage, study_id: int, values_attr: str) -> int:
    """Turn the study's rows into the finished trials a single writer writes
    (:func:`~nasforge.strategies.storage._rdb_finished.write_trials`: ``COMPLETE`` with
    their values, ``FAIL`` with NaN values in ``values_attr``; ``arch``, ``arch_id``,
    ``step`` and, where not the defaults, ``key`` and ``worker``), numbered in the rows'
    order after the study's trials, and delete the rows and the study's row format: one
    transaction. How many."""
    from sqlalchemy import delete

    if not _exists(rdb):
        return 0
    lacks = _lacks(rdb)
    with _session(rdb) as session:
        n0 = lock_and_count(session, study_id)
        rows = _read(session, study_id, 0, lacks)
        if not rows:
            return 0
        if rows[0].number != n0:
            logger.warning("study %d: its candidate rows start at number %d, its trials end "
                           "at %d; the trials are numbered from %d", study_id,
                           rows[0].number, n0, n0)
        write_trials(session, study_id, _as_trials(rows), values_attr, n0)
        session.execute(delete(_table()).where(_table().c.study_id == study_id))
        delete_study_attr(session, study_id, FORMAT_ATTR)  # no row left to read in it
    logger.debug("study %d: %d candidate rows written as Optuna trials", study_id, len(rows))
    return len(rows)


def _as_trials(rows: list[StoredRow]) -> list[NewTrials]:
    """The rows as :class:`NewTrials`, one per run of rows of one round, worker and times."""
    out = []
    for (step, worker, t0, t1), group in itertools.groupby(
            rows, key=lambda r: (r.step, r.worker, r.start, r.complete)):
        got = list(group)
        common: dict[str, Any] = {"step": step}
        if worker:
            common["worker"] = worker
        out.append(NewTrials(
            [], [], [[] for _ in got],
            [{"arch": r.arch, "arch_id": r.arch_id} if r.key is None else
             {"arch": r.arch, "arch_id": r.arch_id, "key": r.key} for r in got],
            np.asarray([r.values for r in got], dtype=np.float64),
            datetime.fromtimestamp(t0), datetime.fromtimestamp(t1), common))
    return out
