"""Evolution (and the predictor strategy's inner evolution) on index matrices: valid, feasible,
deterministic and resumable on a large space with a cross-field rule (ElasticViT widths)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nasforge.search_spaces import get_space
from nasforge.strategies import STRATEGIES
from nasforge.strategies import CallableObjective
from nasforge.strategies import FlopsObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import run_search

SETTINGS: dict[str, dict[str, Any]] = {
    "evolution": {"population_size": 20, "parents": 5, "mutations": 10, "crossovers": 10},
    "predictor": {"init_samples": 10, "top_k": 5, "inner_population": 20,
                  "inner_generations": 3, "predictor": lambda s: _gbdt(s)},
}


def _gbdt(seed: int) -> Any:
    from nasforge.predictors import PREDICTORS

    return PREDICTORS.get("gbdt")(n_estimators=20, seed=seed)


def _problem() -> tuple[Any, SearchObjectives]:
    space = get_space("elasticvit")
    w = np.random.default_rng(0).normal(size=len(space.encoding_names()))

    def acc(archs: Any) -> np.ndarray:
        return space.encode_many(list(archs)) @ w if len(archs) else np.zeros(0)

    objs = SearchObjectives([CallableObjective("acc", acc, "maximize"),
                             FlopsObjective(space, upper=400.0)])
    return space, objs


def _run(name: str, budget: int = 60, **kw: Any) -> Any:
    space, objs = _problem()
    strategy = STRATEGIES.get(name)(space, objs, seed=3, **SETTINGS[name])
    return strategy, run_search(strategy, budget=budget, **kw)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_valid_feasible_and_deterministic(name: str) -> None:
    strategy, a = _run(name)
    _, b = _run(name)
    assert [x.arch_id for x in a.archs] == [x.arch_id for x in b.archs]
    np.testing.assert_array_equal(a.values, b.values)
    for arch in a.archs:
        strategy.space.validate(arch)
    assert (a.values[:, 1] <= 400.0).all()


def test_population_rows_match_archs() -> None:
    strategy, _ = _run("evolution")
    np.testing.assert_array_equal(strategy._pop_idx, strategy.space.to_indices(strategy.population))


def test_tell_with_copies_of_the_asked_archs() -> None:
    """A driver may tell equal (not identical) archs: the rows are those asked, in order."""
    space, objs = _problem()
    s = STRATEGIES.get("evolution")(space, objs, seed=0, **SETTINGS["evolution"])
    for _ in range(4):
        batch = s.ask(s.batch_size)
        copies = [space.arch_from_dict(a.to_dict()) for a in batch]
        s.tell(copies, objs.evaluate(copies))
    np.testing.assert_array_equal(s._pop_idx, space.to_indices(s.population))


def test_resume_matches_uninterrupted(tmp_path: Path) -> None:
    _, ref = _run("evolution", budget=80)

    class Killed(RuntimeError):
        pass

    def kill(c: Any) -> None:
        if c.index + 1 == 45:
            raise Killed

    db = tmp_path / "s.db"
    with pytest.raises(Killed):
        _run("evolution", budget=80, storage=db, callbacks=[kill])
    _, res = _run("evolution", budget=80, storage=db, resume=True)
    assert [x.arch_id for x in res.archs] == [x.arch_id for x in ref.archs]


def test_presets_give_the_published_settings_and_explicit_ones_win() -> None:
    from nasforge.errors import InvalidInputError
    from nasforge.search_spaces import get_space
    from nasforge.strategies import EvolutionStrategy
    from nasforge.strategies import FlopsObjective
    from nasforge.strategies import SearchObjectives

    space = get_space("hat_wmt14ende")
    objs = SearchObjectives([FlopsObjective(space)])
    hat = EvolutionStrategy(space, objs, preset="hat")
    assert (hat.population_size, hat.parents, hat.mutations, hat.crossovers,
            hat.mutation_prob) == (125, 25, 50, 50, 0.3)
    ofa = EvolutionStrategy(space, objs)
    assert (ofa.population_size, ofa.mutation_prob) == (100, 0.1)
    assert EvolutionStrategy(space, objs, preset="hat", mutation_prob=0.2).mutation_prob == 0.2
    with pytest.raises(InvalidInputError, match="preset must be one of"):
        EvolutionStrategy(space, objs, preset="nsga")


def test_a_preset_in_the_config_is_not_scaled_to_the_budget() -> None:
    from nasforge.experiments.config import ExperimentConfig
    from nasforge.experiments.runner import strategy_settings

    cfg = ExperimentConfig.from_dict({"search_space": "hat_wmt14ende", "device": "pixel7",
                                      "budget": 60, "strategy": {"name": "evolution",
                                                                 "preset": "hat"}})
    assert strategy_settings(cfg) == {"preset": "hat"}
