"""Searches are Optuna studies: trials carry params, values and the arch; settings, the
previous format and bad storages are refused in one line; PostgreSQL and journal storages;
many workers on one study never exceed its budget nor evaluate an arch twice."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.strategies import STRATEGIES
from nasforge.strategies import open_storage
from nasforge.strategies import run_search
from nasforge.testing.contracts import _synthetic_problem

EVO = {"population_size": 8, "parents": 2, "mutations": 4, "crossovers": 4}


def _evolution(seed: int = 1) -> Any:
    space, objs = _synthetic_problem()
    return STRATEGIES.get("evolution")(space, objs, seed=seed, **EVO)


def _complete(url: Any, study: str = "nasforge") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(storage=url, study_name=study).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))


def _gbdt(seed: int) -> Any:
    from nasforge.predictors import PREDICTORS

    return PREDICTORS.get("gbdt")(n_estimators=30, seed=seed)


ALL: dict[str, dict[str, Any]] = {
    "random": {"batch_size": 4},
    "evolution": EVO,
    "gradient": {"batch_size": 4},
    "predictor": {"init_samples": 6, "top_k": 3, "predictor": lambda s: _gbdt(s)},
    "optuna": {"sampler": "random"},
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_candidate_is_a_trial_with_params_values_and_arch(name: str,
                                                                 tmp_path: Path) -> None:
    import json

    url = f"sqlite:///{tmp_path / 's.db'}"
    space, objs = _synthetic_problem()
    strategy = STRATEGIES.get(name)(space, objs, seed=1, **ALL[name])
    res = run_search(strategy, budget=10, storage=url)
    trials = _complete(url)
    assert len(trials) == res.n_evaluated == 10
    names = strategy.space.index_names()
    for t, arch, values in zip(trials, res.archs, res.values, strict=True):
        assert t.user_attrs["arch_id"] == arch.arch_id
        assert strategy.space.arch_from_dict(json.loads(t.user_attrs["arch"])) == arch
        assert sorted(t.params) == sorted(names)
        np.testing.assert_array_equal(np.asarray(t.values), values)
        assert {"step", "worker", "provenance", "key"} <= set(t.user_attrs)
    study = optuna.load_study(storage=url, study_name="nasforge")
    assert study.user_attrs["nasforge_meta"]["strategy"] == name
    assert [d.name for d in study.directions] == [
        o.direction.upper() for o in strategy.objectives.objectives]


def test_journal_storage_resumes_exactly(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'j.log'}"
    ref = run_search(_evolution(), budget=20)

    def kill(c: Any) -> None:
        if c.index == 9:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_search(_evolution(), budget=20, storage=url, callbacks=[kill])
    res = run_search(_evolution(), budget=20, storage=url, resume=True)
    assert [a.arch_id for a in res.archs] == [a.arch_id for a in ref.archs]


def test_a_finished_search_extends_with_a_larger_budget(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    ref = run_search(_evolution(), budget=30)
    first = run_search(_evolution(), budget=14, storage=db)
    more = run_search(_evolution(), budget=30, storage=db, resume=True)
    assert first.n_evaluated == 14 and more.n_evaluated == 30
    assert [a.arch_id for a in more.archs] == [a.arch_id for a in ref.archs]


def test_resume_with_other_settings_names_old_and_new(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_search(_evolution(), budget=8, storage=db, meta={"device": "pixel3"})
    with pytest.raises(IncompatibleComponentsError,
                       match=r"device differ: stored \['pixel3'\], now \['raspi4'\]"):
        run_search(_evolution(), budget=8, storage=db, resume=True, meta={"device": "raspi4"})
    with pytest.raises(IncompatibleComponentsError, match=r"seed.*stored \[.*1.*\], now"):
        run_search(_evolution(seed=5), budget=8, storage=db, resume=True,
                   meta={"device": "pixel3"})


def test_a_study_without_candidates_takes_new_settings(tmp_path: Path) -> None:
    """A failed start (nothing evaluated) does not block the corrected rerun."""
    db = tmp_path / "s.db"
    space, objs = _synthetic_problem()

    def boom(archs: Any) -> Any:
        raise RuntimeError("bad evaluator")

    from nasforge.strategies import CallableObjective
    from nasforge.strategies import SearchObjectives

    bad = SearchObjectives([CallableObjective("acc", boom, cheap=False), objs["lat"]])
    with pytest.raises(RuntimeError, match="bad evaluator"):
        run_search(STRATEGIES.get("evolution")(space, bad, seed=1, **EVO), budget=8,
                   storage=db, meta={"device": "typo"})
    res = run_search(_evolution(), budget=8, storage=db, meta={"device": "pixel3"})
    assert res.n_evaluated == 8
    failed = optuna.load_study(storage=f"sqlite:///{db}", study_name="nasforge").get_trials(
        states=(optuna.trial.TrialState.FAIL,))
    assert failed and all("nasforge_released" in t.user_attrs for t in failed)


def test_previous_format_and_non_sqlite_files_are_refused(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript("CREATE TABLE studies (study TEXT, meta_json TEXT);"
                      "CREATE TABLE candidates (study TEXT, seq INTEGER);"
                      "CREATE TABLE steps (study TEXT, step INTEGER);")
    con.close()
    with pytest.raises(InvalidInputError, match=r"previous format.*studies/candidates/steps"):
        open_storage(old)
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all, just text " * 20)
    with pytest.raises(InvalidInputError, match="not a SQLite database"):
        open_storage(junk)


@pytest.mark.parametrize("url, needle", [
    ("foo://x/y", "scheme 'foo' is not one Optuna knows"),
    ("postgresql+psycopg2://nobody@127.0.0.1:1/none", "cannot open search storage"),
])
def test_bad_storage_urls_are_one_line(url: str, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle) as info:
        open_storage(url)
    assert "\n" not in str(info.value)


def test_study_of_another_strategy_or_foreign_study_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_search(_evolution(), budget=6, storage=url, study_name="evo")
    space, objs = _synthetic_problem()
    rnd = STRATEGIES.get("random")(space, objs, seed=1)
    with pytest.raises(IncompatibleComponentsError, match=r"strategy.*'evolution'.*'random'"):
        run_search(rnd, budget=6, storage=url, study_name="evo", resume=True)
    foreign = optuna.create_study(storage=url, study_name="mine")
    foreign.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(IncompatibleComponentsError, match="not written by nas search"):
        run_search(_evolution(), budget=6, storage=url, study_name="mine", resume=True)


# ---- many workers, one study -------------------------------------------------------------------
def _worker(url: str, worker: int, budget: int, study: str) -> None:
    space, objs = _synthetic_problem()
    strategy = STRATEGIES.get("random")(space, objs, seed=100 + worker, batch_size=3)
    run_search(strategy, budget=budget, storage=url, study_name=study, worker=worker,
               resume=True, meta={"seed": 100})  # the study's seed; each worker its own


def _run_workers(url: str, n: int, budget: int, study: str = "shared"
                 ) -> list[optuna.trial.FrozenTrial]:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(url, w, budget, study)) for w in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    return _complete(url, study)


@pytest.mark.slow
def test_four_workers_never_exceed_the_budget_ten_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    optuna.storages.RDBStorage(url).engine.dispose()  # the schema, once
    for run in range(10):
        done = _run_workers(url, 4, 12, study=f"run{run}")
        numbers = [t.number for t in done]
        keys = [t.user_attrs["key"] for t in done]
        assert len(done) == 12, run  # the study's budget, never more
        assert len(set(numbers)) == len(numbers)  # no duplicate sequence numbers
        assert len(set(keys)) == len(keys)  # no arch evaluated twice


def test_two_workers_on_postgres_share_the_budget(postgres_url: str) -> None:
    import uuid

    db = f"w{uuid.uuid4().hex[:8]}"
    admin = optuna.storages.RDBStorage(postgres_url)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
        from sqlalchemy import text

        con.execute(text(f"CREATE DATABASE {db}"))
    admin.engine.dispose()
    url = postgres_url.rsplit("/", 1)[0] + f"/{db}"
    done = _run_workers(url, 2, 10)
    assert len(done) == 10
    assert len({t.user_attrs["key"] for t in done}) == 10
    assert len({t.number for t in done}) == 10
