"""Step 1 of a run: resolve an experiment's names and files into objects, once.

:func:`resolve_inputs` turns the strings of an :class:`ExperimentConfig` into what the later
steps use, in an order that fails cheaply first: the search space and the strategy name, the
latency source (a device's latency model, or a latency column of the benchmark table) and the
feasibility of the latency budget, then the accuracy source — a zero-cost proxy, a tabular
benchmark, a saved predictor, an injected evaluator, a Ray actor pool, or a supernet (the
user's checkpoint, or the embedded quick supernet, trained here once and cached). Nothing
later re-reads a file: the benchmark table is read once and shared by its accuracy and latency
columns.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.experiments.config import ExperimentConfig
from nasforge.search_spaces import get_space
from nasforge.strategies import STRATEGIES
from nasforge.strategies import TabularBenchmark
from nasforge.validation import check_output_dir
from nasforge.validation import check_unique
from nasforge.validation import read_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nasforge.predictors import BasePredictor
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies import BaseStrategy

__all__ = [
    "AccuracyEvaluator",
    "BenchmarkAccuracy",
    "EvaluatorAccuracy",
    "LatencySource",
    "PredictorAccuracy",
    "RunInputs",
    "SupernetAccuracy",
    "read_benchmark",
    "resolve_inputs",
]

logger = logging.getLogger(__name__)

#: archs sampled (besides the smallest) to find the smallest achievable latency
_FEASIBILITY_PROBES = 256


class AccuracyEvaluator(Protocol):
    """An accuracy evaluator run outside this process (e.g. the Ray actor pool)."""

    def evaluate_many(self, archs: Sequence[Arch]) -> Any:
        """Top-1 (%) of each architecture."""

    def provenance(self) -> dict[str, Any]:
        """What produced the numbers (recorded in ``run.json``)."""


@dataclass(frozen=True)
class LatencySource:
    """Where latency comes from: a device's latency model or a column of the benchmark table.

    Attributes:
        model: the device's latency model (``predict_many(archs) -> ms``), or None.
        column: the benchmark column (a :class:`TabularBenchmark`), or None.
        provenance: the device profile (or the column's source) for ``run.json``.
    """

    model: Any
    column: TabularBenchmark | None
    provenance: dict[str, Any]

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Latency (ms) of each architecture."""
        if self.column is not None:
            return np.asarray(self.column.evaluate_many(archs), dtype=np.float64)
        return np.asarray(self.model.predict_many(list(archs)), dtype=np.float64)


@dataclass(frozen=True)
class BenchmarkAccuracy:
    """Accuracy read from a column of a tabular benchmark."""

    column: TabularBenchmark
    provenance: dict[str, Any]


@dataclass(frozen=True)
class PredictorAccuracy:
    """Accuracy predicted by a saved predictor."""

    predictor: BasePredictor
    provenance: dict[str, Any]


@dataclass(frozen=True)
class EvaluatorAccuracy:
    """Accuracy from an evaluator outside this process (the Ray actor pool, a caller's own)."""

    evaluator: AccuracyEvaluator
    provenance: dict[str, Any]


@dataclass(frozen=True)
class SupernetAccuracy:
    """Accuracy of subnets of a loaded supernet on its training data's validation split."""

    supernet: Any
    data: Any
    device: str
    checkpoint: Path
    seed: int


Accuracy = BenchmarkAccuracy | PredictorAccuracy | EvaluatorAccuracy | SupernetAccuracy


@dataclass
class RunInputs:
    """Everything a run needs, resolved from its config.

    Attributes:
        space: the search space.
        strategy_cls: the strategy class (not yet built: it needs the objectives).
        latency: the latency source.
        accuracy: the accuracy source.
        pool: a Ray actor pool this step started (the run closes it), or None.
    """

    space: SearchSpace
    strategy_cls: type[BaseStrategy]
    latency: LatencySource
    accuracy: Accuracy
    pool: Any = None

    def close(self) -> None:
        """Release what resolving started (the actor pool)."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None


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
    space = get_space(cfg.search_space)
    strategy_cls = STRATEGIES.get(cfg.strategy.name)
    check_output_dir(cfg.out, "--out")  # before any work: a file, a read-only folder
    table = read_benchmark(cfg, space)
    latency = _latency_source(cfg, table)
    _check_feasible(cfg, space, latency)
    accuracy, pool = _accuracy_source(cfg, space, table, evaluator, progress)
    return RunInputs(space, strategy_cls, latency, accuracy, pool)


def read_benchmark(cfg: ExperimentConfig, space: SearchSpace) -> TabularBenchmark | None:
    """The benchmark CSV (read once: its accuracy and latency columns share the rows).

    The columns the run uses are checked on every row before anything runs: a negative, NaN,
    infinite or non-numeric value, or an architecture listed twice, would otherwise become a
    wrong result with exit code 0 (issue 16).
    """
    if cfg.benchmark is None:
        return None
    import pandas as pd

    path = cfg.benchmark.path
    text = read_text(path, "benchmark table")
    try:
        table = pd.read_csv(io.StringIO(text))
    except ValueError as exc:  # empty file, ragged rows: pandas' parser errors
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(f"benchmark table {path} is not a readable CSV: {first}"
                                ) from None
    if len(table) == 0:
        raise InvalidInputError(f"benchmark table {path} has no rows; give one row per "
                                "architecture")
    for key in ("arch_str", "arch_id"):
        if key in table.columns:
            check_unique(table[key].astype(str), f"benchmark table {path}, column {key}")
            break
    _check_column(table, cfg.benchmark.metric, path, low=0.0, high=100.0,
                 what="an accuracy in % (0..100)")
    if cfg.device.endswith("_ms"):
        _check_column(table, cfg.device, path, low=0.0, low_open=True,
                     what="a latency in ms (> 0)")
    return TabularBenchmark(table, cfg.benchmark.metric, space, source=str(path))


def _check_column(table: Any, column: str, source: str, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False, what: str = "a number"
                 ) -> None:
    """Every value of ``table[column]`` is a finite number in range (a missing column is left
    to :class:`TabularBenchmark`, which names the closest one).

    Raises:
        InvalidInputError: the first bad row (1-based data row, as a spreadsheet counts after
            the header), its value, and how many rows are bad.
    """
    import pandas as pd

    if column not in table.columns:
        return
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if low is not None:
        bad |= values <= low if low_open else values < low
    if high is not None:
        bad |= values > high
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"benchmark table {source}, column {column}, row {i + 1}: {raw.iloc[i]!r} is not "
            f"{what} ({int(bad.sum())} bad row(s)); fix or drop those rows")


def _latency_source(cfg: ExperimentConfig, table: TabularBenchmark | None) -> LatencySource:
    if table is not None and cfg.benchmark is not None and cfg.device.endswith("_ms"):
        # a latency column of the benchmark table, measured on a real device
        return LatencySource(None, table.column(cfg.device, cheap=True), {
            "device": cfg.device, "provenance": "measured",
            "source": f"column {cfg.device} of {cfg.benchmark.path}"})
    from nasforge.hardware_models import device_profile
    from nasforge.hardware_models import get_device

    model = get_device(cfg.device)
    return LatencySource(model, None, device_profile(cfg.device).to_dict())


def _check_feasible(cfg: ExperimentConfig, space: SearchSpace, latency: LatencySource) -> None:
    budget = cfg.constraints.latency_ms
    if budget is None:
        return
    rng = np.random.default_rng(cfg.seed)
    probe = [space.min_arch()] + [space.sample(rng) for _ in range(_FEASIBILITY_PROBES)]
    smallest = float(np.min(latency.evaluate_many(probe)))
    if smallest > budget:
        raise IncompatibleComponentsError(
            f"latency budget {budget:g} ms is below the smallest achievable latency on "
            f"{cfg.device}: {smallest:.2f} ms (the space's smallest architecture); raise "
            f"--latency to at least {smallest:.2f}"
        )


def _accuracy_source(cfg: ExperimentConfig, space: SearchSpace,
                     table: TabularBenchmark | None, evaluator: AccuracyEvaluator | None,
                     progress: bool) -> tuple[Accuracy, Any]:
    """The accuracy source and the actor pool started for it (None when none was)."""
    if cfg.accuracy is not None:  # a zero-cost proxy of each randomly initialised subnet
        from nasforge.strategies.objectives import ProxyObjective

        proxy = ProxyObjective.from_name(cfg.accuracy.source, space, seed=cfg.seed,
                                         data=cfg.accuracy.data)
        return EvaluatorAccuracy(proxy, proxy.provenance()), None
    if table is not None and cfg.benchmark is not None:
        column = table.column(cfg.benchmark.metric, direction="maximize", cheap=False)
        return BenchmarkAccuracy(column, {"kind": "tabular benchmark",
                                          "path": cfg.benchmark.path,
                                          "metric": cfg.benchmark.metric}), None
    if cfg.predictor is not None:
        from nasforge.predictors import BasePredictor

        pred = BasePredictor.load(str(cfg.predictor))
        return PredictorAccuracy(pred, {"kind": "predictor", "path": cfg.predictor,
                                        "predictor": pred.name}), None
    if not space.has_model:
        raise IncompatibleComponentsError(
            f"space {space.name!r} is tabular: give --benchmark CSV --metric COL or --predictor"
        )
    if evaluator is not None:  # e.g. the caller's Ray actor pool
        return EvaluatorAccuracy(evaluator, dict(evaluator.provenance())), None
    ckpt = _checkpoint(cfg, space, progress)
    if cfg.workers > 1:
        from nasforge.experiments.pool import SupernetActorPool

        pool = SupernetActorPool.from_checkpoint(ckpt, workers=cfg.workers)
        return EvaluatorAccuracy(pool, dict(pool.provenance())), pool
    return _load_supernet(cfg, space, ckpt), None


def _checkpoint(cfg: ExperimentConfig, space: SearchSpace, progress: bool) -> Path:
    """The supernet checkpoint: the user's, or the quick supernet (trained once, cached)."""
    if cfg.accuracy_source() != "quick-supernet":
        return Path(str(cfg.supernet))
    from nasforge._paths import cache_dir
    from nasforge.supernet import train_quick_supernet
    from nasforge.supernet.training.quick import resolve_device

    logger.info("no --supernet/--predictor/--benchmark: using the embedded quick supernet of "
                "%s on `digits` (trained once, cached under %s)", space.name, cache_dir())
    return train_quick_supernet(space, cache_dir(), progress=progress,
                                device=resolve_device(cfg.accelerator))


def _load_supernet(cfg: ExperimentConfig, space: SearchSpace, ckpt: Path) -> SupernetAccuracy:
    from nasforge.supernet import load_supernet
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.training.quick import resolve_device

    device = resolve_device(cfg.accelerator)
    supernet, state = load_supernet(ckpt, expect_space=space.name)
    run = RunConfig.from_checkpoint(state)  # data, size, resolution scale, seed
    return SupernetAccuracy(supernet, run.open_data(), str(device), ckpt, run.seed)
