"""Step 1 of a run: resolve an experiment's names and files into objects, once.

:func:`resolve_inputs` turns the strings of an :class:`ExperimentConfig` into what the later
steps use, in an order that fails cheaply first: the search space and the strategy name, the
latency source (:func:`nasforge.evaluation.resolve_latency`: a device's latency model, or a
latency column of the benchmark table) and the feasibility of the latency budget, then the
accuracy source (:func:`nasforge.evaluation.resolve`: a zero-cost proxy, a tabular benchmark, a
saved predictor, an injected evaluator, a Ray actor pool, or a supernet — the user's
checkpoint, or the embedded quick supernet, trained there once and cached). Nothing later
re-reads a file: the benchmark table is read once and shared by its accuracy and latency
columns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.evaluation import is_latency_column
from nasforge.evaluation import read_benchmark
from nasforge.evaluation import resolve
from nasforge.evaluation import resolve_latency
from nasforge.evaluation.sources import csv_spec
from nasforge.experiments._objectives import ACCURACY
from nasforge.experiments._objectives import LATENCY
from nasforge.experiments._space import space_of
from nasforge.experiments.config import ExperimentConfig
from nasforge.strategies import STRATEGIES
from nasforge.validation import check_output_dir

if TYPE_CHECKING:
    from nasforge.evaluation import AccuracyEvaluator
    from nasforge.evaluation import AccuracyObjective
    from nasforge.evaluation import TabularBenchmark
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies import BaseStrategy
    from nasforge.strategies import Objective

__all__ = ["RunInputs", "read_table", "resolve_inputs"]

logger = logging.getLogger(__name__)

#: archs sampled (besides the smallest) to find the smallest achievable latency
_FEASIBILITY_PROBES = 256


@dataclass
class RunInputs:
    """Everything a run needs, resolved from its config.

    Attributes:
        space: the search space.
        strategy_cls: the strategy class (not yet built: it needs the objectives).
        latency: the latency objective (a device's model, or a benchmark's latency column),
            with the budget as its upper bound.
        accuracy: the accuracy source (it says its metric label and whether it is batched).
    """

    space: SearchSpace
    strategy_cls: type[BaseStrategy]
    latency: Objective
    accuracy: AccuracyObjective

    def close(self) -> None:
        """Release what resolving started (an actor pool)."""
        self.accuracy.close()


def resolve_inputs(cfg: ExperimentConfig, *, evaluator: AccuracyEvaluator | None = None,
                   progress: bool = True) -> RunInputs:
    """Resolve the names and files of ``cfg`` (see the module docstring).

    Args:
        cfg: the experiment.
        evaluator: an accuracy evaluator to use instead of an in-process supernet.
        progress: show the quick supernet's training progress.

    Raises:
        NasforgeError: an unknown name, a bad file, a tabular space without a table, or a
            latency budget below the smallest achievable latency.
    """
    space = space_of(cfg.search_space, cfg.space_options)
    strategy_cls = STRATEGIES.get(cfg.strategy.name)
    check_output_dir(cfg.out, "--out")  # before any work: a file, a read-only folder
    table = read_table(cfg, space)
    latency = resolve_latency(cfg.device, table=table, upper=cfg.constraints.latency_ms,
                              name=LATENCY, space=space)
    _check_feasible(cfg, space, latency)
    accuracy = resolve(cfg.accuracy.source, space, name=ACCURACY, seed=cfg.seed,
                       settings=cfg.evaluation, data=cfg.accuracy.data, progress=progress,
                       table=table, evaluator=evaluator, checkpoint_seed=True)
    return RunInputs(space, strategy_cls, latency, accuracy)


def read_table(cfg: ExperimentConfig, space: SearchSpace) -> TabularBenchmark | None:
    """The benchmark CSV of a ``csv:`` accuracy spec, read once (its accuracy and latency
    columns share the rows), the columns the run uses checked on every row; None for other
    sources."""
    if cfg.accuracy.kind != "csv":
        return None
    path, metric = csv_spec(cfg.accuracy.source)
    latency = cfg.device if is_latency_column(cfg.device) else None
    return read_benchmark(path, metric, space, latency_column=latency)


def _check_feasible(cfg: ExperimentConfig, space: SearchSpace, latency: Objective) -> None:
    """Refuse, before any work, a budget below what the space's smallest architectures reach:
    the message gives the real minimum (rounded up, so the hint is itself feasible) and the
    flag of the bound that was given."""
    c = cfg.constraints
    if c.latency_ms is None and c.mflops is None and c.params_m is None:
        return
    rng = np.random.default_rng(cfg.seed)
    probe = [space.min_arch()] + [space.sample(rng) for _ in range(_FEASIBILITY_PROBES)]
    measures: list[tuple[float | None, str, str, str, Callable[[], float]]] = [
        (c.mflops, "FLOPs", "MFLOPs", "--flops (constraints.mflops)",
         lambda: min(space.flops(a) for a in probe) / 1e6),
        (c.params_m, "parameter", "M parameters", "--params (constraints.params_m)",
         lambda: min(space.params(a) for a in probe) / 1e6),
        (c.latency_ms, "latency", "ms", "--latency (constraints.latency_ms)",
         lambda: float(np.min(latency.evaluate_many(probe)))),
    ]
    for budget, what, unit, flag, smallest_of in measures:
        if budget is None:
            continue
        smallest = smallest_of()
        if smallest > budget:
            where = f" on {cfg.device}" if what == "latency" else ""
            raise IncompatibleComponentsError(
                f"{what} budget {budget:g} {unit} is below the smallest achievable {what}"
                f"{where}: {smallest:.6g} {unit} (the space's smallest architectures); raise "
                f"{flag} to at least {round_up(smallest):g}"
            )


def round_up(x: float, digits: int = 3) -> float:
    """``x`` rounded up to ``digits`` significant digits (a hint that is itself feasible).

    Example:
        >>> round_up(2.7312), round_up(0.000123456), round_up(41.5), round_up(0.0)
        (2.74, 0.000124, 41.5, 0.0)
    """
    if x <= 0 or not math.isfinite(x):
        return x
    scale = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return float(f"{math.ceil(round(x / scale, 9)) * scale:.{digits}g}")
