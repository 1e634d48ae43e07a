"""The search driver's steps: stop reasons, dedupe of repeated proposals, callbacks, the
storage seam (any Optuna storage), and the strategies' single working form (a ChoiceSpace)."""

from __future__ import annotations

import doctest
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.search_spaces.base import SearchSpace
from nasforge.strategies import STRATEGIES
from nasforge.strategies import BaseStrategy
from nasforge.strategies import CallableObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import run_search
from nasforge.testing.contracts import _synthetic_problem


class _Scripted(BaseStrategy):
    """Proposes the given batches in order, then nothing."""

    name = "scripted"

    def __init__(self, space: Any, objectives: Any, batches: list[list[Any]]) -> None:
        super().__init__(space, objectives, seed=0)
        self.batches = list(batches)

    @property
    def batch_size(self) -> int:
        return len(self.batches[0]) if self.batches else 1

    def ask(self, n: int) -> list[Any]:
        return self.batches.pop(0)[:n] if self.batches else []


def _counting_problem() -> tuple[Any, SearchObjectives, dict[str, int]]:
    space = get_space("nasbench201")
    calls = {"archs": 0}

    def acc(archs: Sequence[Any]) -> np.ndarray:
        calls["archs"] += len(archs)
        return np.asarray([float(space.flops(a)) for a in archs])

    return space, SearchObjectives([CallableObjective("acc", acc, "maximize", cheap=False)]), calls


def test_repeated_proposals_are_evaluated_once_and_told_their_values() -> None:
    space, objs, calls = _counting_problem()
    a, b = space.min_arch(), space.max_arch()
    told: list[np.ndarray] = []
    strategy = _Scripted(space, objs, [[a, b, a], [b, a]])
    strategy._tell = lambda archs, values: told.append(values)  # type: ignore[method-assign]
    res = run_search(strategy, budget=10)
    assert calls["archs"] == 2 and res.n_evaluated == 2
    assert res.stopped == "exhausted" and res.n_asked == 5
    assert told[0][0, 0] == told[0][2, 0] == told[1][1, 0] == space.flops(a)


def test_stop_reasons() -> None:
    space, objs, _ = _counting_problem()
    a, b = space.min_arch(), space.max_arch()
    assert run_search(_Scripted(space, objs, [[a], [b]]), budget=1).stopped == "budget"
    assert run_search(_Scripted(space, objs, [[a], [b]]), max_steps=1).n_evaluated == 1
    stalled = run_search(_Scripted(space, objs, [[a]] * 10), budget=5, max_idle_steps=3)
    assert stalled.stopped == "stalled" and stalled.n_asked == 4
    stop = run_search(_Scripted(space, objs, [[a], [b]]), budget=5, callbacks=[lambda c: True])
    assert stop.stopped == "callback" and stop.n_evaluated == 1


def test_callbacks_see_each_new_candidate_once_in_order() -> None:
    space, objs = _synthetic_problem()
    seen: list[int] = []
    res = run_search(STRATEGIES.get("random")(space, objs, seed=0, batch_size=4), budget=10,
                     callbacks=[lambda c: seen.append(c.index)])
    assert seen == list(range(10)) == list(range(res.n_evaluated))


def test_objectives_are_the_strategys_own() -> None:
    space, objs = _synthetic_problem()
    strategy = STRATEGIES.get("random")(space, objs, seed=0)
    with pytest.raises(TypeError):
        run_search(strategy, objs, budget=4)  # type: ignore[misc]
    with pytest.raises(InvalidInputError, match="budget"):
        run_search(strategy)


@pytest.mark.parametrize("name", ["evolution", "gradient"])
def test_any_base_storage_resumes_a_killed_search(name: str) -> None:
    settings: dict[str, Any] = ({"population_size": 8, "parents": 2, "mutations": 4,
                                 "crossovers": 4} if name == "evolution" else {"batch_size": 5})

    def make() -> BaseStrategy:
        space, objs = _synthetic_problem()
        return STRATEGIES.get(name)(space, objs, seed=2, **settings)

    ref = run_search(make(), budget=30)

    def kill(c: Any) -> None:
        if c.index == 13:
            raise RuntimeError("killed")

    store = optuna.storages.InMemoryStorage()
    with pytest.raises(RuntimeError, match="killed"):
        run_search(make(), budget=30, storage=store, callbacks=[kill])
    assert len(optuna.load_study(storage=store, study_name="nasforge").get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))) >= 14
    with pytest.raises(InvalidInputError, match="resume=True"):
        run_search(make(), budget=30, storage=store)
    res = run_search(make(), budget=30, storage=store, resume=True)
    assert [a.arch_id for a in res.archs] == [a.arch_id for a in ref.archs]
    np.testing.assert_array_equal(res.values, ref.values)


