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
