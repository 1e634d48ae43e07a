"""The RDB fast path of the claims (``strategies/storage/_rdb_fast.py``, Optuna's private names)
writes exactly what Optuna's public storage API writes: the same search run through each path
stores the same trials (numbers, states, values, params and distributions, user attributes)
and the same study attributes, on SQLite and on PostgreSQL. An untested Optuna version takes
the public path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nasforge.strategies import STRATEGIES
from nasforge.strategies import CallableObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import SearchStudy
from nasforge.strategies import run_search
from nasforge.strategies.storage import _rdb_fast
from nasforge.testing.contracts import _synthetic_problem


def _search(url: str, *, exclusive: bool = False, trial_params: bool = True) -> Any:
    """Evolution over the synthetic problem, with a NaN accuracy for every third arch by id
    (a FAIL trial holding its values) and chunks of 3 (several claims per round; with
    ``exclusive``, the single writer's chunks, written with ``trial_params``)."""
    space, objs = _synthetic_problem()
    acc = objs["acc"]

    def maybe_nan(archs: Any) -> Any:
        v = np.asarray(acc.evaluate_many(archs), dtype=np.float64)
        nan = np.array([int(a.arch_id, 16) % 3 == 0 for a in archs])
        return np.where(nan, np.nan, v)

    mixed = SearchObjectives([CallableObjective("acc", maybe_nan, "maximize"), objs["lat"]])
    strategy = STRATEGIES.get("evolution")(space, mixed, seed=3, population_size=8, parents=2,
                                           mutations=4, crossovers=4)
    store = SearchStudy(url, "nasforge", space=space, exclusive=exclusive,
                        trial_params=trial_params)
    return run_search(strategy, budget=24, storage=store, eval_chunk=3)


def _stored(url: str) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    study = optuna.load_study(storage=url, study_name="nasforge")
    trials = [(t.number, t._trial_id, t.state, t.values, t.params, t.distributions,
               t.user_attrs, t.datetime_complete is None)
              for t in study.get_trials(deepcopy=False)]
    return trials, study.user_attrs


def _new_database(backend: str, name: str, tmp_path: Path, request: pytest.FixtureRequest
                  ) -> str:
    """A fresh, empty database: a SQLite file, or a database on the test PostgreSQL server."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy import text

    server = request.getfixturevalue("postgres_url")
    db = f"{name}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.execute(text(f"CREATE DATABASE {db}"))
    engine.dispose()
    return server.rsplit("/", 1)[0] + f"/{db}"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_fast_and_public_paths_store_the_same_trials(backend: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     request: pytest.FixtureRequest) -> None:
    calls = {"insert": 0, "finish": 0}
    insert, finish = _rdb_fast.insert_claims, _rdb_fast.finish_trials

    def counted_insert(*args: Any, **kw: Any) -> Any:
        calls["insert"] += 1
        return insert(*args, **kw)

    def counted_finish(*args: Any, **kw: Any) -> Any:
        calls["finish"] += 1
        return finish(*args, **kw)

    monkeypatch.setattr(_rdb_fast, "insert_claims", counted_insert)
    monkeypatch.setattr(_rdb_fast, "finish_trials", counted_finish)
    fast_url = _new_database(backend, "fast", tmp_path, request)
    fast = _search(fast_url)
    assert calls["insert"] > 1 and calls["finish"] > 1  # the fast path ran, chunk by chunk

    calls.update(insert=0, finish=0)
    monkeypatch.setattr(optuna, "__version__", "0.1.0")  # an Optuna it was not tested on
    public_url = _new_database(backend, "public", tmp_path, request)
    public = _search(public_url)
    assert calls == {"insert": 0, "finish": 0}  # the public API only

    fast_trials, fast_attrs = _stored(fast_url)
    public_trials, public_attrs = _stored(public_url)
    assert len(fast_trials) == 24 and fast.n_evaluated == public.n_evaluated == 24
    assert any(t[2] == optuna.trial.TrialState.FAIL for t in fast_trials)  # NaN candidates
    assert fast_trials == public_trials
    assert fast_attrs == public_attrs
    assert [a.arch_id for a in fast.archs] == [a.arch_id for a in public.archs]
    np.testing.assert_array_equal(fast.values, public.values)


@pytest.mark.parametrize("version, fast", [("5.1.0", True), ("5.1.2.dev0", True),
                                           ("5.0.0", False), ("4.2.1", False), ("6.0", False),
                                           ("garbage", False)])
def test_one_version_check_picks_the_path(version: str, fast: bool, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.strategies import open_storage

    storage, _ = open_storage(tmp_path / "s.db")
    monkeypatch.setattr(optuna, "__version__", version)
    assert (_rdb_fast.rdb_backend(storage) is not None) is fast
    assert _rdb_fast.rdb_backend(optuna.storages.InMemoryStorage()) is None
