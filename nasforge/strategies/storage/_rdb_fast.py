"""The RDB fast path: a chunk's claims inserted, checked and the losers released in one
transaction, its completions (and the strategy state of the round) written in another, and
the study read back from a trial number on, with Optuna's own table definitions (private
names of ``optuna.storages._rdb``) and one batched statement per table instead of Optuna's
one ORM object and query per param and attribute.

A single writer's inserts (finished trials, no claims) are
:mod:`~nasforge.strategies.storage._rdb_finished`, with the row helpers of this module
(:func:`insert_many`, :func:`json_text`, :func:`set_study_attr`, :func:`utc_naive`).

Everything here sits behind one check, :func:`rdb_backend`: the path is taken only on an
Optuna version listed in :data:`TESTED_OPTUNA` (where ``tests/strategies/test_rdb_fast.py``
found it writes what the public storage API writes); on any other version the claims use the
public API (slower, same trials). Widen the list after that test passes on a new version.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import sqlite3
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from datetime import timezone
from json.encoder import encode_basestring_ascii
from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

__all__ = ["ATTR_COLUMNS", "PARAM_COLUMNS", "TESTED_OPTUNA", "TRIAL_COLUMNS", "VALUE_COLUMNS",
           "finish_trials", "insert_claims", "insert_many", "json_text", "rdb_backend",
           "read_trials", "set_study_attr", "utc_naive"]

logger = logging.getLogger(__name__)

#: (major, minor) versions of Optuna the fast path was compared against the public API on
TESTED_OPTUNA = ((5, 1),)

PARAM_COLUMNS = ("trial_id", "param_name", "param_value", "distribution_json")
ATTR_COLUMNS = ("trial_id", "key", "value_json")
VALUE_COLUMNS = ("trial_id", "objective", "value", "value_type")
TRIAL_COLUMNS = ("study_id", "number", "datetime_start", "datetime_complete", "state")

#: ``(trial_id, why)`` of the claims to release (``FAIL`` with ``released_attr`` = ``why``)
Releases = list[tuple[int, str]]


@functools.lru_cache(maxsize=4)
def _tested(version: str) -> bool:
    parts = version.split(".")
    try:
        ok = (int(parts[0]), int(parts[1])) in TESTED_OPTUNA
    except (IndexError, ValueError):
        ok = False
    if not ok:
        logger.info("Optuna %s is not one nasforge's RDB fast path was tested on (%s); "
                    "claims use Optuna's public storage API", version,
                    ", ".join(f"{a}.{b}" for a, b in TESTED_OPTUNA))
    return ok


def rdb_backend(storage: BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDB storage under ``storage`` (Optuna's cached wrapper) when the fast path may run
    on it: an RDB storage and a tested Optuna version. None: use the public API."""
    backend = getattr(storage, "_backend", None)
    if not isinstance(backend, optuna.storages.RDBStorage) or not _tested(optuna.__version__):
        return None
    return backend


def utc_naive(t: datetime) -> datetime:
    """A datetime as Optuna's RDB storage stores it (naive UTC)."""
    return t.astimezone(timezone.utc).replace(tzinfo=None)


