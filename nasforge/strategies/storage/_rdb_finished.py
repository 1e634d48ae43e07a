"""The RDB fast path of a single writer (:mod:`~nasforge.strategies.storage._single`): its new
trials inserted as finished trials, with their user attributes and values and the study user
attribute of the round's strategy state, in one transaction and one batched statement per
table (what ``create_new_trial(template_trial=...)`` and ``set_study_user_attr`` write, with
no claims before them). It sits behind the same check as the claims' fast path,
:func:`~nasforge.strategies.storage._rdb_fast.rdb_backend`, and writes rows with its
helpers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any

import numpy as np
import optuna

from nasforge.strategies.storage._rdb_fast import ATTR_COLUMNS
from nasforge.strategies.storage._rdb_fast import PARAM_COLUMNS
from nasforge.strategies.storage._rdb_fast import TRIAL_COLUMNS
from nasforge.strategies.storage._rdb_fast import VALUE_COLUMNS
from nasforge.strategies.storage._rdb_fast import insert_many
from nasforge.strategies.storage._rdb_fast import json_text
from nasforge.strategies.storage._rdb_fast import set_study_attr
from nasforge.strategies.storage._rdb_fast import utc_naive

__all__ = ["NewTrials", "insert_finished", "lock_and_count", "write_trials"]


@dataclass(frozen=True)
class NewTrials:
    """Finished trials to insert at once (a single writer's round, no claims before them).

    Attributes:
        columns: ``(param name, distribution JSON)`` per column of ``rows``.
        internal: per column, the stored value (internal repr) of each option index.
        rows: per trial, its option indices (empty lists: no params).
        user_attrs: per trial, its own user attributes.
        values: (n, n_objectives) values; a row with a NaN is a ``FAIL`` trial holding its
            values in the attribute ``values_attr`` of :func:`insert_finished`.
        start: the trials' start time.
        complete: the trials' completion time.
        common_attrs: user attributes every trial has (the round, the worker, ...).
    """

    columns: list[tuple[str, str]]
    internal: list[list[float]]
    rows: list[list[int]]
    user_attrs: list[dict[str, Any]]
    values: np.ndarray
    start: datetime
    complete: datetime
    common_attrs: dict[str, Any] = field(default_factory=dict)



def insert_finished(rdb: optuna.storages.RDBStorage, study_id: int,
                    news: Sequence[NewTrials], values_attr: str,
                    study_attr: tuple[str, Any] | None = None,
                    first_number: int | None = None) -> tuple[list[int], int]:
    """Insert finished trials (``COMPLETE`` with their values, ``FAIL`` with NaN values in
    ``values_attr``) with their params and user attributes, and set the study user attribute
    ``study_attr``, in one transaction (what ``create_new_trial(template_trial=...)`` and
    ``set_study_user_attr`` write, one batched insert per table): a single writer's rounds,
    with no claims before them.

    Args:
        news: the trials, in number order (one :class:`NewTrials` per round or chunk).
        first_number: the number of the first new trial, known to the study's only writer
            from its previous insert; None: count the study's trials under its write lock.

    Returns:
        The new trials' ids, in order, and the number of the first.
    """
    from optuna.storages._rdb.storage import _create_scoped_session

    n = sum(len(new.user_attrs) for new in news)
    n0 = first_number
    with _create_scoped_session(rdb.scoped_session) as session:
        ids: list[int] = []
        if n and n0 is None:
            n0 = lock_and_count(session, study_id)
        if n and n0 is not None:
            ids = write_trials(session, study_id, news, values_attr, n0)
        if study_attr is not None:
            set_study_attr(session, study_id, *study_attr)
    return ids, -1 if n0 is None else n0


def lock_and_count(session: Any, study_id: int) -> int:
    """Take the study's write lock (a no-op update of its row) and count its trials: the
    number of the next trial while the lock is held."""
    from optuna.storages._rdb import models
    from sqlalchemy import func
    from sqlalchemy import select
    from sqlalchemy import update

    S, T = models.StudyModel, models.TrialModel
    session.execute(update(S).where(S.study_id == study_id).values(study_name=S.study_name))
    return int(session.scalar(select(func.count(T.trial_id)).where(
        T.study_id == study_id)) or 0)


def write_trials(session: Any, study_id: int, news: Sequence[NewTrials], values_attr: str,
                 n0: int) -> list[int]:
    """Insert the finished trials of ``news``, numbered from ``n0``, with their params, user
    attributes and values, inside ``session``; their ids, in number order."""
    ids = _insert_trials(session, study_id, news, n0)
    _insert_rows(session, ids, news, values_attr)
    return ids


def _insert_trials(session: Any, study_id: int, news: Sequence[NewTrials], n0: int
                   ) -> list[int]:
    """Insert the trials of ``news`` (numbered from ``n0``); their ids, in number order."""
    from optuna.storages._rdb import models
    from sqlalchemy import func
    from sqlalchemy import select

    T = models.TrialModel
    # ids grow: the new trials are above the largest id (a primary-key lookup), so reading
    # them back never scans the study's earlier trials
    top = int(session.scalar(select(func.max(T.trial_id))) or 0)
    table = T.__table__
    dialect = session.connection().dialect  # its own form of a datetime (SQLite: text)
    stamp = table.c.datetime_start.type.dialect_impl(dialect).bind_processor(dialect)
    rows, number = [], n0
    for new in news:  # the start and end of a chunk are one value each: converted once
        start, done = utc_naive(new.start), utc_naive(new.complete)
        if stamp is not None:
            start, done = stamp(start), stamp(done)
        for bad in np.isnan(new.values).any(axis=1).tolist():
            rows.append((study_id, number, start, done, "FAIL" if bad else "COMPLETE"))
            number += 1
    insert_many(session, table, TRIAL_COLUMNS, rows)
    ours = (T.trial_id > top, T.study_id == study_id, T.number >= n0)
    # the usual case, checked in one aggregate: the new ids are one run, each its number plus
    # one offset (no row per trial read back)
    low, k, off_min, off_max = session.execute(select(
        func.min(T.trial_id), func.count(T.trial_id), func.min(T.trial_id - T.number),
        func.max(T.trial_id - T.number)).where(*ours)).one()
    if k == len(rows) and off_min == off_max and off_min is not None:
        return list(range(int(low), int(low) + len(rows)))
    return [int(r[0]) for r in session.execute(
        select(T.trial_id).where(*ours).order_by(T.number))]


def _insert_rows(session: Any, ids: list[int], news: Sequence[NewTrials],
                 values_attr: str) -> None:
    """Insert the params, user attributes and values of the trials ``ids`` of ``news``."""
    from optuna.storages._rdb import models

    V = models.TrialValueModel
    params: list[tuple[Any, ...]] = []
    user: list[tuple[Any, ...]] = []
    stored: list[tuple[Any, ...]] = []
    i = 0
    for new in news:
        tids = ids[i:i + len(new.user_attrs)]
        i += len(tids)
        cols = [(name, dj, internal) for (name, dj), internal in zip(
            new.columns, new.internal, strict=True)]
        if cols:
            params += [(tid, name, internal[j], dj) for tid, row in zip(tids, new.rows,
                                                                        strict=True)
                       for (name, dj, internal), j in zip(cols, row, strict=True)]
        rows = new.values.tolist()
        nan = np.isnan(new.values).any(axis=1).tolist()
        finite = np.isfinite(new.values).all(axis=1).tolist()
        user += _attr_rows(tids, new.user_attrs)
        for k, v in new.common_attrs.items():
            user += zip(tids, itertools.repeat(k), itertools.repeat(json_text(v)))
        user += [(tid, values_attr, json.dumps([None if x != x else x for x in row]))
                 for tid, row, bad in zip(tids, rows, nan, strict=True) if bad]
        # a finite value is stored as it is (``value_to_stored_repr``'s own first case)
        if all(finite):  # column by column, no Python loop per value
            for j, col in enumerate(new.values.T.tolist()):
                stored += zip(tids, itertools.repeat(j), col, itertools.repeat("FINITE"))
        else:
            stored += [(tid, j, x, "FINITE") for tid, row, ok in zip(tids, rows, finite,
                                                                      strict=True)
                       if ok for j, x in enumerate(row)]
        stored += [(tid, j, v, kind.name) for tid, row, bad, ok in zip(
            tids, rows, nan, finite, strict=True) if not bad and not ok
            for j, x in enumerate(row) for v, kind in [V.value_to_stored_repr(float(x))]]
    insert_many(session, models.TrialParamModel.__table__, PARAM_COLUMNS, params)
    insert_many(session, models.TrialUserAttributeModel.__table__, ATTR_COLUMNS, user)
    insert_many(session, V.__table__, VALUE_COLUMNS, stored)


def _attr_rows(tids: list[int], attrs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """``(trial_id, key, JSON)`` of each trial's own user attributes: key by key when every
    trial has the same keys (strings through the JSON module's C encoder, no Python call per
    value), trial by trial otherwise."""
    keys = attrs[0].keys() if attrs else {}.keys()
    if not all(ua.keys() == keys for ua in attrs):
        return [(tid, k, json_text(v)) for tid, ua in zip(tids, attrs, strict=True)
                for k, v in ua.items()]
    out: list[tuple[Any, ...]] = []
    for k in keys:
        vals = [ua[k] for ua in attrs]
        texts = map(encode_basestring_ascii if all(type(v) is str for v in vals) else json_text,
                    vals)
        out += zip(tids, itertools.repeat(k), texts)
    return out
