"""One search run, end to end: what ``nas search`` and ``nas run`` do.

:func:`run_experiment` runs four steps, each in its own module, in one direction:

1. :func:`~nasforge.experiments._inputs.resolve_inputs` — names and files become objects once:
   the space, the strategy class, the latency source (with the budget's feasibility checked)
   and the accuracy source, through :func:`nasforge.evaluation.resolve` (a supernet
   checkpoint, the embedded quick supernet — trained there, once, cached —, a saved predictor,
   a tabular benchmark, a zero-cost proxy, or a Ray actor pool);
2. :func:`~nasforge.experiments._objectives.build_objectives` — accuracy, latency, MFLOPs and
   params, with the constraints as upper bounds;
3. the search: the strategy built with its settings, :func:`~nasforge.strategies.run_search`
   with every evaluation a trial of an Optuna study (``cfg.storage``, default
   ``OUT/search.db``; so ``resume`` loses nothing and several workers can share one study),
   the progress reported through :class:`~nasforge.progress.ProgressBar`;
4. :func:`~nasforge.experiments._outputs.write_outputs` — the run folder (``best.yaml``,
   ``pareto.csv``, ``candidates.csv``, ``pareto.png``, ``run.json``).

The run folder is locked for the whole run (:func:`~nasforge.experiments._outputs.lock_out`):
a second search into the same ``out`` is refused instead of overwriting the first. The returned
:class:`RunOutcome` carries the manifest written to ``run.json``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge._paths import check_outside_data
from nasforge.errors import InvalidInputError
from nasforge.evaluation import AccuracyEvaluator
from nasforge.experiments._inputs import RunInputs
from nasforge.experiments._inputs import resolve_inputs
from nasforge.experiments._objectives import ACCURACY
from nasforge.experiments._objectives import RunObjectives
from nasforge.experiments._objectives import build_objectives
from nasforge.experiments._outputs import lock_out
from nasforge.experiments._outputs import run_name
from nasforge.experiments._outputs import write_outputs
from nasforge.experiments.config import ExperimentConfig
from nasforge.progress import ProgressBar
from nasforge.strategies import BaseStrategy
from nasforge.strategies import Callback
from nasforge.strategies import Candidate
from nasforge.strategies import SearchResult
from nasforge.strategies import SearchStudy
from nasforge.strategies import StorageURL
from nasforge.strategies import run_search

__all__ = ["DEFAULT_STUDY", "RunOutcome", "run_experiment", "run_name", "strategy_settings",
           "worker_seed"]

#: the study name of a search given no ``study``
DEFAULT_STUDY = "nasforge"


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
                   callbacks: Sequence[Callback] = (), study: str | None = None,
                   worker: int | None = None) -> RunOutcome:
    """Run one search and write its folder (see the module docstring).

    Args:
        cfg: the experiment.
        progress: show the progress bars (when logging shows INFO; the CLI decides).
        evaluator: an accuracy evaluator with ``evaluate_many(archs) -> top-1 %`` and
            ``provenance()``; default: in-process, or a Ray actor pool of
            ``cfg.evaluation.workers`` actors when that is > 1.
        callbacks: called with every evaluated candidate (e.g. a sweep reporting to Ray
            Tune's schedulers); one returning True ends the search.
        study: the study name in the storage; giving one joins (or continues) that study, as
            ``resume`` does, so that several workers can share it (default
            :data:`DEFAULT_STUDY`, which needs ``cfg.resume`` to continue).
        worker: this process's worker number in a shared study (its strategy is seeded with
            :func:`worker_seed`, so workers propose different archs). With neither ``study``
            nor ``worker`` the run is its study's only writer (worker 0 without claims: each
            round written in one transaction, see ``run_search``'s ``exclusive``); a process
            joining the study while it runs is refused in one line.

    Raises:
        NasforgeError: bad names, files or combinations, an unreachable storage, a study of
            other settings, a run folder in use by another search (one line for the CLI).
    """
    t0 = time.perf_counter()
    out = Path(cfg.out)
    check_outside_data(out, cfg.accuracy.data)
    with lock_out(out):
        inputs = resolve_inputs(cfg, evaluator=evaluator, progress=progress)
        try:
            built = build_objectives(cfg, inputs)
            result, cpu = _search(cfg, inputs, built, out, progress, callbacks, study, worker)
        finally:
            inputs.close()
        manifest = write_outputs(cfg, inputs.space, result, built, out,
                                 time.perf_counter() - t0, cpu)
    return RunOutcome(out, manifest)


# ---- step 3: the search --------------------------------------------------------------------
def _search(cfg: ExperimentConfig, inputs: RunInputs, built: RunObjectives, out: Path,
            progress: bool, callbacks: Sequence[Callback], study: str | None,
            worker: int | None) -> tuple[SearchResult, dict[str, float]]:
    """The search and its process CPU seconds: ``storage_open_cpu_s`` (opening the storage:
    its client's imports, the schema of a new file) and ``cpu_s`` (``run_search``: the study
    created or resumed, every round with its writes, the last writes)."""
    c0 = time.process_time()
    store = SearchStudy(StorageURL.for_run(cfg.storage, out), study or DEFAULT_STUDY,
                        worker=worker or 0, space=inputs.space,
                        exclusive=study is None and worker is None,
                        commit_every=cfg.commit_every, trial_params=cfg.trial_params)
    worker = worker or 0
    strategy = _strategy(cfg, inputs, built, worker, store.stored_meta())
    # a batched source (a supernet, a proxy) is evaluated in chunks (or over the actor pool)
    metric = built.metric if cfg.accuracy.kind == "csv" else None
    meta = {"seed": cfg.seed, "device": cfg.device, "accuracy": cfg.accuracy_source(),
            "metric": metric}
    if cfg.space_options:  # a resume with other restrictions of the space is refused
        meta["space_options"] = cfg.space_options
    c1 = time.process_time()
    with ProgressBar("search", total=cfg.budget, enabled=progress) as bar:
        shown = [_advance(bar)] if bar.shown else []  # no candidate objects when silent
        result = run_search(strategy, budget=cfg.budget, storage=store, meta=meta,
                            resume=cfg.resume or study is not None,
                            callbacks=[*shown, *callbacks], eval_chunk=built.eval_chunk)
    c2 = time.process_time()
    return result, {"cpu_s": round(c2 - c1, 3), "storage_open_cpu_s": round(c1 - c0, 3)}


def strategy_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """The strategy's settings: the config's, with evolution's population scaled to the budget.

    OFA/HAT's evolution defaults (population 100, 25 parents, 50 + 50 children) need thousands
    of evaluations; without a ``population_size`` or a ``preset`` (``ofa``, ``hat``: the
    published settings, kept as they are) they are scaled to the budget so that evolution gets
    several generations.

    Example:
        >>> cfg = ExperimentConfig.from_dict({"search_space": "elasticvit", "device": "pixel7",
        ...                                   "budget": 60})
        >>> strategy_settings(cfg)
        {'population_size': 12, 'parents': 3, 'mutations': 6, 'crossovers': 6}
    """
    settings = dict(cfg.strategy.settings)
    if cfg.strategy.name == "evolution" and not {"population_size", "preset"} & settings.keys():
        pop = int(min(100, max(8, cfg.budget // 5)))
        settings.update(population_size=pop, parents=max(2, pop // 4),
                        mutations=pop // 2, crossovers=pop - pop // 2)
    return settings


def _strategy(cfg: ExperimentConfig, inputs: RunInputs, built: RunObjectives, worker: int,
              stored: dict[str, Any] | None) -> BaseStrategy:
    settings = strategy_settings(cfg)
    if (stored is not None and stored.get("strategy") == cfg.strategy.name == "evolution"
            and not {"population_size", "preset"} & cfg.strategy.settings.keys()):
        # the population was scaled to the first run's budget: a resume with a larger budget
        # (extending a finished search) keeps it
        old = stored.get("settings") or {}
        settings.update({k: old[k] for k in ("population_size", "parents", "mutations",
                                             "crossovers") if k in old})
    try:
        return inputs.strategy_cls(inputs.space, built.objectives,
                                   seed=worker_seed(cfg.seed, worker), **settings)
    except TypeError as e:
        raise InvalidInputError(f"strategy {cfg.strategy.name!r}: {e}") from None


def worker_seed(seed: int, worker: int) -> int:
    """The strategy seed of worker ``worker`` of a shared study: ``seed`` for worker 0, a
    seed derived from both for the others (so workers propose different archs).

    Example:
        >>> worker_seed(7, 0), worker_seed(7, 1) != worker_seed(7, 2)
        (7, True)
    """
    if worker == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(worker)]).generate_state(1)[0])


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
