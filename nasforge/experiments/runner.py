"""One search run, end to end: what ``nas search`` and ``nas run`` do.

:func:`run_experiment` resolves the names of an :class:`ExperimentConfig` through the
registries (space, device, strategy), builds the objectives — accuracy from exactly one source
(a supernet checkpoint, the embedded quick supernet, a saved predictor or a tabular benchmark),
device latency, FLOPs and params, with the constraints as upper bounds — runs the strategy with
every evaluation persisted to SQLite (so ``resume`` loses nothing), and writes the run folder:

* ``best.yaml`` — the best architecture under the constraints (our arch YAML);
* ``pareto.csv`` / ``candidates.csv`` — the Pareto front / every evaluated candidate, one column
  per objective (``accuracy``, ``latency_ms``, ``mflops``, ``params_m``) plus ``step``,
  ``arch_id``, ``feasible`` and the canonical ``arch`` JSON;
* ``pareto.png`` — accuracy vs latency with the front, the best and the budget;
* ``run.json`` — config, versions, seed, device and accuracy provenance, strategy settings,
  summary and the run's name in the field's style (``pixel7_lat@24.6ms_top1@71.3``).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.experiments.config import ExperimentConfig
from nasforge.search_spaces import get_space
from nasforge.search_spaces.base import SearchSpace
from nasforge.strategies import STRATEGIES
from nasforge.strategies import SearchObjectives
from nasforge.strategies import run_search
from nasforge.strategies._run import Callback
from nasforge.strategies.objectives import CallableObjective
from nasforge.strategies.objectives import FlopsObjective
from nasforge.strategies.objectives import LatencyObjective
from nasforge.strategies.objectives import Objective
from nasforge.strategies.objectives import ParamsObjective
from nasforge.strategies.objectives import PredictorObjective
from nasforge.strategies.objectives import SupernetAccuracyObjective
from nasforge.strategies.objectives import TabularBenchmark
from nasforge.strategies.result import Candidate
from nasforge.strategies.result import SearchResult

__all__ = ["RunOutcome", "build_objectives", "run_experiment", "run_name"]

ACCURACY, LATENCY, MFLOPS, PARAMS = "accuracy", "latency_ms", "mflops", "params_m"


@dataclass(frozen=True)
class RunOutcome:
    """Where a run wrote its outputs and what it found."""

    out_dir: Path
    summary: dict[str, Any]


@dataclass
class _Built:
    objectives: SearchObjectives
    accuracy_provenance: dict[str, Any]
    device_provenance: dict[str, Any]
    dedupe_key: Callable[[Any], Any] | None = None


def _stderr() -> Any:
    """Progress and notices go to stderr (stdout stays for results)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def run_name(device: str, latency_ms: float | None, accuracy: float | None,
             metric: str = "top1") -> str:
    """The field's naming style, e.g. ``pixel7_lat@24.6ms_top1@71.3``."""
    parts = [device]
    if latency_ms is not None:
        parts.append(f"lat@{latency_ms:.1f}ms")
    if accuracy is not None:
        parts.append(f"{metric}@{accuracy:.1f}")
    return "_".join(parts)


# ---- objectives --------------------------------------------------------------------------------
def _accuracy(cfg: ExperimentConfig, space: SearchSpace, evaluator: Any | None,
              progress: bool) -> tuple[Objective, dict[str, Any]]:
    if cfg.benchmark is not None:  # accuracy_source() == "benchmark"
        bench = _table(cfg, space).column(cfg.benchmark.metric, direction="maximize",
                                          cheap=False)
        obj = CallableObjective(ACCURACY, bench.evaluate_many, "maximize")
        return obj, {"kind": "tabular benchmark", "path": cfg.benchmark.path,
                     "metric": cfg.benchmark.metric}
    if cfg.predictor is not None:
        from nasforge.predictors import BasePredictor

        pred = BasePredictor.load(str(cfg.predictor))
        p_obj = PredictorObjective(pred, space, name=ACCURACY)
        return p_obj, {"kind": "predictor", "path": cfg.predictor, "predictor": pred.name}
    if not space.has_model:
        raise IncompatibleComponentsError(
            f"space {space.name!r} is tabular: give --benchmark CSV --metric COL or --predictor"
        )
    if evaluator is not None:  # e.g. the Ray actor pool: same evaluate_many / provenance
        return CallableObjective(ACCURACY, evaluator.evaluate_many, "maximize"), dict(
            evaluator.provenance())
    s_obj = _supernet_objective(cfg, space, progress)
    return s_obj, s_obj.provenance()


