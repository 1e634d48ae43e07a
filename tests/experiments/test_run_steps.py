"""The run's steps: inputs resolved once, the outcome carries run.json's manifest, ConfigError's
field path as attributes (tabular NAS-Bench-201: seconds, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasforge.errors import ConfigError
from nasforge.errors import IncompatibleComponentsError
from nasforge.evaluation import TableLatency
from nasforge.evaluation import TabularBenchmark
from nasforge.experiments._inputs import resolve_inputs
from nasforge.experiments._objectives import build_objectives
from nasforge.experiments.config import ExperimentConfig
from nasforge.experiments.runner import run_experiment
from nasforge.experiments.runner import strategy_settings
from nasforge.experiments.sweep import SweepConfig


def _cfg(nb201_table: Path, out: Path, **changes: object) -> ExperimentConfig:
    data = {"search_space": "nasbench201", "device": "pixel3_ms", "budget": 24, "seed": 1,
            "strategy": "random", "out": str(out), "constraints": {"latency_ms": 8},
            "benchmark": {"path": str(nb201_table),
                          "metric": "cifar10_val"}}
    data.update(changes)
    return ExperimentConfig.from_dict(data)


def test_outcome_carries_the_manifest_written_to_run_json(nb201_table: Path,
                                                          tmp_path: Path) -> None:
    outcome = run_experiment(_cfg(nb201_table, tmp_path / "run"), progress=False)
    on_disk = json.loads((tmp_path / "run" / "run.json").read_text())
    assert outcome.manifest == on_disk
    assert outcome.summary == on_disk["summary"]
    assert outcome.summary["n_evaluated"] == 24
    assert on_disk["outputs"] == ["best.yaml", "pareto.csv", "candidates.csv", "pareto.png",
                                  "run.json"]


def test_inputs_share_one_table_and_objectives_follow(nb201_table: Path,
                                                       tmp_path: Path) -> None:
    cfg = _cfg(nb201_table, tmp_path)
    inputs = resolve_inputs(cfg, progress=False)
    assert inputs.space.name == "nasbench201"
    assert isinstance(inputs.accuracy, TabularBenchmark)
    assert isinstance(inputs.latency, TableLatency)
    # the accuracy and latency columns share the rows read once
    assert inputs.accuracy.table is inputs.latency.table
    built = build_objectives(cfg, inputs)
    assert list(built.objectives.names) == ["accuracy", "latency_ms", "mflops", "params_m"]
    assert built.device_provenance["provenance"] == "measured"
    assert built.accuracy_provenance["metric"] == "cifar10_val"


def test_infeasible_budget_fails_before_any_accuracy_source(nb201_table: Path,
                                                             tmp_path: Path) -> None:
    cfg = _cfg(nb201_table, tmp_path, constraints={"latency_ms": 1e-6})
    with pytest.raises(IncompatibleComponentsError, match="smallest achievable latency"):
        resolve_inputs(cfg, progress=False)
    assert not tmp_path.joinpath("run.json").exists()


def test_evolution_population_scales_with_the_budget() -> None:
    base = {"search_space": "elasticvit", "device": "pixel7"}
    small = ExperimentConfig.from_dict({**base, "budget": 20})
    assert strategy_settings(small) == {"population_size": 8, "parents": 2, "mutations": 4,
                                        "crossovers": 4}
    big = ExperimentConfig.from_dict({**base, "budget": 2000})
    assert strategy_settings(big)["population_size"] == 100
    given = ExperimentConfig.from_dict({**base, "strategy": {"name": "evolution",
                                                              "population_size": 30}})
    assert strategy_settings(given) == {"population_size": 30}


def test_config_error_carries_its_field_path() -> None:
    with pytest.raises(ConfigError) as e:
        ExperimentConfig.from_dict({"search_space": "elasticvit", "device": "pixel7",
                                    "constraints": {"latency_ms": -3}}, "exp.yaml")
    assert (e.value.path, e.value.source) == ("constraints.latency_ms", "exp.yaml")
    assert e.value.problem == "must be a positive number, got -3"
    assert str(e.value) == "exp.yaml: constraints.latency_ms: must be a positive number, got -3"
    # a sweep re-frames it with the grid value at fault, from the attributes
    with pytest.raises(ConfigError) as s:
        SweepConfig.from_dict({"base": {"search_space": "nasbench201", "device": "pixel3_ms"},
                               "grid": {"budget": [10, 0]}}, "sweep.yaml")
    assert (s.value.path, s.value.source) == ("grid.budget[1]", "sweep.yaml")
    assert s.value.problem == "must be an integer >= 1, got 0"