def insert_claims(rdb: optuna.storages.RDBStorage, study_id: int,
                  templates: Sequence[FrozenTrial], attrs: Sequence[str], since: int,
                  decide: Callable[[list[int], list[tuple[Any, ...]]], Releases],
                  released_attr: str) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Insert ``RUNNING`` trials with their params and user attributes, read the study's
    trials numbered ``since`` and on, and release what ``decide`` says, in one transaction
    that holds the study's write lock from the start (a no-op update of its row: the row lock
    on a server database, the database's write lock on SQLite), so trial numbers are unique
    and the read sees every claim committed before ours. One batched insert per table. The
    params' distributions are the study's fixed ones, so Optuna's compatibility check has
    nothing to check.

    Args:
        rdb: from :func:`rdb_backend`.
        study_id: the study.
        templates: the trials to insert (their params, distributions, user attributes and
            start time).
        attrs: the user attributes to read of every trial.
        since: the lowest trial number to read (trials below it were read before and are
            finished).
        decide: given the new trials' ids and the rows read, the trials to release.
        released_attr: the user attribute a release writes (its reason).

    Returns:
        The new trials' ids, and per trial numbered ``since`` and on (ours included)
        ``(trial_id, number, state, *json)``: the stored JSON text of each of ``attrs``, None
        where the trial lacks it.
    """
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func
    from sqlalchemy import insert
    from sqlalchemy import select
    from sqlalchemy import update

    T = models.TrialModel
    with _create_scoped_session(rdb.scoped_session) as session:
        session.execute(update(models.StudyModel).where(
            models.StudyModel.study_id == study_id).values(
            study_name=models.StudyModel.study_name))
        n0 = int(session.scalar(select(func.count(T.trial_id)).where(
            T.study_id == study_id)) or 0)
        session.execute(insert(T.__table__), [
            {"study_id": study_id, "number": n0 + i, "state": TrialState.RUNNING,
             "datetime_start": utc_naive(t.datetime_start or datetime.now())}
            for i, t in enumerate(templates)])
        ids = [int(r[0]) for r in session.execute(
            select(T.trial_id).where(T.study_id == study_id, T.number >= n0).order_by(
                T.number))]
        dist_json: dict[str, str] = {}
        internal: dict[str, dict[Any, int]] = {}
        params: list[tuple[Any, ...]] = []
        user: list[tuple[Any, ...]] = []
        for tid, t in zip(ids, templates, strict=True):
            dists = t.distributions
            for name, value in t.params.items():
                dist = dists[name]
                if name not in dist_json:
                    dist_json[name] = distribution_to_json(dist)
                    internal[name] = _choice_index(dist)
                j = internal[name].get(value)
                params.append((tid, name, dist.to_internal_repr(value) if j is None
                               else float(j), dist_json[name]))
            user.extend((tid, k, json.dumps(v)) for k, v in t.user_attrs.items())
        insert_many(session, models.TrialParamModel.__table__, PARAM_COLUMNS, params)
        insert_many(session, models.TrialUserAttributeModel.__table__, ATTR_COLUMNS, user)
        rows = _read(session, study_id, since, attrs)
        _release(session, decide(ids, rows), released_attr)
    return ids, rows


def json_text(value: Any) -> str:
    """``json.dumps(value)``, without its per-call set-up for a string or an int (the JSON
    module's own C encoder of strings, ``int.__repr__``: the same text)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return repr(value)
    return json.dumps(value)


def _choice_index(dist: Any) -> dict[Any, int]:
    """External value -> internal repr (its index) of a categorical distribution's choices,
    the first index where choices compare equal (as ``to_internal_repr``); empty for other
    distributions (their own ``to_internal_repr`` is used)."""
    from optuna.distributions import CategoricalDistribution

    out: dict[Any, int] = {}
    if isinstance(dist, CategoricalDistribution):
        for i, c in enumerate(dist.choices):
            out.setdefault(c, i)
    return out


def insert_many(session: Any, table: Any, columns: tuple[str, ...],
                 rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (plain values of ``columns``; an enum column's value as its name) into
    ``table``: multi-row ``INSERT ... VALUES (...), (...)`` statements of the driver on SQLite
    (SQLAlchemy's per-row bind processing costs as much as SQLite's insert, and one statement
    of many rows a third less than ``executemany``'s row by row), one batched Core insert
    elsewhere (SQLAlchemy's multi-row ``VALUES`` batches are what make a server's insert
    fast)."""
    from sqlalchemy import insert

    if not rows:
        return
    con = session.connection()
    if con.dialect.name != "sqlite":
        session.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in rows])
        return
    per = _SQLITE_VARIABLES // len(columns)
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        con.exec_driver_sql(_multi_insert(table.name, columns, len(chunk)),
                            tuple(itertools.chain.from_iterable(chunk)))


#: bound variables per SQLite statement (SQLITE_MAX_VARIABLE_NUMBER is 32766 since 3.32,
#: 999 before; Python's sqlite3 module needs 3.15 or later)
_SQLITE_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


@functools.lru_cache(maxsize=32)
def _multi_insert(table: str, columns: tuple[str, ...], n: int) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...), ... `` for ``n`` rows."""
    names = ", ".join(f'"{c}"' for c in columns)
    row = f"({', '.join('?' for _ in columns)})"
    return f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * n)}"


def _read(session: Any, study_id: int, since: int, attrs: Sequence[str]
          ) -> list[tuple[Any, ...]]:
    """``(trial_id, number, state, *json of attrs)`` of the study's trials numbered
    ``since`` and on, in number order."""
    return [tuple(r) for r in session.execute(_read_statement(tuple(attrs)),
                                              {"study_id": study_id, "since": since})]


@functools.lru_cache(maxsize=8)
def _read_statement(attrs: tuple[str, ...]) -> Any:
    """The query of :func:`_read`, built once (SQLAlchemy then reuses its compiled form)."""
    from optuna.storages._rdb import models
    from sqlalchemy import bindparam
    from sqlalchemy import select

    T = models.TrialModel.__table__
    A = models.TrialUserAttributeModel.__table__
    joined = [A.alias(f"a{i}") for i in range(len(attrs))]
    query = select(T.c.trial_id, T.c.number, T.c.state, *(a.c.value_json for a in joined))
    source = T
    for a, key in zip(joined, attrs, strict=True):
        source = source.outerjoin(a, (a.c.trial_id == T.c.trial_id) & (a.c.key == key))
    return query.select_from(source).where(
        T.c.study_id == bindparam("study_id"), T.c.number >= bindparam("since")).order_by(
        T.c.number, T.c.trial_id)


def _release(session: Any, releases: Releases, released_attr: str) -> None:
    """Set the still-running trials of ``releases`` ``FAIL`` with their reason (what
    ``set_trial_user_attr`` and ``set_trial_state_values`` do per trial)."""
    from optuna.storages._rdb import models
    from sqlalchemy import insert
    from sqlalchemy import update

    T = models.TrialModel
    now = utc_naive(datetime.now())
    for tid, why in releases:
        c = T.__table__.c
        done = session.execute(update(T.__table__).where(
            c.trial_id == tid, c.state == TrialState.RUNNING).values(
            state=TrialState.FAIL, datetime_complete=now))
        if done.rowcount:
            session.execute(insert(models.TrialUserAttributeModel.__table__).values(
                trial_id=tid, key=released_attr, value_json=json.dumps(why)))


def read_trials(rdb: optuna.storages.RDBStorage, study_id: int, since: int,
                attrs: Sequence[str]) -> list[tuple[Any, ...]]:
    """The study's trials numbered ``since`` and on, in number order:
    ``(trial_id, number, state, values, *json)`` with ``values`` the stored objective values
    (a list in objective order, empty when none) and the stored JSON text of each of
    ``attrs`` (None where the trial lacks it)."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    V = models.TrialValueModel
    with _create_scoped_session(rdb.scoped_session) as session:
        rows = _read(session, study_id, since, attrs)
        stored = session.execute(_values_statement(), {"study_id": study_id, "since": since})
        values: dict[int, dict[int, float]] = {}
        for tid, j, value, kind in stored:
            values.setdefault(int(tid), {})[int(j)] = V.stored_repr_to_value(value, kind)
    return [(r[0], r[1], r[2], [v for _, v in sorted(values.get(int(r[0]), {}).items())],
             *r[3:]) for r in rows]


@functools.lru_cache(maxsize=1)
def _values_statement() -> Any:
    """The objective values of a study's trials numbered ``since`` and on."""
    from optuna.storages._rdb import models
    from sqlalchemy import bindparam
    from sqlalchemy import select

    T, V = models.TrialModel.__table__, models.TrialValueModel.__table__
    return select(V.c.trial_id, V.c.objective, V.c.value, V.c.value_type).select_from(
        V.join(T, T.c.trial_id == V.c.trial_id)).where(
        T.c.study_id == bindparam("study_id"), T.c.number >= bindparam("since"))


def finish_trials(rdb: optuna.storages.RDBStorage, trial_ids: Sequence[int],
                  values: np.ndarray, values_attr: str,
                  study_attr: tuple[int, str, Any] | None = None) -> None:
    """Finish ``RUNNING`` claims in one transaction (what ``set_trial_state_values`` does per
    trial): ``COMPLETE`` with their values, or ``FAIL`` with the values in the user attribute
    ``values_attr`` (NaN as null) where one is NaN; and set the study user attribute
    ``study_attr`` (``(study_id, key, value)``) in the same transaction.

    Raises:
        RuntimeError: a trial is not running any more (``UpdateFinishedTrialError``).
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import select
    from sqlalchemy import update

    T, V = models.TrialModel, models.TrialValueModel
    now = utc_naive(datetime.now())
    ids = [int(t) for t in trial_ids]
    with _create_scoped_session(rdb.scoped_session) as session:
        if ids:
            states = dict(session.execute(select(T.number, T.state).where(
                T.trial_id.in_(ids)).with_for_update()).all())
            for number, state in states.items():
                if state != TrialState.RUNNING:
                    raise optuna.exceptions.UpdateFinishedTrialError(
                        f"trial {number} is {state.name}, not RUNNING")
            nan = np.isnan(values).any(axis=1).tolist()
            good = [(t, row) for t, row, bad in zip(ids, values.tolist(), nan, strict=True)
                    if not bad]
            failed = [(t, row) for t, row, bad in zip(ids, values.tolist(), nan, strict=True)
                      if bad]
            stored = [(t, j, v, kind.name) for t, row in good for j, x in enumerate(row)
                      for v, kind in [V.value_to_stored_repr(float(x))]]
            insert_many(session, V.__table__, VALUE_COLUMNS, stored)
            insert_many(session, models.TrialUserAttributeModel.__table__, ATTR_COLUMNS, [
                (t, values_attr, json.dumps([None if x != x else x for x in row]))
                for t, row in failed])
            for state, group in ((TrialState.COMPLETE, good), (TrialState.FAIL, failed)):
                if group:
                    session.execute(update(T.__table__).where(
                        T.__table__.c.trial_id.in_([t for t, _ in group])).values(
                        state=state, datetime_complete=now))
        if study_attr is not None:
            set_study_attr(session, *study_attr)


def set_study_attr(session: Any, study_id: int, key: str, value: Any) -> None:
    """What ``set_study_user_attr`` does, inside ``session``."""
    from optuna.storages._rdb import models
    from sqlalchemy import insert
    from sqlalchemy import update

    A = models.StudyUserAttributeModel
    text = json.dumps(value)
    c = A.__table__.c
    if not session.execute(update(A.__table__).where(c.study_id == study_id, c.key == key)
                           .values(value_json=text)).rowcount:
        session.execute(insert(A.__table__).values(study_id=study_id, key=key,
                                                   value_json=text))


def study_attr(session: Any, study_id: int, key: str) -> Any:
    """The study user attribute ``key`` read inside ``session`` (None where it is not set:
    ``KeyError`` is not raised)."""
    from optuna.storages._rdb import models
    from sqlalchemy import select

    c = models.StudyUserAttributeModel.__table__.c
    got = session.scalar(select(c.value_json).where(c.study_id == study_id, c.key == key))
    return None if got is None else json.loads(got)


def delete_study_attr(session: Any, study_id: int, key: str) -> None:
    """Remove the study user attribute ``key`` inside ``session`` (nothing where unset)."""
    from optuna.storages._rdb import models
    from sqlalchemy import delete

    table = models.StudyUserAttributeModel.__table__
    session.execute(delete(table).where(table.c.study_id == study_id, table.c.key == key))