def _checkpoint(cfg: ExperimentConfig, space: SearchSpace, progress: bool) -> Path:
    """The supernet checkpoint: the user's, or the quick supernet (trained once, cached)."""
    if cfg.accuracy_source() != "quick-supernet":
        return Path(str(cfg.supernet))
    from nasforge._paths import cache_dir
    from nasforge.supernet.quick import resolve_device
    from nasforge.supernet.quick import train_quick_supernet

    if progress:
        _stderr().print(
            f"no --supernet/--predictor/--benchmark: using the embedded quick supernet of "
            f"{space.name} on `digits` (trained once, cached under {cache_dir()})")
    return train_quick_supernet(space, cache_dir(), progress=progress,
                                device=resolve_device(cfg.accelerator))


def _supernet_objective(cfg: ExperimentConfig, space: SearchSpace, progress: bool
                        ) -> SupernetAccuracyObjective:
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.quick import resolve_device

    device = resolve_device(cfg.accelerator)
    ckpt = _checkpoint(cfg, space, progress)
    supernet, state = load_supernet(ckpt, expect_space=space.name)
    run = RunConfig.from_checkpoint(state)  # data, size, resolution scale, seed
    seed, data = run.seed, run.open_data()
    return SupernetAccuracyObjective(supernet, data, device=str(device), checkpoint=ckpt,
                                     seed=seed, name=ACCURACY)


_TABLES: dict[tuple[str, str], TabularBenchmark] = {}


def _table(cfg: ExperimentConfig, space: SearchSpace) -> TabularBenchmark:
    """The benchmark CSV, read once per process (its accuracy and latency columns share it)."""
    if cfg.benchmark is None:
        raise InvalidInputError("this run has no --benchmark table")
    key = (str(Path(cfg.benchmark.path).resolve()), space.name)
    if key not in _TABLES:
        _TABLES[key] = TabularBenchmark.from_csv(cfg.benchmark.path, cfg.benchmark.metric, space)
    return _TABLES[key]


def _latency(cfg: ExperimentConfig, space: SearchSpace) -> tuple[Objective, dict[str, Any]]:
    bound = cfg.constraints.latency_ms
    if cfg.benchmark is not None and cfg.device.endswith("_ms"):
        # a latency column of the benchmark table, measured on a real device
        bench = _table(cfg, space).column(cfg.device, cheap=True)
        obj = CallableObjective(LATENCY, bench.evaluate_many, "minimize", upper=bound,
                                cheap=True)
        return obj, {"device": cfg.device, "provenance": "measured",
                     "source": f"column {cfg.device} of {cfg.benchmark.path}"}
    from nasforge.hardware_models import device_profile
    from nasforge.hardware_models import get_device

    model = get_device(cfg.device)
    prof = device_profile(cfg.device)
    to_dict = getattr(prof, "to_dict", None)
    return (LatencyObjective(model, upper=bound, name=LATENCY),
            to_dict() if callable(to_dict) else {"device": cfg.device})


def build_objectives(cfg: ExperimentConfig, space: SearchSpace, *, evaluator: Any | None = None,
                     progress: bool = False) -> _Built:
    """The objectives of ``cfg``: accuracy (maximise), latency, MFLOPs, params (minimise).

    Raises:
        IncompatibleComponentsError: a latency budget below the smallest achievable latency.
    """
    lat, dev_prov = _latency(cfg, space)
    _check_feasible(cfg, space, lat)
    acc, acc_prov = _accuracy(cfg, space, evaluator, progress)
    objs = [acc, lat,
            FlopsObjective(space, upper=cfg.constraints.mflops, name=MFLOPS),
            ParamsObjective(space, upper=cfg.constraints.params_m, name=PARAMS)]
    dedupe = getattr(space, "canonical_id", None)
    return _Built(SearchObjectives(objs, primary=ACCURACY, pareto=[ACCURACY, LATENCY]),
                  acc_prov, dev_prov, dedupe if callable(dedupe) else None)


