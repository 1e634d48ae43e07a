"""A persisted search writes its study one round at a time (issue 25): the claims of a round
in one transaction, its values together with the strategy state of the round in another, and
the study is read from the first trial not finished on, never again from its start.

What that keeps: ``kill -9`` in the middle of a round loses that round only (its claims are
released on resume and evaluated again) and the resumed search ends with the candidates of
the uninterrupted one; the study is read a bounded number of times per trial, however many
rounds the search has.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.search_spaces import get_space
from nasforge.strategies import STRATEGIES
from nasforge.strategies import CallableObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import run_search
from nasforge.strategies.storage import _rdb_fast
from tests.strategies.test_two_worker_20k import WORKER
from tests.strategies.test_two_worker_20k import stored

SPACE = "elasticvit"
BUDGET = 1200
#: the round during whose evaluation the worker is killed
KILL_AT = 6


def _reference() -> list[str]:
    """The arch ids of the uninterrupted search (no storage), in evaluation order: what
    :data:`~tests.strategies.test_two_worker_20k.WORKER` runs, in this process."""
    space = get_space(SPACE)
    w = np.random.default_rng(0).normal(size=(2, len(space.index_names())))

    def acc(archs: Any) -> Any:
        return space.to_indices(list(archs)) @ w[0]

    def lat(archs: Any) -> Any:
        return np.abs(space.to_indices(list(archs)) @ w[1])

    objs = SearchObjectives([CallableObjective("acc", acc, "maximize"),
                             CallableObjective("lat", lat, "minimize", cheap=True)])
    strategy = STRATEGIES.get("evolution")(space, objs, seed=1, population_size=100,
                                           parents=25, mutations=50, crossovers=50)
    return list(run_search(strategy, budget=BUDGET).candidates["arch_id"])


def _worker(url: str, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WORKER, url, "nasforge", "0", str(BUDGET),
                           str(kill_at), SPACE], capture_output=True, text=True, timeout=300)


def _rounds(db: Path) -> tuple[int, list[int]]:
    """The round of the stored strategy state, and the round of every completed trial."""
    import json

    con = sqlite3.connect(db)
    state = json.loads(con.execute("SELECT value_json FROM study_user_attributes WHERE key = "
                                   "'nasforge_state:0'").fetchone()[0])
    steps = [int(json.loads(s)) for (s,) in con.execute(
        "SELECT a.value_json FROM trials t JOIN trial_user_attributes a ON "
        "a.trial_id = t.trial_id AND a.key = 'step' WHERE t.state = 'COMPLETE'")]
    con.close()
    return int(state["step"]), steps


def test_kill9_in_a_round_loses_that_round_only_and_resume_matches(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    killed = _worker(url, KILL_AT)
    assert killed.returncode == -9, killed.stderr[-2000:]
    got = stored(url, "nasforge")
    state_step, steps = _rounds(db)
    # what is stored is whole rounds, up to the round of the stored state
    assert steps and max(steps) == state_step == KILL_AT - 2  # rounds 0..KILL_AT-2 done
    in_flight = len(got["running"])
    assert 0 < in_flight <= 100  # the round in flight: one generation's claims
    resumed = _worker(url, 0)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = stored(url, "nasforge")
    assert len(got["died"]) == in_flight and not got["running"]
    ids = [t.user_attrs["arch_id"] for t in sorted(got["done"], key=lambda t: t.number)]
    assert ids == _reference()  # the resumed search is the uninterrupted one


def test_the_study_is_read_once_per_trial_not_once_per_round(tmp_path: Path,
                                                             monkeypatch: Any) -> None:
    """Claims and the driver's sync read the study from the first unfinished trial on: the
    rows read grow with the trials, not with trials times rounds (the earlier claims read
    the whole study per chunk: here about 17 rounds x 600 trials on average)."""
    rows = [0]
    read = _rdb_fast._read  # every read of the study's trials, by claims and by the sync

    def counted_read(*args: Any, **kw: Any) -> Any:
        out = read(*args, **kw)
        rows[0] += len(out)
        return out

    monkeypatch.setattr(_rdb_fast, "_read", counted_read)
    space = get_space(SPACE)
    w = np.random.default_rng(0).normal(size=len(space.index_names()))
    objs = SearchObjectives([CallableObjective(
        "acc", lambda archs: space.to_indices(list(archs)) @ w, "maximize")])
    strategy = STRATEGIES.get("evolution")(space, objs, seed=0, population_size=100,
                                           parents=25, mutations=50, crossovers=50)
    result = run_search(strategy, budget=BUDGET, storage=tmp_path / "s.db")
    assert result.n_evaluated == BUDGET
    # each trial is read twice by the claims (running in its round, finished in the next)
    # and once by the sync: 3 x 1,200, against about 17 x 600 reading the whole study
    assert rows[0] <= 3 * BUDGET, rows
