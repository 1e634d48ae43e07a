"""A single writer's candidate table (:mod:`nasforge.strategies.storage._candidate_table`): one
row per candidate on an RDB storage, read back bit-exactly, turned into the trials a single
writer would have written (after the study's trials, in one transaction), read with the trials
in number order, and never inherited by a study created under a deleted one's id."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.arch import json_id
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


def _search_archs(url: str, budget: int, *, resume: bool = False) -> list[Arch]:
    """The archs a 5-seeded evolution evaluated, in order, written by a single writer."""
    space, objs = _synthetic_problem()
    strategy = STRATEGIES.get("evolution")(space, objs, seed=5, population_size=8, parents=2,
                                           mutations=4, crossovers=4)
    store = SearchStudy(url, "nasforge", space=space, exclusive=True, commit_every=0)
    res = run_search(strategy, budget=budget, storage=store, resume=resume, meta={"seed": 5})
    return list(res.archs)


def _search(url: str, budget: int, *, resume: bool = False) -> list[str]:
    """The ``arch_id`` of each candidate of :func:`_search_archs`."""
    return [a.arch_id for a in _search_archs(url, budget, resume=resume)]


def _search_json(url: str, budget: int, *, resume: bool = False) -> list[str]:
    """The canonical JSON of each candidate of :func:`_search_archs`."""
    return [a.to_json() for a in _search_archs(url, budget, resume=resume)]


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


def _stored(url: str) -> list[tuple[int, int | None, str, str, bytes | None]]:
    """``(number, n, arch_id, arch, indices)`` of every table row, as the database holds
    them."""
    import sqlite3

    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return con.execute(f"SELECT number, n, arch_id, arch, indices FROM {table.TABLE_NAME} "
                           "ORDER BY number").fetchall()
    finally:
        con.close()


def test_a_search_stores_row_keys_read_back_as_the_archs_json(tmp_path: Path) -> None:
    """A single writer's rows hold a round of candidates each, as the archs' row keys (no
    JSON, no id); the study holds the space's row format, and every reader gets each arch's
    own JSON and ``arch_id``."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    want = _search_json(url, 16)
    held = _stored(url)
    assert sum(n or 0 for _, n, *_ in held) == 16 and len(held) < 16
    assert all(aid == "" and arch == "" and len(key or b"") == 6 * (n or 0)
               for _, n, aid, arch, key in held)
    assert [number for number, *_ in held] == list(
        itertools.accumulate([0] + [n or 0 for _, n, *_ in held[:-1]]))
    rdb = rdb_backend(optuna.storages.get_storage(url))
    assert rdb is not None
    attrs = rdb.get_study_user_attrs(rdb.get_study_id_from_name("nasforge"))
    assert attrs[table.FORMAT_ATTR]["num_columns"] == 6
    got = table.read(rdb, rdb.get_study_id_from_name("nasforge"))
    assert [r.arch for r in got] == want
    assert [r.arch_id for r in got] == [json_id(t) for t in want]
    assert [r["arch"] for r in read_study(url)[2]] == want
    assert write_trials(url, "nasforge") == 16
    trials = rdb.get_all_trials(rdb.get_study_id_from_name("nasforge"))
    assert [t.user_attrs["arch"] for t in trials] == want
    # no row left: no row format either (the study is what the trials alone make it)
    assert table.FORMAT_ATTR not in rdb.get_study_user_attrs(rdb.get_study_id_from_name(
        "nasforge"))


