"""Step 2 of a run: the objectives of a search, from the resolved inputs.

Four objectives, always in this order and under these names (the columns of ``candidates.csv``
and ``pareto.csv``): ``accuracy`` (maximise; the one accuracy source), ``latency_ms``, ``mflops``
and ``params_m`` (minimise; the config's constraints as upper bounds). Accuracy is the primary
objective, and the Pareto front is accuracy x latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasforge.experiments._inputs import BenchmarkAccuracy
from nasforge.experiments._inputs import EvaluatorAccuracy
from nasforge.experiments._inputs import PredictorAccuracy
from nasforge.experiments._inputs import RunInputs
from nasforge.experiments._inputs import SupernetAccuracy
from nasforge.experiments.config import ExperimentConfig
from nasforge.strategies import CallableObjective
from nasforge.strategies import FlopsObjective
from nasforge.strategies import LatencyObjective
from nasforge.strategies import Objective
from nasforge.strategies import ParamsObjective
from nasforge.strategies import PredictorObjective
from nasforge.strategies import SearchObjectives
from nasforge.strategies import SupernetAccuracyObjective

__all__ = ["ACCURACY", "LATENCY", "MFLOPS", "PARAMS", "RunObjectives", "build_objectives"]

ACCURACY, LATENCY, MFLOPS, PARAMS = "accuracy", "latency_ms", "mflops", "params_m"


@dataclass(frozen=True)
class RunObjectives:
    """The objectives of a run and the provenance ``run.json`` records.

    Attributes:
        objectives: accuracy, latency, MFLOPs and params.
        accuracy_provenance: what produced the accuracies.
        device_provenance: the device profile (or the benchmark column) behind the latencies.
    """

    objectives: SearchObjectives
    accuracy_provenance: dict[str, Any]
    device_provenance: dict[str, Any]


def build_objectives(cfg: ExperimentConfig, inputs: RunInputs) -> RunObjectives:
    """Accuracy (maximise), latency, MFLOPs and params (minimise) of ``cfg``'s run."""
    acc, acc_prov = _accuracy(inputs)
    objs = [acc, _latency(cfg, inputs),
            FlopsObjective(inputs.space, upper=cfg.constraints.mflops, name=MFLOPS),
            ParamsObjective(inputs.space, upper=cfg.constraints.params_m, name=PARAMS)]
    return RunObjectives(SearchObjectives(objs, primary=ACCURACY, pareto=[ACCURACY, LATENCY]),
                         acc_prov, dict(inputs.latency.provenance))


def _latency(cfg: ExperimentConfig, inputs: RunInputs) -> Objective:
    bound = cfg.constraints.latency_ms
    column = inputs.latency.column
    if column is not None:
        return CallableObjective(LATENCY, column.evaluate_many, "minimize", upper=bound,
                                 cheap=True)
    return LatencyObjective(inputs.latency.model, upper=bound, name=LATENCY)


def _accuracy(inputs: RunInputs) -> tuple[Objective, dict[str, Any]]:
    source = inputs.accuracy
    if isinstance(source, BenchmarkAccuracy):
        return (CallableObjective(ACCURACY, source.column.evaluate_many, "maximize"),
                dict(source.provenance))
    if isinstance(source, PredictorAccuracy):
        return (PredictorObjective(source.predictor, inputs.space, name=ACCURACY),
                dict(source.provenance))
    if isinstance(source, EvaluatorAccuracy):
        return (CallableObjective(ACCURACY, source.evaluator.evaluate_many, "maximize"),
                dict(source.provenance))
    if isinstance(source, SupernetAccuracy):
        obj = SupernetAccuracyObjective(source.supernet, source.data, device=source.device,
                                        checkpoint=source.checkpoint, seed=source.seed,
                                        name=ACCURACY)
        return obj, obj.provenance()
    raise TypeError(f"unknown accuracy source {type(source).__name__}")  # pragma: no cover
