"""The generated NB201 table the tests of behaviour run on: complete, seeded, shaped like the
measured one (the last test compares it with ``../shared/data``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasforge.evaluation import TabularBenchmark
from nasforge.search_spaces import get_space
from nasforge.search_spaces._nasbench201_cell import is_degenerate
from tests.nb201_table import COLUMNS
from tests.nb201_table import nb201_frame


def test_every_cell_once_same_seed_same_table(nb201_table: Path) -> None:
    t = pd.read_csv(nb201_table)
    assert tuple(t.columns) == COLUMNS and len(t) == 15_625
    assert t["arch_str"].is_unique and (t["index"] == np.arange(15_625)).all()
    pd.testing.assert_frame_equal(t, nb201_frame(0), check_exact=False, rtol=1e-12)
    assert not nb201_frame(1)["arch_str"].equals(t["arch_str"])


def test_figures_in_range_and_degenerate_cells_near_zero(nb201_table: Path) -> None:
    t = pd.read_csv(nb201_table)
    acc = t.filter(like="_val").join(t.filter(like="_test"))
    assert ((acc >= 0) & (acc <= 100)).all().all()
    assert (t[["pixel3_ms", "raspi4_ms"]] > 0).all().all()
    space = get_space("nasbench201")
    dead = np.array([is_degenerate(space.arch_from_str(s)) for s in t["arch_str"]])
    assert dead.any() and (t["pixel3_ms"][dead] < 0.1).all() and (t["pixel3_ms"][~dead] > 0.1).all()
    # bigger cells: more accurate and slower (the searches' Pareto fronts rely on it)
    assert t["cifar10_val"].corr(t["pixel3_ms"], method="spearman") > 0.5


def test_the_benchmark_reads_it(nb201_table: Path) -> None:
    space = get_space("nasbench201")
    bench = TabularBenchmark.from_csv(nb201_table, "cifar10_val", space)
    assert bench.evaluate(space.max_arch()) > bench.evaluate(space.min_arch())


@pytest.mark.fidelity
def test_columns_dtypes_and_cells_match_the_measured_table(shared_data: Path) -> None:
    real = pd.read_csv(shared_data / "nb201_dev" / "nb201_dev.csv")
    made = nb201_frame(0)
    assert list(made.columns) == list(real.columns)
    assert (made.dtypes == real.dtypes).all(), (made.dtypes, real.dtypes)
    assert set(made["arch_str"]) == set(real["arch_str"])
