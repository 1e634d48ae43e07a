"""Two workers share one persisted study of 20,000 candidates (issue 25): the study's budget is
met exactly, no arch is evaluated twice, and a worker killed with ``kill -9`` in the middle of
a round and restarted with ``resume`` loses only that round's claims (released; its archs are
proposed again by the resumed worker while the budget lasts), on SQLite and on PostgreSQL.

The workers are real processes running OFA's evolution settings (population 100, 25 parents,
50 + 50 children) over ``elasticvit`` with analytic objectives on the index matrix, so the
cost is the storage's. :data:`WORKER` is the script each process runs; the single-worker
tests of ``test_batched_persistence.py`` run it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest

#: one search process: ``URL STUDY WORKER BUDGET KILL_AT SPACE [SYNC]``; its accuracy
#: objective kills the process (SIGKILL) on its ``KILL_AT``-th call (0: never), i.e. while the
#: claims of that round are held and nothing of it is stored, after creating the file ``SYNC``;
#: a worker given ``SYNC`` and no ``KILL_AT`` waits at its second round until that file exists,
#: so the killed worker always dies while the other is in the middle of the study (a fast
#: worker would otherwise finish the whole budget before the other reached its ``KILL_AT``)
WORKER = """
import os, signal, sys, time
import numpy as np
from nasforge.search_spaces import get_space
from nasforge.strategies import STRATEGIES, CallableObjective, SearchObjectives, run_search

url, study, worker, budget, kill_at, name = sys.argv[1:7]
worker, budget, kill_at = int(worker), int(budget), int(kill_at)
sync = sys.argv[7] if len(sys.argv) > 7 else ""
space = get_space(name)
w = np.random.default_rng(0).normal(size=(2, len(space.index_names())))
calls = [0]

def acc(archs):
    calls[0] += 1
    if calls[0] == kill_at:
        if sync:
            open(sync, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    if sync and not kill_at and calls[0] == 2:
        deadline = time.monotonic() + 300
        while not os.path.exists(sync) and time.monotonic() < deadline:
            time.sleep(0.01)
    return space.to_indices(list(archs)) @ w[0]

def lat(archs):
    return np.abs(space.to_indices(list(archs)) @ w[1])

objs = SearchObjectives([CallableObjective("acc", acc, "maximize"),
                         CallableObjective("lat", lat, "minimize", cheap=True)])
strategy = STRATEGIES.get("evolution")(space, objs, seed=1 + worker, population_size=100,
                                       parents=25, mutations=50, crossovers=50)
res = run_search(strategy, budget=budget, storage=url, study_name=study, worker=worker,
                 resume=True, meta={"seed": 1})
print(res.n_evaluated, res.stopped, flush=True)
"""

#: the issue's 20,000 with ``NASFORGE_TWO_WORKER_BUDGET=20000`` (minutes on 2 cores: run for
#: the figures, see the README); the suite runs the same protocol at 5,000
BUDGET = int(os.environ.get("NASFORGE_TWO_WORKER_BUDGET", "5000"))
#: the round during whose evaluation worker 1 is killed (a tenth of the budget in at 20,000)
KILL_AT = 20 if BUDGET >= 20_000 else 8


def start(url: str, study: str, worker: int, budget: int, kill_at: int = 0,
          space: str = "elasticvit", sync: str = "") -> subprocess.Popen[str]:
    """A worker process running :data:`WORKER`."""
    return subprocess.Popen([sys.executable, "-c", WORKER, url, study, str(worker), str(budget),
                             str(kill_at), space, sync], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    """Wait for a worker: its exit code and its output (stderr appended)."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err[-3000:]


def stored(url: str, study: str) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """The study's trials by kind: ``done`` (candidates), ``died`` (claims of a killed
    process, released), ``other_released`` and ``running``."""
    trials = optuna.load_study(storage=url, study_name=study).get_trials(deepcopy=False)
    out: dict[str, list[optuna.trial.FrozenTrial]] = {
        "done": [], "died": [], "other_released": [], "running": []}
    for t in trials:
        why = t.user_attrs.get("nasforge_released")
        kind = ("running" if t.state == optuna.trial.TrialState.RUNNING else
                "done" if why is None else "died" if "died" in str(why) else "other_released")
        out[kind].append(t)
    return out


def _two_workers_killed_and_resumed(url: str, sync: Path) -> None:
    study = f"two_{uuid.uuid4().hex[:8]}"
    w0 = start(url, study, 0, BUDGET, sync=str(sync))  # waits in its 2nd round for w1's death
    w1 = start(url, study, 1, BUDGET, kill_at=KILL_AT, sync=str(sync))
    code, out = finish(w1)
    assert code == -9, out  # killed in the middle of a round, worker 0 in the middle of its own
    w1 = start(url, study, 1, BUDGET)  # restarted while worker 0 runs on
    for proc in (w0, w1):
        code, out = finish(proc)
        assert code == 0, out
    got = stored(url, study)
    keys = [t.user_attrs["key"] for t in got["done"]]
    numbers = [t.number for t in got["done"] + got["died"] + got["other_released"]]
    assert len(got["done"]) == BUDGET  # the study's budget, exactly
    assert len(set(keys)) == BUDGET  # no arch evaluated twice
    assert len(set(numbers)) == len(numbers)  # unique trial numbers
    assert not got["running"]
    # the killed worker lost its round in flight and nothing else: one round's claims
    assert 0 < len(got["died"]) <= 100
    assert {t.user_attrs["worker"] for t in got["died"]} == {1}
    lost = {int(t.user_attrs["step"]) for t in got["died"]}
    assert len(lost) == 1  # one round; every earlier round of worker 1 is stored
    kept = {int(t.user_attrs["step"]) for t in got["done"] if t.user_attrs["worker"] == 1}
    assert set(range(min(lost))) <= kept


@pytest.mark.slow
def test_two_workers_20k_sqlite_kill9_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    optuna.storages.RDBStorage(url).engine.dispose()  # the schema, once
    _two_workers_killed_and_resumed(url, tmp_path / "killed")


@pytest.mark.slow
def test_two_workers_20k_postgres_kill9_resume(postgres_url: str, tmp_path: Path) -> None:
    optuna.storages.RDBStorage(postgres_url).engine.dispose()
    _two_workers_killed_and_resumed(postgres_url, tmp_path / "killed")
