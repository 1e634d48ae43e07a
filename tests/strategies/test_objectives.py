"""The objectives package: import paths, the per-arch memo, the typed adapters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.evaluation import PredictorObjective
from nasforge.evaluation import SupernetAccuracyObjective
from nasforge.evaluation import TabularBenchmark
from nasforge.search_spaces import NB201Space
from nasforge.search_spaces import get_space
from nasforge.search_spaces.choice_space import ChoiceSpace
from nasforge.strategies.objectives import ArchMemo
from nasforge.strategies.objectives import CallableObjective
from nasforge.strategies.objectives import FlopsObjective
from nasforge.strategies.objectives import LatencyObjective
from nasforge.strategies.objectives import LatencySource
from nasforge.strategies.objectives import ParamsObjective
from nasforge.strategies.objectives import SearchObjectives
from nasforge.strategies.objectives import SurrogatePredictor

OLD_NAMES = ("Bound", "CallableObjective", "Direction", "FlopsObjective", "LatencyObjective",
             "Objective", "ParamsObjective", "SearchObjectives")
#: the measured accuracy sources moved to nasforge.evaluation (issue 22)
MOVED_NAMES = ("PredictorObjective", "SupernetAccuracyObjective", "TabularBenchmark")


def test_every_name_of_the_old_module_is_importable_from_both_places() -> None:
    import nasforge.evaluation as evaluation
    import nasforge.strategies as strategies
    import nasforge.strategies.objectives as objectives

    for name in OLD_NAMES:
        assert hasattr(objectives, name), name
        if name != "Direction":
            assert getattr(strategies, name) is getattr(objectives, name)
    assert set(OLD_NAMES) <= set(objectives.__all__)
    for name in MOVED_NAMES:
        assert hasattr(evaluation, name), name
    assert set(MOVED_NAMES) <= set(evaluation.__all__)


def test_memo_computes_each_distinct_key_once() -> None:
    memo: ArchMemo[str] = ArchMemo()
    seen: list[list[int]] = []

    def compute(todo: list[int]) -> list[float]:
        seen.append(todo)
        return [float(len(keys[i])) for i in todo]

    keys = ["a", "bb", "a", "ccc", "bb"]
    np.testing.assert_array_equal(memo.lookup(keys, compute), [1.0, 2.0, 1.0, 3.0, 2.0])
    keys = ["ccc", "dddd"]
    np.testing.assert_array_equal(memo.lookup(keys, compute), [3.0, 4.0])
    assert seen == [[0, 1, 3], [1]]
    assert len(memo) == 4
    assert memo.lookup([], compute).shape == (0,)


def test_memo_rows_bound_and_shape_check() -> None:
    memo: ArchMemo[int] = ArchMemo(width=2, max_size=3)
    out = memo.lookup([1, 2, 3, 4], lambda todo: np.array([[i, -i] for i in todo], float))
    assert out.shape == (4, 2)
    np.testing.assert_array_equal(out[:, 1], [0.0, -1.0, -2.0, -3.0])
    # more than max_size keys held: emptied before the next new keys are stored
    got = memo.lookup([4, 5], lambda todo: np.full((len(todo), 2), 9.0))
    np.testing.assert_array_equal(got, [[3.0, -3.0], [9.0, 9.0]])
    assert len(memo) == 1 and 5 in memo
    assert memo.lookup([], lambda todo: np.zeros((0, 2))).shape == (0, 2)
    with pytest.raises(InvalidInputError, match="shape"):
        memo.lookup([7], lambda todo: np.zeros(3))


def test_flops_and_params_match_the_space_and_memoise() -> None:
    space = get_space("nasbench201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    flops, params = FlopsObjective(space), ParamsObjective(space)
    np.testing.assert_array_equal(flops.evaluate_many(archs),
                                  [space.flops(a) / 1e6 for a in archs])
    np.testing.assert_array_equal(params.evaluate_many(archs + archs[:3]),
                                  [space.params(a) / 1e6 for a in archs + archs[:3]])
    assert len(flops._memo) == len(set(archs))
    assert flops.evaluate(archs[0]) == space.flops(archs[0]) / 1e6


def test_cheap_values_by_index_rows_equal_values_by_arch() -> None:
    space = get_space("elasticvit")
    assert isinstance(space, ChoiceSpace)
    rng = np.random.default_rng(1)
    idx = space.sample_indices(rng, 12)
    idx = np.concatenate([idx, idx[:4]])  # repeated rows
    objs = SearchObjectives([CallableObjective("acc", lambda a: [0.0] * len(a)),
                             FlopsObjective(space, upper=300.0), ParamsObjective(space)])
    by_rows = objs.evaluate_cheap_indices(space, idx)
    fresh = SearchObjectives([CallableObjective("acc", lambda a: [0.0] * len(a)),
                              FlopsObjective(space, upper=300.0), ParamsObjective(space)])
    by_archs = fresh.evaluate_cheap(space.from_indices(idx))
    assert by_rows.shape == (16, 2)
    np.testing.assert_array_equal(by_rows, by_archs)
    np.testing.assert_array_equal(objs.cheap_feasible_indices(space, idx),
                                  by_archs[:, 0] <= 300.0)
    assert objs.evaluate_cheap_indices(space, idx[:0]).shape == (0, 2)


def test_latency_objective_takes_a_device_model_and_records_its_profile() -> None:
    from nasforge.hardware_models import get_device

    space = get_space("elasticvit")
    model = get_device("pixel6")
    assert isinstance(model, LatencySource)
    lat = LatencyObjective(model, upper=25.0)
    archs = [space.min_arch(), space.max_arch()]
    np.testing.assert_array_equal(lat.evaluate_many(archs), model.predict_many(archs))
    assert lat.name == "pixel6_ms"
    prov = lat.provenance()
    assert prov["device"] == "pixel6" and prov["profile"]["name"] == "pixel6"
    with pytest.raises(IncompatibleComponentsError, match="predict_many"):
        LatencyObjective(object())  # type: ignore[arg-type]


def test_predictor_objective_equals_the_predictor_and_the_old_fast_path() -> None:
    from nasforge.predictors import GBDTPredictor

    space = get_space("elasticvit")
    rng = np.random.default_rng(2)
    train = [space.sample(rng) for _ in range(80)]
    y = np.array([space.flops(a) for a in train]) / 1e6
    gbdt = GBDTPredictor(n_estimators=40, seed=0).fit(space.encode_many(train), y)
    assert isinstance(gbdt, SurrogatePredictor)
    obj = PredictorObjective(gbdt, space)
    query = [space.sample(rng) for _ in range(50)]
    got = obj.evaluate_many(query)
    X = space.encode_many(query)
    np.testing.assert_array_equal(got, gbdt.predict(X).mean)
    # the fast path the objective used to take by reaching into the booster
    assert gbdt.booster_ is not None
    np.testing.assert_array_equal(got, gbdt.booster_.inplace_predict(X).astype(np.float64))
    assert obj.evaluate_many([]).shape == (0,)
    with pytest.raises(IncompatibleComponentsError, match="predict"):
        PredictorObjective(object(), space)  # type: ignore[arg-type]


def test_supernet_objective_rejects_what_is_not_a_supernet() -> None:
    with pytest.raises(IncompatibleComponentsError, match="set_active"):
        SupernetAccuracyObjective(object(), None)  # type: ignore[arg-type]


def test_tabular_arch_str_table_rejects_other_spaces() -> None:
    nb = get_space("nasbench201")
    assert isinstance(nb, NB201Space)
    table = pd.DataFrame({"arch_str": [nb.min_arch().to_arch_str()], "acc": [10.0]})
    bench = TabularBenchmark(table, "acc", nb)
    assert bench.archs() == [nb.min_arch()]
    with pytest.raises(IncompatibleComponentsError, match="arch_str"):
        bench.evaluate_many([get_space("elasticvit").min_arch()])
    vit = TabularBenchmark(table, "acc", get_space("elasticvit"))
    with pytest.raises(IncompatibleComponentsError, match="cannot parse"):
        vit.archs()
