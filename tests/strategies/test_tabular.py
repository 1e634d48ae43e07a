"""Tabular mode on a (generated) NAS-Bench-201 table, and objective error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasforge.errors import InvalidInputError
from nasforge.evaluation import TabularBenchmark
from nasforge.search_spaces import get_space
from nasforge.strategies import EvolutionStrategy
from nasforge.strategies import FlopsObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import run_search


@pytest.fixture(scope="module")
def nb201_csv(nb201_table: Path) -> Path:
    """The generated NB201 table (``tests/nb201_table.py``)."""
    return nb201_table


def test_unknown_metric_lists_columns_and_closest(nb201_csv: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"did you mean 'cifar10_val'.*pixel3_ms"):
        TabularBenchmark.from_csv(nb201_csv, "cifar10_vall", get_space("nasbench201"))


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        TabularBenchmark.from_csv(tmp_path / "nope.csv", "acc", get_space("nasbench201"))


def test_evolution_pareto_on_the_table(nb201_csv: Path) -> None:
    space = get_space("nasbench201")
    acc = TabularBenchmark.from_csv(nb201_csv, "cifar10_val", space)
    lat = acc.column("pixel3_ms", lower=0.1)
    assert lat.cheap and not acc.cheap and lat.direction == "minimize"
    objs = SearchObjectives([acc, lat], mode="pareto")
    strategy = EvolutionStrategy(space, objs, seed=0, population_size=20, mutations=10,
                                 crossovers=10, mode="pareto")
    res = run_search(strategy, budget=100)
    assert res.n_evaluated == 100 and acc.n_unique == 100
    assert (res.candidates["pixel3_ms"] >= 0.1).all()  # degenerate cells rejected (cheap bound)
    front = res.pareto_frame
    assert len(front) >= 2
    # the front is sorted by accuracy (descending = first Pareto objective minimised) and
    # trades accuracy for latency
    assert np.all(np.diff(front["cifar10_val"].to_numpy()) <= 0)
    assert np.all(np.diff(front["pixel3_ms"].to_numpy()) <= 0)


def test_table_keyed_by_arch_id_and_flops_bound() -> None:
    space = get_space("nasbench201")
    rng = np.random.default_rng(0)
    archs = {a.arch_id: a for a in (space.sample(rng) for _ in range(300))}
    table = pd.DataFrame({"arch_id": list(archs), "acc": np.arange(len(archs), dtype=float)})
    bench = TabularBenchmark(table, "acc", space)
    assert bench.key == "arch_id"
    a = next(iter(archs.values()))
    assert bench.evaluate(a) == 0.0
    flops = FlopsObjective(space, upper=100.0)
    objs = SearchObjectives([bench, flops])
    assert objs.primary == "acc"
    vals = objs.evaluate([a])
    assert objs.score(vals)[0] == (0.0 if vals[0, 1] <= 100 else -np.inf)
