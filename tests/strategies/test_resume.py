"""A killed search resumes from its Optuna study (SQLite here) without losing an evaluated
candidate and, for a deterministic strategy, ends with the same candidates and best as an
uninterrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.strategies import STRATEGIES
from nasforge.strategies import CallableObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import run_search
from nasforge.testing.contracts import _synthetic_problem
from tests.strategies._stored import completed

BUDGET = 40
SETTINGS: dict[str, dict[str, Any]] = {
    "random": {"batch_size": 4},
    "evolution": {"population_size": 10, "parents": 3, "mutations": 5, "crossovers": 5},
    "gradient": {"batch_size": 6},
    "optuna": {"batch_size": 3, "n_startup_trials": 8},
    "predictor": {"init_samples": 10, "top_k": 5,
                  "predictor": lambda s: _gbdt(s)},
}


def _gbdt(seed: int) -> Any:
    from nasforge.predictors import PREDICTORS

    return PREDICTORS.get("gbdt")(n_estimators=50, seed=seed)


class Killed(RuntimeError):
    pass


def _stored(db: Path, study: str = "nasforge") -> int:
    """Evaluated candidates stored in the study (completed trials)."""
    trials = optuna.load_study(storage=f"sqlite:///{db}", study_name=study).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    return len(trials)


def _make(name: str) -> Any:
    space, objectives = _synthetic_problem()
    return STRATEGIES.get(name)(space, objectives, seed=1, **SETTINGS[name])


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_kill_from_callback_then_resume_matches_uninterrupted(name: str, tmp_path: Path) -> None:
    strategy = _make(name)
    ref = run_search(strategy, budget=BUDGET)

    def kill(c: Any) -> None:
        if c.index + 1 == BUDGET // 2:
            raise Killed

    db = tmp_path / "search.db"
    strategy = _make(name)
    with pytest.raises(Killed):
        run_search(strategy, budget=BUDGET, storage=db, callbacks=[kill])
    stored = _stored(db)
    assert stored >= BUDGET // 2  # nothing evaluated was lost

    strategy = _make(name)
    res = run_search(strategy, budget=BUDGET, storage=db, resume=True)
    assert res.candidates["arch_id"].tolist() == ref.candidates["arch_id"].tolist()
    np.testing.assert_array_equal(res.values, ref.values)
    assert res.best is not None and ref.best is not None
    assert res.best.arch == ref.best.arch


@pytest.mark.parametrize("name", ["evolution", "random"])
def test_kill_inside_a_batch_loses_nothing(name: str, tmp_path: Path) -> None:
    """A crash in the middle of a batch's evaluation: the candidates persisted one by one
    (eval_chunk=1) are served from storage on resume, not evaluated again."""
    strategy = _make(name)
    ref = run_search(strategy, budget=BUDGET)

    calls = {"n": 0}
    space, base = _synthetic_problem()
    acc = base["acc"]

    def flaky(archs: Any) -> Any:
        calls["n"] += len(archs)
        if calls["n"] == 23:
            raise Killed
        return acc.evaluate_many(archs)

    def objectives() -> SearchObjectives:
        return SearchObjectives([CallableObjective("acc", flaky, cheap=False), base["lat"]])

    db = tmp_path / "s.db"
    objs1 = objectives()
    s1 = STRATEGIES.get(name)(space, objs1, seed=1, **SETTINGS[name])
    with pytest.raises(Killed):
        run_search(s1, budget=BUDGET, storage=db, eval_chunk=1)
    assert _stored(db) == 22
    objs2 = objectives()
    s2 = STRATEGIES.get(name)(space, objs2, seed=1, **SETTINGS[name])
    res = run_search(s2, budget=BUDGET, storage=db, resume=True, eval_chunk=1)
    assert calls["n"] == 23 + (BUDGET - 22)  # the 22 stored ones were not evaluated again
    assert res.candidates["arch_id"].tolist() == ref.candidates["arch_id"].tolist()


def test_existing_study_needs_resume_and_same_settings(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    strategy = _make("random")
    run_search(strategy, budget=8, storage=db)
    strategy = _make("random")
    with pytest.raises(InvalidInputError, match="resume=True"):
        run_search(strategy, budget=8, storage=db)
    space, objs = _synthetic_problem()
    other = STRATEGIES.get("evolution")(space, objs, seed=1, **SETTINGS["evolution"])
    with pytest.raises(IncompatibleComponentsError, match="other settings"):
        run_search(other, budget=8, storage=db, resume=True)


def test_optuna_study_resumes_from_its_rdb_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    space, objs = _synthetic_problem()

    def kill(c: Any) -> None:
        if c.index + 1 == 10:
            raise Killed

    s = STRATEGIES.get("optuna")(space, objs, seed=0, storage=url, study_name="s")
    with pytest.raises(Killed):
        run_search(s, budget=20, callbacks=[kill])
    space, objs = _synthetic_problem()
    s = STRATEGIES.get("optuna")(space, objs, seed=0, storage=url, study_name="s")
    res = run_search(s, budget=20)
    assert res.n_evaluated == 20
    assert (res.steps[:10] == -1).all()  # the 10 resumed candidates come first
    assert res.candidates["arch_id"].is_unique


# ---- the optuna strategy through `nas search`, stopped by a signal ------------------------------
def _nb201_table(path: Path) -> Path:
    """Every NB201 cell with an accuracy and a latency drawn from its string's CRC."""
    import itertools
    import zlib

    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    lines = ["index,arch_str,cifar10_val,pixel3_ms"]
    for i, o in enumerate(itertools.product(ops, repeat=6)):
        s = f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"
        h = zlib.crc32(s.encode())
        lines.append(f"{i},{s},{50 + h % 4000 / 100},{1 + (h >> 12) % 2000 / 100}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _optuna_search(table: Path, out: Path, *extra: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "nasforge.cli", "search", "--space", "nasbench201",
            "--device", "pixel3_ms", "--benchmark", str(table), "--metric", "cifar10_val",
            "--strategy", "optuna", "--budget", "45", "--seed", "7", "--latency", "15",
            "--strategy-opt", "n_startup_trials=5", "--out", str(out), "--quiet",
            "--commit-every", "0", *extra]  # every round written: the test stops it mid-way


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_optuna_search_stopped_by_a_signal_resumes_onto_the_same_candidates(
        signame: str, tmp_path: Path) -> None:
    """The sampler's random states and the told repeats are restored: the resumed search
    writes the candidates (ids, order, values) of the uninterrupted one."""
    import os
    import signal
    import subprocess
    import time

    table = _nb201_table(tmp_path / "nb201.csv")
    env = dict(os.environ)
    ref = subprocess.run(_optuna_search(table, tmp_path / "ref"), env=env, capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]
    out = tmp_path / "run"
    # SIGINT as a terminal sends it: a test run from a background shell job inherits SIGINT
    # ignored (POSIX shells ignore it in asynchronous commands), and so would the search
    proc = subprocess.Popen(_optuna_search(table, out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def stored() -> int:
        return max(0, completed(f"sqlite:///{out / 'search.db'}"))

    deadline = time.time() + 200
    while stored() < 20 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before the signal"
    proc.send_signal(getattr(signal, signame))
    proc.wait(timeout=60)
    assert 20 <= stored() < 45
    res = subprocess.run([*_optuna_search(table, out), "--resume"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert ((out / "candidates.csv").read_text()
            == (tmp_path / "ref" / "candidates.csv").read_text())