def test_a_path_opens_an_optuna_sqlite_storage(tmp_path: Path) -> None:
    from nasforge.strategies import open_storage

    storage, label = open_storage(tmp_path / "sub" / "s.db")
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert label == f"sqlite:///{tmp_path / 'sub' / 's.db'}"


# ---- one working form: the ChoiceSpace index codec -----------------------------------------
class _OpaqueSpace(SearchSpace):
    """A valid space that is not declared as discrete choices (delegates to NB201)."""

    name = "opaque"

    def __init__(self) -> None:
        self.inner = get_space("nasbench201")

    def sample(self, rng: np.random.Generator) -> Any:
        return self.inner.sample(rng)

    def mutate(self, arch: Any, rng: np.random.Generator, prob: float = 0.1) -> Any:
        return self.inner.mutate(arch, rng, prob)

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        return self.inner.crossover(a, b, rng)

    def min_arch(self) -> Any:
        return self.inner.min_arch()

    def max_arch(self) -> Any:
        return self.inner.max_arch()

    def validate(self, arch: Any) -> None:
        self.inner.validate(arch)

    def encode(self, arch: Any) -> np.ndarray:
        return self.inner.encode(arch)

    def encoding_names(self) -> list[str]:
        return self.inner.encoding_names()

    def blocks(self, arch: Any) -> list[Any]:
        return self.inner.blocks(arch)

    def arch_from_dict(self, data: dict[str, Any]) -> Any:
        return self.inner.arch_from_dict(data)

    def num_choices(self) -> int:
        return self.inner.num_choices()

    def size(self) -> int:
        return self.inner.size()


@pytest.mark.parametrize("name", ["evolution", "predictor", "gradient", "optuna"])
def test_index_strategies_need_a_choice_space(name: str) -> None:
    _, objs = _synthetic_problem()
    cls = STRATEGIES.get(name)
    with pytest.raises(IncompatibleComponentsError,
                       match=rf"{cls.__name__} .*ChoiceSpace.*'opaque' is a _OpaqueSpace"):
        cls(_OpaqueSpace(), objs, seed=0)


def test_random_search_needs_only_the_space_contract() -> None:
    _, objs = _synthetic_problem()
    res = run_search(STRATEGIES.get("random")(_OpaqueSpace(), objs, seed=0), budget=6)
    assert res.n_evaluated == 6


@pytest.mark.parametrize("name", ["evolution", "gradient"])
def test_tell_more_than_was_asked_raises(name: str) -> None:
    space, objs = _synthetic_problem()
    s = STRATEGIES.get(name)(space, objs, seed=0)
    batch = s.ask(3)
    with pytest.raises(InvalidInputError, match="asked and not told"):
        s.tell(batch * 2, objs.evaluate(batch * 2))


@pytest.mark.parametrize("module", ["_evolution", "_history", "_nsga2", "_run", "storage.url",
                                    "base"])
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"nasforge.strategies.{module}")
    failed, attempted = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0


def test_the_loop_collects_young_objects_in_bigger_passes_and_hands_the_heap_back() -> None:
    """While a search loop runs, what the process held before it is frozen and the young
    generation's threshold is at least 50,000; after it, both are as they were, and a
    process that froze its heap itself keeps it frozen."""
    import gc

    seen: list[tuple[int, int]] = []

    def search() -> None:
        space, objs = _synthetic_problem()
        run_search(STRATEGIES.get("random")(space, objs, seed=0), budget=4,
                   callbacks=[lambda c: seen.append((gc.get_threshold()[0],
                                                     gc.get_freeze_count()))])

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        search()
        assert seen and all(t == 50_000 and n > 0 for t, n in seen)
        assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0
        gc.set_threshold(80_000, 10, 10)  # a process's own bigger threshold is kept
        gc.freeze()
        seen.clear()
        search()
        assert seen and all(t == 80_000 for t, _ in seen)
        assert gc.get_freeze_count() > 0  # not handed back: the process froze it
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
