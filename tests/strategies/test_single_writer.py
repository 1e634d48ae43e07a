"""A study's single writer (issue 25): ``run_search(..., exclusive=True)`` writes each round's
candidates with the round's state in one transaction, without claims: as rows of nasforge's
candidate table on an RDB storage (``trial_params=False``), else as finished trials.

What it keeps: the trials (the rows once turned into trials, ``write_trials``) are exactly
those the claims path stores (fast and public-API paths alike; without ``trial_params`` the
same less the Optuna params); ``kill -9`` loses the round in
flight only (``commit_every=0``) or what was evaluated in the last ``commit_every`` seconds, and
the resumed search ends with the candidates of the uninterrupted one; a worker joining while
the single writer runs is refused in one line, and one joining after it ended shares the study
with claims (exact budget, each arch once).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nasforge.errors import InvalidInputError
from nasforge.strategies import STRATEGIES
from nasforge.strategies import CallableObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import SearchStudy
from nasforge.strategies import run_search
from nasforge.strategies.storage import _candidate_table
from nasforge.strategies.storage import _rdb_fast
from nasforge.strategies.storage import _rdb_finished
from nasforge.strategies.storage import write_trials
from tests.strategies.test_rdb_fast import _new_database
from tests.strategies.test_rdb_fast import _search

#: one single-writer search process: ``URL BUDGET KILL_AT SYNC COMMIT_EVERY SLEEP``; its
#: accuracy objective sleeps ``SLEEP`` seconds per call and kills the process (SIGKILL) on its
#: ``KILL_AT``-th call (0: never); given ``SYNC`` it creates ``SYNC.started`` at its second
#: call and waits there until ``SYNC`` exists
WRITER = """
import os, signal, sys, time
import numpy as np
from nasforge.search_spaces import get_space
from nasforge.strategies import (STRATEGIES, CallableObjective, SearchObjectives, SearchStudy,
                                 run_search)

url, budget, kill_at, sync = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
commit_every, pause = float(sys.argv[5]), float(sys.argv[6])
space = get_space("elasticvit")
w = np.random.default_rng(0).normal(size=(2, len(space.index_names())))
calls = [0]