def _check_feasible(cfg: ExperimentConfig, space: SearchSpace, lat: Objective) -> None:
    budget = cfg.constraints.latency_ms
    if budget is None:
        return
    rng = np.random.default_rng(cfg.seed)
    probe = [space.min_arch()] + [space.sample(rng) for _ in range(256)]
    smallest = float(np.min(lat.evaluate_many(probe)))
    if smallest > budget:
        raise IncompatibleComponentsError(
            f"latency budget {budget:g} ms is below the smallest achievable latency on "
            f"{cfg.device}: {smallest:.2f} ms (the space's smallest architecture); raise "
            f"--latency to at least {smallest:.2f}"
        )


# ---- strategy ----------------------------------------------------------------------------------
def _strategy(cfg: ExperimentConfig, space: SearchSpace, objectives: SearchObjectives) -> Any:
    cls = STRATEGIES.get(cfg.strategy.name)
    settings = dict(cfg.strategy.settings)
    if cfg.strategy.name == "evolution" and "population_size" not in settings:
        # OFA/HAT defaults (population 100, 25 parents, 50 + 50 children) need thousands of
        # evaluations; scale them to the budget so that evolution gets several generations.
        pop = int(min(100, max(8, cfg.budget // 5)))
        settings.update(population_size=pop, parents=max(2, pop // 4),
                        mutations=pop // 2, crossovers=pop - pop // 2)
    try:
        return cls(space, objectives, seed=cfg.seed, **settings)
    except TypeError as e:
        raise InvalidInputError(f"strategy {cfg.strategy.name!r}: {e}") from None


def _storage(cfg: ExperimentConfig, out: Path) -> Path:
    url = cfg.storage or f"sqlite:///{out / 'search.db'}"
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):])
    if "://" in url:
        raise InvalidInputError(
            f"storage must be a sqlite:///PATH URL or a file path, got {url!r}")
    return Path(url)


# ---- the run -----------------------------------------------------------------------------------
def run_experiment(cfg: ExperimentConfig, *, progress: bool = True,
                   evaluator: Any | None = None, callbacks: Sequence[Callback] = ()
                   ) -> RunOutcome:
    """Run one search and write its folder (see the module docstring).

    Args:
        cfg: the experiment.
        progress: show progress bars and messages on stderr.
        evaluator: an accuracy evaluator with ``evaluate_many(archs) -> top-1 %`` and
            ``provenance()``; default: in-process, or a Ray actor pool of ``cfg.workers``
            actors when ``cfg.workers > 1``.
        callbacks: called with every evaluated candidate (e.g. a sweep reporting to Ray
            Tune's schedulers); one returning True ends the search.

    Raises:
        NasforgeError: bad names, files or combinations (one line for the CLI).
    """
    t0 = time.perf_counter()
    space = get_space(cfg.search_space)
    STRATEGIES.get(cfg.strategy.name)  # resolve cheap names before any expensive set-up
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    pool = None
    if cfg.workers > 1 and evaluator is None and cfg.accuracy_source() in (
            "supernet", "quick-supernet"):
        evaluator = pool = _pool_evaluator(cfg, space, progress)
    try:
        built = build_objectives(cfg, space, evaluator=evaluator, progress=progress)
        strategy = _strategy(cfg, space, built.objectives)
        db = _storage(cfg, out)
        db.parent.mkdir(parents=True, exist_ok=True)
        chunk = None if cfg.accuracy_source() in ("benchmark", "predictor") else max(
            8, cfg.workers)
        with _progress_bar(cfg.budget, progress) as advance:
            result = run_search(strategy, built.objectives, cfg.budget, storage=db,
                                resume=cfg.resume, callbacks=[advance, *callbacks],
                                dedupe_key=built.dedupe_key, eval_chunk=chunk)
    finally:
        if pool is not None:
            pool.close()
    summary = _write_outputs(cfg, space, result, built, out, time.perf_counter() - t0)
    return RunOutcome(out, summary)


def _pool_evaluator(cfg: ExperimentConfig, space: SearchSpace, progress: bool) -> Any:
    """A Ray actor pool of ``cfg.workers`` actors sharing one supernet (weights put once)."""
    from nasforge.experiments.pool import SupernetActorPool

    ckpt = _checkpoint(cfg, space, progress)
    return SupernetActorPool.from_checkpoint(ckpt, workers=cfg.workers)


class _progress_bar:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self._progress: Any = None

    def __enter__(self) -> Callable[[Candidate], None]:
        if not self.enabled:
            return lambda c: None
        from rich.progress import BarColumn
        from rich.progress import MofNCompleteColumn
        from rich.progress import Progress
        from rich.progress import TextColumn
        from rich.progress import TimeElapsedColumn


        self._progress = Progress(TextColumn("search"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("best {task.fields[best]}"), TimeElapsedColumn(),
                                  console=_stderr(), transient=False)
        self._progress.start()
        task = self._progress.add_task("search", total=self.total, best="-")
        best = [-np.inf]

        def advance(c: Candidate) -> None:
            acc = c.values.get(ACCURACY, np.nan)
            if c.feasible and acc > best[0]:
                best[0] = acc
            self._progress.update(task, advance=1, best=f"{best[0]:.2f}" if np.isfinite(
                best[0]) else "-")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("nasforge", "torch", "numpy", "optuna", "xgboost", "scikit-learn", "ray"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _write_outputs(cfg: ExperimentConfig, space: SearchSpace, result: SearchResult,
                   built: _Built, out: Path, seconds: float) -> dict[str, Any]:
    frame = result.candidates
    frame.to_csv(out / "candidates.csv", index=False)
    pareto = result.pareto_frame.sort_values(LATENCY)
    pareto.to_csv(out / "pareto.csv", index=False)
    best = result.best
    metric = "top1" if cfg.accuracy_source() in ("supernet", "quick-supernet") else (
        cfg.benchmark.metric if cfg.benchmark is not None else "acc")
    name = run_name(cfg.device, best.values[LATENCY] if best else None,
                    best.values[ACCURACY] if best else None, metric)
    if best is not None:
        (out / "best.yaml").write_text(best.arch.to_yaml())
    best_info = None if best is None else {
        "arch_id": best.arch.arch_id, "latency_ms": best.values[LATENCY],
        "accuracy": best.values[ACCURACY], "mflops": best.values[MFLOPS],
        "params_m": best.values[PARAMS], "arch": best.arch.to_dict()}
    summary = {
        "name": name, "best": best_info, "n_evaluated": result.n_evaluated,
        "pareto_size": len(pareto), "device": cfg.device, "strategy": cfg.strategy.name,
        "seed": cfg.seed, "budget": cfg.budget, "seconds": seconds, "stopped": result.stopped,
        "latency_budget_ms": cfg.constraints.latency_ms,
    }
    manifest = {
        "name": name, "config": cfg.to_dict(), "versions": _versions(),
        "space": space.name, "seed": cfg.seed,
        "device": built.device_provenance, "accuracy": built.accuracy_provenance,
        "objectives": built.objectives.describe(), "strategy": result.strategy,
        "summary": summary,
        "outputs": ["best.yaml", "pareto.csv", "candidates.csv", "pareto.png", "run.json"],
    }
    (out / "run.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    _plot(frame, pareto, best_info, cfg, out / "pareto.png", built.accuracy_provenance, name)
    return summary


def _plot(frame: Any, pareto: Any, best: dict[str, Any] | None, cfg: ExperimentConfig,
          path: Path, acc_prov: dict[str, Any], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=120)
    feas = frame["feasible"].astype(bool)
    ax.scatter(frame.loc[~feas, LATENCY], frame.loc[~feas, ACCURACY], s=10, c="#cccccc",
               label="over the constraints")
    ax.scatter(frame.loc[feas, LATENCY], frame.loc[feas, ACCURACY], s=12, c="#7a9cc6",
               label="evaluated")
    ax.step(pareto[LATENCY], pareto[ACCURACY], where="post", c="#d1495b", lw=1.5,
            label="Pareto front")
    if best is not None:
        ax.scatter([best["latency_ms"]], [best["accuracy"]], marker="*", s=220, c="#edae49",
                   edgecolors="k", zorder=5, label=f"best {best['arch_id']}")
    if cfg.constraints.latency_ms is not None:
        ax.axvline(cfg.constraints.latency_ms, ls="--", c="k", lw=1, label="latency budget")
    size = acc_prov.get("input_size")
    ylabel = "accuracy (%)" + (f", {acc_prov.get('data')} @ {size}px" if size else "")
    ax.set_xlabel(f"latency on {cfg.device} (ms)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{cfg.search_space} · {cfg.strategy.name} · {name}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