def _half_searched(tmp_path: Path) -> tuple[str, list[str], Any, int]:
    """A study of the first 12 of 24 candidates (the archs' JSON of all 24 in ``want``):
    ``(url, want, its RDB storage, its study id)``."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    want = _search_json(f"sqlite:///{tmp_path / 'ref.db'}", 24)
    assert _search_json(url, 12) == want[:12]
    rdb = rdb_backend(optuna.storages.get_storage(url))
    assert rdb is not None
    return url, want, rdb, rdb.get_study_id_from_name("nasforge")


def test_a_study_of_another_row_format_gets_json_rows(tmp_path: Path) -> None:
    """A study whose stored row format is not the space's (another version of it) gets the
    JSON of its new candidates, and its old rows are read in their own format."""
    url, want, rdb, sid = _half_searched(tmp_path)
    fmt = rdb.get_study_user_attrs(sid)[table.FORMAT_ATTR]
    rdb.set_study_user_attr(sid, table.FORMAT_ATTR, {**fmt, "tail": fmt["tail"]})  # same
    assert _search_json(url, 16, resume=True) == want[:16]
    assert all(arch == "" for *_, arch, _ in _stored(url))
    # another version's format (the space had one more option in its first position): it
    # still writes the stored rows, and is not the space's
    other = {**fmt, "pieces": [[*fmt["pieces"][0], fmt["pieces"][0][0] + "0"],
                               *fmt["pieces"][1:]]}
    rdb.set_study_user_attr(sid, table.FORMAT_ATTR, other)
    held_before = _stored(url)
    assert _search_json(url, 24, resume=True) == want
    held = _stored(url)
    json_rows = [row for row in held if row[0] >= 16]
    assert held[:len(held_before)] == held_before and len(json_rows) == 8
    assert all(n == 1 and k is None and arch for _, n, _, arch, k in json_rows)
    assert [json.loads(row[3]) for row in json_rows] == [json.loads(w) for w in want[16:]]
    assert [r.arch for r in table.read(rdb, sid)][16:] == want[16:]


def test_a_table_made_before_indices_gets_the_columns_and_keeps_its_rows(
        tmp_path: Path) -> None:
    """A candidate table without ``indices`` and ``n`` (an earlier nasforge): read as one
    JSON candidate a row; a writer resuming the study adds the columns and stores rounds of
    row keys after them."""
    import sqlite3

    url, want, rdb, sid = _half_searched(tmp_path)
    old = [(r.number, r.step, r.worker, r.arch_id, r.arch, r.values) for r in table.read(rdb, sid)]
    con = sqlite3.connect(tmp_path / "s.db")
    con.executescript(f"""
        DROP TABLE {table.TABLE_NAME};
        CREATE TABLE {table.TABLE_NAME} (study_id INTEGER NOT NULL, number INTEGER NOT NULL,
            step INTEGER NOT NULL, worker INTEGER NOT NULL, arch_id VARCHAR(64) NOT NULL,
            key TEXT, arch TEXT NOT NULL, vals BLOB NOT NULL, t_start FLOAT NOT NULL,
            t_complete FLOAT NOT NULL, PRIMARY KEY (study_id, number)) WITHOUT ROWID;""")
    for number, step, worker, aid, arch, vals in old:  # the old writer's JSON rows
        con.execute(f"INSERT INTO {table.TABLE_NAME} VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (sid, number, step, worker, aid, None, arch,
                     np.asarray(vals, dtype="<f8").tobytes(), 1.0, 2.0))
    con.commit()
    con.close()
    assert table._lacks(rdb) == ["indices", "n"]
    assert [r.arch for r in table.read(rdb, sid)] == want[:12]
    assert _search_json(url, 24, resume=True) == want
    assert table._lacks(rdb) == []
    held = _stored(url)
    assert [(number, n, k) for number, n, _, _, k in held[:12]] == [
        (i, None, None) for i in range(12)]
    assert all(k and n for _, n, _, _, k in held[12:]) and held[12][0] == 12
    assert table.count(rdb, sid) == 24
    assert [r.arch for r in table.read(rdb, sid)] == want
    assert [r.number for r in table.read(rdb, sid, since=13)] == list(range(13, 24))


def test_a_big_round_is_several_bounded_rows_read_back_in_order(tmp_path: Path) -> None:
    """A round of 2,500 candidates (a random search's batch) is stored as rows of at most
    1,024, read back as 2,500 candidates with their own numbers, archs and values."""
    from nasforge.search_spaces import ArchText
    from nasforge.search_spaces import get_space

    space = get_space("nasbench201")
    text = ArchText(space)  # type: ignore[arg-type]
    archs = space.from_indices(  # type: ignore[attr-defined]
        space.sample_indices(np.random.default_rng(0), 2500), check=False)  # type: ignore[attr-defined]
    url = f"sqlite:///{tmp_path / 's.db'}"
    rdb = rdb_backend(optuna.storages.get_storage(url))
    assert rdb is not None
    sid = rdb.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
    values = np.random.default_rng(1).random((2500, 1))
    new = table.CandidateRows(0, 0, [], [], [], values, 1.0, 2.0,
                              [text.row_key(a) for a in archs])  # type: ignore[misc]
    assert table.insert(rdb, sid, [new], None, None, row_format=text.row_format) == (2500, 0)
    assert [(number, n) for number, n, *_ in _stored(url)] == [(0, 1024), (1024, 1024),
                                                               (2048, 452)]
    got = table.read(rdb, sid)
    assert [r.number for r in got] == list(range(2500)) and table.count(rdb, sid) == 2500
    assert [r.arch for r in got] == [a.to_json() for a in archs]
    assert np.array_equal([r.values for r in got], values)
    assert [r.number for r in table.read(rdb, sid, since=1500)] == list(range(1500, 2500))