def acc(archs):
    calls[0] += 1
    time.sleep(pause)
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    if sync and calls[0] == 2:
        open(sync + ".started", "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(sync) and time.monotonic() < deadline:
            time.sleep(0.01)
    return space.to_indices(list(archs)) @ w[0]

def lat(archs):
    return np.abs(space.to_indices(list(archs)) @ w[1])

objs = SearchObjectives([CallableObjective("acc", acc, "maximize"),
                         CallableObjective("lat", lat, "minimize", cheap=True)])
strategy = STRATEGIES.get("evolution")(space, objs, seed=1, population_size=100, parents=25,
                                       mutations=50, crossovers=50)
store = SearchStudy(url, "nasforge", space=space, exclusive=True, commit_every=commit_every)
res = run_search(strategy, budget=budget, storage=store, resume=True, meta={"seed": 1})
print(res.n_evaluated, res.stopped, flush=True)
"""

BUDGET = 1200
KILL_AT = 6


def _writer(url: str, budget: int, kill_at: int = 0, sync: str = "", commit_every: float = 0.0,
            pause: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, url, str(budget), str(kill_at),
                             sync, str(commit_every), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _reference(budget: int) -> list[str]:
    """The arch ids of :data:`WRITER`'s search without storage, in evaluation order."""
    from nasforge.search_spaces import get_space

    space = get_space("elasticvit")
    w = np.random.default_rng(0).normal(size=(2, len(space.index_names())))
    objs = SearchObjectives([
        CallableObjective("acc", lambda a: space.to_indices(list(a)) @ w[0], "maximize"),
        CallableObjective("lat", lambda a: np.abs(space.to_indices(list(a)) @ w[1]),
                          "minimize", cheap=True)])
    strategy = STRATEGIES.get("evolution")(space, objs, seed=1, population_size=100,
                                           parents=25, mutations=50, crossovers=50)
    return list(run_search(strategy, budget=budget).candidates["arch_id"])


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    write_trials(url, "nasforge")  # the single writer's rows, as Optuna trials
    study = optuna.load_study(storage=url, study_name="nasforge")
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def _state(path: Path) -> dict[str, Any]:
    con = sqlite3.connect(path)
    state = con.execute("SELECT value_json FROM study_user_attributes WHERE key = "
                        "'nasforge_state:0'").fetchone()[0]
    con.close()
    return dict(json.loads(state))


def test_kill9_loses_the_round_in_flight_only_and_resume_matches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    killed = _writer(url, BUDGET, KILL_AT)  # commit_every=0: every round is written
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -9, err[-2000:]
    trials = _trials(url)
    state = json.dumps(_state(tmp_path / "s.db"))
    steps = [int(t.user_attrs["step"]) for t in trials]
    # whole rounds 0..KILL_AT-2 (each written with its state), nothing of the round in flight,
    # and no claim left behind
    assert sorted(set(steps)) == list(range(KILL_AT - 1))
    assert f'"step": {KILL_AT - 2}' in state
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    resumed = _writer(url, BUDGET)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    ids = [t.user_attrs["arch_id"] for t in _trials(url)]
    assert ids == _reference(BUDGET)  # the resumed search is the uninterrupted one


def test_kill9_loses_at_most_the_last_commit_window_and_resume_matches(tmp_path: Path) -> None:
    """With ``commit_every`` 0.6 s and rounds of 0.2 s, a kill at the 12th round loses the
    rounds evaluated since the last write: at most the round in flight and the 0.6 s before;
    what is stored is whole rounds, the state of the last stored one, and the resume replays
    the rest from the stored candidates into the uninterrupted search."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    killed = _writer(url, BUDGET, 12, commit_every=0.6, pause=0.2)
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -9, err[-2000:]
    trials = _trials(url)
    last = _state(tmp_path / "s.db")["step"]
    steps = sorted({int(t.user_attrs["step"]) for t in trials})
    assert steps == list(range(last + 1))  # whole rounds up to the stored state's, no more
    # rounds 0..10 were complete when round 11 was killed: at most 0.6 s of them (3) lost
    assert 11 - 3 <= last + 1 <= 11
    assert all(t.params == {} for t in trials)  # the arch once, as its user attribute
    resumed = _writer(url, BUDGET, commit_every=0.6)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    assert [t.user_attrs["arch_id"] for t in _trials(url)] == _reference(BUDGET)


@pytest.mark.parametrize("commit_every", [0.0, 3600.0])
def test_commit_every_sets_when_a_reader_sees_the_rounds(commit_every: float,
                                                          tmp_path: Path) -> None:
    """What another connection sees of the study after each round: every round at once with
    ``commit_every=0``; nothing until the search ends (then everything and the last round's
    state) with a window longer than the search."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    strategy = _second_worker()
    store = SearchStudy(url, "nasforge", space=strategy.space, exclusive=True,
                        commit_every=commit_every)
    seen: list[tuple[int, int]] = []  # (candidates evaluated, trials a reader sees)

    def look(c: Any) -> bool:
        con = sqlite3.connect(tmp_path / "s.db")
        rows = (con.execute("SELECT COALESCE(SUM(n), 0) FROM nasforge_candidates"
                            ).fetchone()[0]
                if con.execute("SELECT 1 FROM sqlite_master WHERE name = "
                               "'nasforge_candidates'").fetchone() else 0)
        seen.append((c.index + 1, rows + con.execute("SELECT COUNT(*) FROM trials"
                                                     ).fetchone()[0]))
        con.close()
        return False

    res = run_search(strategy, budget=400, storage=store, meta={"seed": 1}, callbacks=[look])
    assert len(seen) == 400
    if commit_every == 0:  # each round written as it ended: every candidate notified is stored
        assert all(k >= n for n, k in seen)
    else:
        assert {k for _, k in seen} == {0}  # nothing before the end
    last_round = max(int(s) for s in res.candidates["step"])
    assert len(_trials(url)) == 400 and _state(tmp_path / "s.db")["step"] == last_round


def _stored(url: str) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    write_trials(url, "nasforge")
    study = optuna.load_study(storage=url, study_name="nasforge")
    trials = [(t.number, t.state, t.values, t.params, t.distributions,
               {k: v for k, v in t.user_attrs.items() if k != "provenance"},
               t.datetime_complete is None) for t in study.get_trials(deepcopy=False)]
    return trials, {k: v for k, v in study.user_attrs.items() if k != "nasforge_exclusive"}


@pytest.mark.parametrize("trial_params", [True, False])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_single_writer_stores_what_the_claims_store_fast_and_public(
        backend: str, trial_params: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    calls = {"finished": 0, "claims": 0}
    claims = _rdb_fast.insert_claims
    # a single writer's transactions: rows of the candidate table, or trials with params
    module, name = ((_rdb_finished, "insert_finished") if trial_params
                    else (_candidate_table, "insert"))
    finished = getattr(module, name)

    def count(name: str, fn: Any) -> Any:
        def counted(*args: Any, **kw: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kw)
        return counted

    monkeypatch.setattr(module, name, count("finished", finished))
    monkeypatch.setattr(_rdb_fast, "insert_claims", count("claims", claims))
    fast = _new_database(backend, "fast", tmp_path, request)
    res = _search(fast, exclusive=True, trial_params=trial_params)
    assert calls["finished"] > 1 and calls["claims"] == 0  # no claim, written chunk by chunk
    claimed = _new_database(backend, "claims", tmp_path, request)
    ref = _search(claimed, exclusive=False)
    assert calls["claims"] > 1
    write_trials(fast, "nasforge")  # its rows as trials (on the fast path's Optuna version)
    monkeypatch.setattr(optuna, "__version__", "0.1.0")  # the public storage API
    public = _new_database(backend, "public", tmp_path, request)
    _search(public, exclusive=True, trial_params=trial_params)
    got, want, pub = _stored(fast), _stored(claimed), _stored(public)
    assert len(got[0]) == 24 and any(t[1] == optuna.trial.TrialState.FAIL for t in got[0])
    times = [(t.datetime_start, t.datetime_complete) for t in optuna.load_study(
        storage=fast, study_name="nasforge").get_trials(deepcopy=False)]
    assert all(a is not None and b is not None and a <= b for a, b in times)  # read back
    if backend == "sqlite":  # stored as SQLAlchemy writes a datetime (the public path's text)
        texts = [sqlite3.connect(u.removeprefix("sqlite:///")).execute(
            "SELECT datetime_start, datetime_complete FROM trials").fetchall()
            for u in (fast, public)]
        form = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
        assert all(form.fullmatch(t) for rows in texts for row in rows for t in row)
    if not trial_params:  # the same trials less the Optuna params (the arch is a user attr)
        assert all(t[3] and t[4] for t in want[0]) and not any(t[3] or t[4] for t in got[0])
        want = ([(*t[:3], {}, {}, *t[5:]) for t in want[0]], want[1])
    # the claims' attributes less what a single writer leaves out: the key where it is the
    # arch_id, worker 0 (the claims' every trial has both)
    assert all(t[5]["key"] == t[5]["arch_id"] and t[5]["worker"] == 0 for t in want[0])
    assert not any({"key", "worker"} & set(t[5]) for t in got[0])
    assert not any("provenance" in t.user_attrs for t in optuna.load_study(
        storage=fast, study_name="nasforge").get_trials(deepcopy=False))
    want = ([(*t[:5], {k: v for k, v in t[5].items() if k not in ("key", "worker")}, *t[6:])
             for t in want[0]], want[1])
    assert got == want == pub
    assert [a.arch_id for a in res.archs] == [a.arch_id for a in ref.archs]


def _second_worker() -> Any:
    """Worker 1 of :data:`WRITER`'s study: the same settings, another seed."""
    from nasforge.search_spaces import get_space

    space = get_space("elasticvit")
    w = np.random.default_rng(0).normal(size=(2, len(space.index_names())))
    objs = SearchObjectives([
        CallableObjective("acc", lambda a: space.to_indices(list(a)) @ w[0], "maximize"),
        CallableObjective("lat", lambda a: np.abs(space.to_indices(list(a)) @ w[1]),
                          "minimize", cheap=True)])
    return STRATEGIES.get("evolution")(space, objs, seed=2, population_size=100, parents=25,
                                       mutations=50, crossovers=50)


def test_a_joiner_is_refused_while_the_single_writer_runs_then_shares(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    sync = tmp_path / "go"
    writer = _writer(url, 400, sync=str(sync))
    deadline = time.monotonic() + 120
    while not Path(f"{sync}.started").exists() and time.monotonic() < deadline:
        assert writer.poll() is None, writer.communicate()[1][-2000:]
        time.sleep(0.02)
    with pytest.raises(InvalidInputError, match="single-worker search") as info:
        run_search(_second_worker(), budget=600, storage=url, worker=1, resume=True,
                   meta={"seed": 1})
    assert "\n" not in str(info.value)
    with pytest.raises(InvalidInputError, match="being written by a single-worker search"):
        write_trials(url, "nasforge")  # its rows stay rows while it runs
    sync.touch()
    _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err[-2000:]
    # the writer has ended: a second worker joins with claims and tops the study up, after
    # turning the writer's rows into trials
    con = sqlite3.connect(tmp_path / "s.db")
    counts = ("SELECT (SELECT COALESCE(SUM(n), 0) FROM nasforge_candidates), "
              "(SELECT COUNT(*) FROM trials)")
    assert con.execute(counts).fetchone() == (400, 0)
    res = run_search(_second_worker(), budget=600, storage=url, worker=1, resume=True,
                     meta={"seed": 1})
    assert con.execute(counts).fetchone() == (0, 600)
    con.close()
    done = [t for t in _trials(url) if t.state == optuna.trial.TrialState.COMPLETE]
    assert res.n_evaluated == len(done) == 600
    # each arch once (the single writer's trials: key = arch_id, worker 0, left out)
    assert len({t.user_attrs.get("key", t.user_attrs["arch_id"]) for t in done}) == 600
    assert {t.user_attrs.get("worker", 0) for t in done} == {0, 1}
