"""Step 2 of a run: the objectives of a search, from the resolved inputs.

Four objectives, always in this order and under these names (the columns of ``candidates.csv``
and ``pareto.csv``): ``accuracy`` (maximise; the one accuracy source), ``latency_ms``, ``mflops``
and ``params_m`` (minimise; the config's constraints as upper bounds). Accuracy is the primary
objective, and the Pareto front is accuracy x latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from nasforge.experiments.config import ExperimentConfig
from nasforge.strategies import FlopsObjective
from nasforge.strategies import LatencyObjective
from nasforge.strategies import Objective
from nasforge.strategies import ParamsObjective
from nasforge.strategies import SearchObjectives

if TYPE_CHECKING:
    from nasforge.experiments._inputs import RunInputs

__all__ = ["ACCURACY", "LATENCY", "MFLOPS", "PARAMS", "RunObjectives", "build_objectives"]

ACCURACY, LATENCY, MFLOPS, PARAMS = "accuracy", "latency_ms", "mflops", "params_m"


@dataclass(frozen=True)
class RunObjectives:
    """The objectives of a run and the provenance ``run.json`` records.

    Attributes:
        objectives: accuracy, latency, MFLOPs and params.
        accuracy_provenance: what produced the accuracies.
        device_provenance: the device profile (or the benchmark column) behind the latencies.
        metric: the accuracy's label in run names (``top1``, a benchmark column, ``acc``).
        eval_chunk: new candidates per accuracy evaluation (None: all at once).
    """

    objectives: SearchObjectives
    accuracy_provenance: dict[str, Any]
    device_provenance: dict[str, Any]
    metric: str = "acc"
    eval_chunk: int | None = None


def build_objectives(cfg: ExperimentConfig, inputs: RunInputs) -> RunObjectives:
    """Accuracy (maximise), latency, MFLOPs and params (minimise) of ``cfg``'s run."""
    acc = inputs.accuracy
    objs = [acc, inputs.latency,
            FlopsObjective(inputs.space, upper=cfg.constraints.mflops, name=MFLOPS),
            ParamsObjective(inputs.space, upper=cfg.constraints.params_m, name=PARAMS)]
    return RunObjectives(SearchObjectives(objs, primary=ACCURACY, pareto=[ACCURACY, LATENCY]),
                         dict(acc.provenance()), _device_provenance(inputs.latency),
                         acc.metric, cfg.evaluation.eval_chunk_for(acc.batched))


def _device_provenance(latency: Objective) -> dict[str, Any]:
    """The device profile of a latency model, or the benchmark column's provenance."""
    if isinstance(latency, LatencyObjective):
        return dict(latency.model.profile.to_dict())
    return dict(latency.provenance())
