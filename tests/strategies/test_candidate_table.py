"""A single writer's candidate table (:mod:`nasforge.strategies.storage._candidate_table`): one
row per candidate on an RDB storage, read back bit-exactly, turned into the trials a single
writer would have written (after the study's trials, in one transaction), read with the trials
in number order, and never inherited by a study created under a deleted one's id."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from nasforge.strategies import STRATEGIES
from nasforge.strategies import SearchStudy
from nasforge.strategies import run_search
from nasforge.strategies.storage import _candidate_table as table
from nasforge.strategies.storage import read_study
from nasforge.strategies.storage import write_trials
from nasforge.strategies.storage._rdb_fast import rdb_backend
from nasforge.strategies.storage.claims import VALUES
from nasforge.testing.contracts import _synthetic_problem
from tests.strategies.test_rdb_fast import _new_database


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rows_read_back_exactly_and_become_trials_after_the_study_s_trials(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = _new_database(backend, "rows", tmp_path, request)
    rdb = rdb_backend(optuna.storages.get_storage(url))
    assert rdb is not None
    sid = rdb.create_new_study([optuna.study.StudyDirection.MAXIMIZE,
                                optuna.study.StudyDirection.MINIMIZE], "s")
    rdb.create_new_trial(sid)  # a trial before the rows: they are numbered after it
    values = np.array([[0.1 + 2**-40, 3.0], [math.nan, 1.5], [-0.0, math.inf]])
    new = table.CandidateRows(4, 3, ["a", "b", "c"], [None, "k:b", None],
                              ['{"x":1}', '{"x":2}', '{"x":3}'], values, 10.0, 12.5)
    assert table.insert(rdb, sid, [new], ("attr", {"v": 1}), None) == (3, 1)
    got = table.read(rdb, sid)
    assert [r.number for r in got] == [1, 2, 3] and table.count(rdb, sid) == 3
    assert [(r.step, r.worker, r.arch_id, r.key, r.arch, r.start, r.complete) for r in got] == [
        (4, 3, "a", None, '{"x":1}', 10.0, 12.5), (4, 3, "b", "k:b", '{"x":2}', 10.0, 12.5),
        (4, 3, "c", None, '{"x":3}', 10.0, 12.5)]
    # bit-exact values, NaN and infinity kept
    assert np.array_equal(np.array([r.values for r in got]), values, equal_nan=True)
    assert rdb.get_study_user_attrs(sid)["attr"] == {"v": 1}  # the same transaction
    assert [r.number for r in table.read(rdb, sid, since=3)] == [3]

    assert table.to_trials(rdb, sid, VALUES) == 3
    assert table.read(rdb, sid) == [] and table.to_trials(rdb, sid, VALUES) == 0
    trials = sorted(rdb.get_all_trials(sid), key=lambda t: t.number)
    a, b, c = trials[1:]
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert (a.state, a.values, a.user_attrs) == (
        optuna.trial.TrialState.COMPLETE, [0.1 + 2**-40, 3.0],
        {"arch": '{"x":1}', "arch_id": "a", "step": 4, "worker": 3})
    # a NaN is a FAIL trial with its values in nasforge_values; the key where not the arch_id
    assert b.state == optuna.trial.TrialState.FAIL and b.user_attrs[VALUES] == [None, 1.5]
    assert b.user_attrs["key"] == "k:b" and "key" not in c.user_attrs
    assert c.values == [-0.0, math.inf]
    assert a.datetime_start is not None and a.datetime_complete is not None
    assert (a.datetime_complete - a.datetime_start).total_seconds() == pytest.approx(2.5)


def _search(url: str, budget: int, *, resume: bool = False) -> list[str]:
    space, objs = _synthetic_problem()
    strategy = STRATEGIES.get("evolution")(space, objs, seed=5, population_size=8, parents=2,
                                           mutations=4, crossovers=4)
    store = SearchStudy(url, "nasforge", space=space, exclusive=True, commit_every=0)
    res = run_search(strategy, budget=budget, storage=store, resume=resume, meta={"seed": 5})
    return [a.arch_id for a in res.archs]


def test_trials_and_rows_are_read_in_number_order(tmp_path: Path) -> None:
    """12 candidates turned into trials, 12 more resumed as rows: readers see 24 in the order
    the uninterrupted search evaluated them."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    want = _search(f"sqlite:///{tmp_path / 'ref.db'}", 24)
    assert _search(url, 12) == want[:12]
    assert write_trials(url, "nasforge") == 12
    assert _search(url, 24, resume=True) == want
    _, _, rows = read_study(url)
    assert [r["arch_id"] for r in rows] == want
    store = SearchStudy(url, "nasforge", exclusive=True)
    store.init(store.stored_meta() or {}, ["maximize", "minimize"], resume=True)
    stored = store.candidates()
    assert [c.arch_id for c in stored] == want and [c.number for c in stored] == list(range(24))


def test_a_study_created_under_a_deleted_study_s_id_starts_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _search(url, 12)
    optuna.delete_study(study_name="nasforge", storage=url)  # its rows stay behind
    rdb = rdb_backend(optuna.storages.get_storage(url))
    assert rdb is not None and table.count(rdb, 1) == 12
    assert len(_search(url, 6)) == 6  # a new study, the same id: not a resume of 12 rows
    assert len(read_study(url)[2]) == 6
