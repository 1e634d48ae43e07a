"""The RDB fast path: a chunk's claims inserted and the study read in one transaction, and its
completions written in another, with Optuna's own ORM models (private names of
``optuna.storages._rdb``) instead of two queries per param and attribute.

Everything here sits behind one check, :func:`rdb_backend`: the path is taken only on an
Optuna version listed in :data:`TESTED_OPTUNA` (where ``tests/strategies/test_rdb_fast.py``
found it writes what the public storage API writes); on any other version the claims use the
public API (slower, same trials). Widen the list after that test passes on a new version.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

__all__ = ["TESTED_OPTUNA", "finish_trials", "insert_claims", "rdb_backend"]

logger = logging.getLogger(__name__)

#: (major, minor) versions of Optuna the fast path was compared against the public API on
TESTED_OPTUNA = ((5, 1),)


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


def insert_claims(rdb: optuna.storages.RDBStorage, study_id: int,
                  templates: Sequence[FrozenTrial], attrs: Sequence[str]
                  ) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Insert ``RUNNING`` trials with their params and user attributes and read every trial
    of the study, in one transaction that holds the study's write lock from the start (a
    no-op update of its row: the row lock on a server database, the database's write lock on
    SQLite), so trial numbers are unique and the read sees every claim committed before
    ours. One batched insert per table. The params' distributions are the study's fixed
    ones, so Optuna's compatibility check has nothing to check.

    Args:
        rdb: from :func:`rdb_backend`.
        study_id: the study.
        templates: the trials to insert (their params, distributions, user attributes and
            start time).
        attrs: the user attributes to read of every trial.

    Returns:
        The new trials' ids, and per trial of the study (ours included)
        ``(trial_id, number, state, *json)``: the stored JSON text of each of ``attrs``, None
        where the trial lacks it.
    """
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func
    from sqlalchemy import update
    from sqlalchemy.orm import aliased

    with _create_scoped_session(rdb.scoped_session) as session:
        session.execute(update(models.StudyModel).where(
            models.StudyModel.study_id == study_id).values(
            study_name=models.StudyModel.study_name))
        n0 = int(session.query(func.count(models.TrialModel.trial_id)).filter(
            models.TrialModel.study_id == study_id).scalar() or 0)
        made = [models.TrialModel(study_id=study_id, number=n0 + i, state=TrialState.RUNNING,
                                  datetime_start=t.datetime_start)
                for i, t in enumerate(templates)]
        session.add_all(made)
        session.flush()
        ids = [int(r.trial_id) for r in made]
        dist_json: dict[str, str] = {}
        children: list[Any] = []
        for tid, t in zip(ids, templates, strict=True):
            for name, value in t.params.items():
                dist = t.distributions[name]
                if name not in dist_json:
                    dist_json[name] = distribution_to_json(dist)
                children.append(models.TrialParamModel(
                    trial_id=tid, param_name=name, param_value=dist.to_internal_repr(value),
                    distribution_json=dist_json[name]))
            children.extend(models.TrialUserAttributeModel(trial_id=tid, key=k,
                                                           value_json=json.dumps(v))
                            for k, v in t.user_attrs.items())
        session.add_all(children)
        session.flush()
        T = models.TrialModel
        joined = [aliased(models.TrialUserAttributeModel) for _ in attrs]
        query = session.query(T.trial_id, T.number, T.state, *(a.value_json for a in joined))
        for a, key in zip(joined, attrs, strict=True):
            query = query.outerjoin(a, (a.trial_id == T.trial_id) & (a.key == key))
        rows = [tuple(r) for r in query.filter(T.study_id == study_id)]
    return ids, rows


def finish_trials(rdb: optuna.storages.RDBStorage, trial_ids: Sequence[int],
                  values: np.ndarray) -> None:
    """Set ``RUNNING`` claims ``COMPLETE`` with their (finite) ``values`` in one transaction
    (what ``set_trial_state_values`` does per trial).

    Raises:
        RuntimeError: a trial is not running any more (``UpdateFinishedTrialError``).
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    now = datetime.now()
    with _create_scoped_session(rdb.scoped_session) as session:
        rows = {int(r.trial_id): r for r in session.query(models.TrialModel).filter(
            models.TrialModel.trial_id.in_(trial_ids)).with_for_update()}
        for tid, v in zip(trial_ids, values, strict=True):
            row = rows[tid]
            if row.state != TrialState.RUNNING:
                raise optuna.exceptions.UpdateFinishedTrialError(
                    f"trial {row.number} is {row.state.name}, not RUNNING")
            for j, x in enumerate(v.tolist()):
                value, kind = models.TrialValueModel.value_to_stored_repr(float(x))
                session.add(models.TrialValueModel(trial_id=tid, objective=j, value=value,
                                                   value_type=kind))
            row.state = TrialState.COMPLETE
            row.datetime_complete = now
