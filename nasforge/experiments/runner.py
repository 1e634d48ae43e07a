"""One search run, end to end: what ``nas search`` and ``nas run`` do.

:func:`run_experiment` runs four steps, each in its own module, in one direction:

1. :func:`~nasforge.experiments._inputs.resolve_inputs` — names and files become objects once:
   the space, the strategy class, the latency source (with the budget's feasibility checked)
   and the accuracy source (a supernet checkpoint, the embedded quick supernet — trained there,
   once, cached —, a saved predictor, a tabular benchmark, or a Ray actor pool);
2. :func:`~nasforge.experiments._objectives.build_objectives` — accuracy, latency, MFLOPs and
   params, with the constraints as upper bounds;
3. the search: the strategy built with its settings, :func:`~nasforge.strategies.run_search`
   with every evaluation persisted to SQLite (so ``resume`` loses nothing) and the progress
   reported through :class:`~nasforge.progress.ProgressBar`;
4. :func:`~nasforge.experiments._outputs.write_outputs` — the run folder (``best.yaml``,
   ``pareto.csv``, ``candidates.csv``, ``pareto.png``, ``run.json``).

The returned :class:`RunOutcome` carries the manifest written to ``run.json``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.experiments._inputs import AccuracyEvaluator
from nasforge.experiments._inputs import RunInputs
from nasforge.experiments._inputs import resolve_inputs
from nasforge.experiments._objectives import ACCURACY
from nasforge.experiments._objectives import RunObjectives
from nasforge.experiments._objectives import build_objectives
from nasforge.experiments._outputs import run_name
from nasforge.experiments._outputs import write_outputs
from nasforge.experiments.config import ExperimentConfig
from nasforge.progress import ProgressBar
from nasforge.strategies import BaseStrategy
from nasforge.strategies import Callback
from nasforge.strategies import Candidate
from nasforge.strategies import SearchResult
from nasforge.strategies import run_search

__all__ = ["RunOutcome", "run_experiment", "run_name", "storage_path", "strategy_settings"]


@dataclass(frozen=True)
class RunOutcome:
    """Where a run wrote its outputs and what it found.

    Attributes:
        out_dir: the run folder.
        manifest: what ``run.json`` holds (config, versions, provenance, objectives,
            strategy, summary).
    """

    out_dir: Path
    manifest: dict[str, Any]

    @property
    def summary(self) -> dict[str, Any]:
        """The manifest's summary: name, best, n_evaluated, pareto_size, seconds, ..."""
        return dict(self.manifest["summary"])


def run_experiment(cfg: ExperimentConfig, *, progress: bool = True,
                   evaluator: AccuracyEvaluator | None = None,
                   callbacks: Sequence[Callback] = ()) -> RunOutcome:
    """Run one search and write its folder (see the module docstring).

    Args:
        cfg: the experiment.
        progress: show the progress bars (when logging shows INFO; the CLI decides).
        evaluator: an accuracy evaluator with ``evaluate_many(archs) -> top-1 %`` and
            ``provenance()``; default: in-process, or a Ray actor pool of ``cfg.workers``
            actors when ``cfg.workers > 1``.
        callbacks: called with every evaluated candidate (e.g. a sweep reporting to Ray
            Tune's schedulers); one returning True ends the search.

    Raises:
        NasforgeError: bad names, files or combinations (one line for the CLI).
    """
    t0 = time.perf_counter()
    inputs = resolve_inputs(cfg, evaluator=evaluator, progress=progress)
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        built = build_objectives(cfg, inputs)
        result = _search(cfg, inputs, built, out, progress, callbacks)
    finally:
        inputs.close()
    manifest = write_outputs(cfg, inputs.space, result, built, out, time.perf_counter() - t0)
    return RunOutcome(out, manifest)


# ---- step 3: the search --------------------------------------------------------------------
def _search(cfg: ExperimentConfig, inputs: RunInputs, built: RunObjectives, out: Path,
            progress: bool, callbacks: Sequence[Callback]) -> SearchResult:
    strategy = _strategy(cfg, inputs, built)
    db = storage_path(cfg, out)
    db.parent.mkdir(parents=True, exist_ok=True)
    # supernet accuracy is evaluated in chunks (batched, or spread over the actor pool)
    chunk = None if cfg.accuracy_source() in ("benchmark", "predictor") else max(8, cfg.workers)
    with ProgressBar("search", total=cfg.budget, enabled=progress) as bar:
        return run_search(strategy, budget=cfg.budget, storage=db,
                          resume=cfg.resume, callbacks=[_advance(bar), *callbacks],
                          eval_chunk=chunk)


def strategy_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """The strategy's settings: the config's, with evolution's population scaled to the budget.

    OFA/HAT's evolution defaults (population 100, 25 parents, 50 + 50 children) need thousands
    of evaluations; without a ``population_size`` they are scaled to the budget so that
    evolution gets several generations.

    Example:
        >>> cfg = ExperimentConfig.from_dict({"search_space": "elasticvit", "device": "pixel7",
        ...                                   "budget": 60})
        >>> strategy_settings(cfg)
        {'population_size': 12, 'parents': 3, 'mutations': 6, 'crossovers': 6}
    """
    settings = dict(cfg.strategy.settings)
    if cfg.strategy.name == "evolution" and "population_size" not in settings:
        pop = int(min(100, max(8, cfg.budget // 5)))
        settings.update(population_size=pop, parents=max(2, pop // 4),
                        mutations=pop // 2, crossovers=pop - pop // 2)
    return settings


def _strategy(cfg: ExperimentConfig, inputs: RunInputs, built: RunObjectives) -> BaseStrategy:
    try:
        return inputs.strategy_cls(inputs.space, built.objectives, seed=cfg.seed,
                                   **strategy_settings(cfg))
    except TypeError as e:
        raise InvalidInputError(f"strategy {cfg.strategy.name!r}: {e}") from None


def storage_path(cfg: ExperimentConfig, out: Path) -> Path:
    """The SQLite file of the run's study: ``cfg.storage`` or ``out/search.db``.

    Raises:
        InvalidInputError: a storage URL other than ``sqlite:///PATH`` or a plain path.
    """
    url = cfg.storage or f"sqlite:///{out / 'search.db'}"
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    if "://" in url:
        raise InvalidInputError(
            f"storage must be a sqlite:///PATH URL or a file path, got {url!r}")
    return Path(url)


def _advance(bar: ProgressBar) -> Callable[[Candidate], None]:
    """A search callback moving ``bar`` on and showing the best feasible accuracy so far."""
    best = -math.inf

    def advance(c: Candidate) -> None:
        nonlocal best
        acc = c.values.get(ACCURACY, math.nan)
        if c.feasible and acc > best:
            best = acc
        bar.advance(best=f"{best:.2f}" if math.isfinite(best) else "-")

    return advance
