"""Ray Tune sweeps: many experiments (devices x budgets x strategies x seeds) as one job.

A sweep file holds a ``base`` experiment (the fields of
:class:`~nasforge.experiments.config.ExperimentConfig`) and the fields to vary, by field path:

.. code-block:: yaml

    base: {search_space: elasticvit, strategy: evolution, budget: 200}
    grid:                                  # every combination (Ray Tune grid search)
      device: [pixel6, pixel7]
      constraints.latency_ms: [15, 25]
      seed: [0, 1]
    random:                                # and/or sampled values (num_samples draws)
      strategy.mutation_prob: {uniform: [0.05, 0.3]}
    num_samples: 1
    resources_per_trial: {cpu: 1}
    max_failures: 2
    max_concurrent: 4
    scheduler: {name: asha, grace_period: 50}   # optional: stop weak searches early
    out: runs/pixel_sweep

Each trial is one :func:`~nasforge.experiments.runner.run_experiment` writing its run folder
under ``OUT/runs/<trial id>`` with its own SQLite study, so a trial lost with its node is
retried (up to ``max_failures`` times) and resumes from the candidates it had persisted, and an
interrupted sweep continues with :func:`run_sweep` ``(resume=True)``: finished trials are kept,
unfinished ones re-run. The results are gathered into ``OUT/sweep.csv`` and one Pareto plot
across devices and budgets, ``OUT/sweep_pareto.png``.

Run folders live on the filesystem the driver and the workers share (one host, or NFS on a
cluster), and every node needs ``nasforge`` installed. Ray is imported lazily (``nasforge[ray]``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge._lock import lock_run_folder
from nasforge.errors import InvalidInputError
from nasforge.experiments.config import ExperimentConfig
from nasforge.experiments.sweep.config import _TUNE_DIR
from nasforge.experiments.sweep.config import SWEEP_METRIC
from nasforge.experiments.sweep.config import SweepConfig
from nasforge.experiments.sweep.config import apply_overrides
from nasforge.structured import load_structured

__all__ = [
    "SweepOutcome",
    "run_sweep",
    "sweep_trial",
]


# ---- the trial ---------------------------------------------------------------------------------
def _label(point: dict[str, Any]) -> str:
    parts = []
    for p, v in point.items():
        text = v.get("name", json.dumps(v, sort_keys=True)) if isinstance(v, dict) else v
        parts.append(f"{p.rsplit('.', 1)[-1]}={text}")
    return re.sub(r"[^A-Za-z0-9_.=,@-]+", "-", ",".join(parts))[:120]


def _record_attempt(run_dir: Path) -> int:
    """Append this attempt (host, pid, Ray node) to ``attempts.jsonl``; return its number."""
    ray = _import_ray()
    path = run_dir / "attempts.jsonl"
    n = len(path.read_text().splitlines()) + 1 if path.exists() else 1
    entry = {"attempt": n, "time": time.time(), "host": socket.gethostname(),
             "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return n


def _import_ray() -> Any:
    from nasforge.evaluation.pool import import_ray

    return import_ray()


def _best_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    best = summary.get("best") or {}
    return {SWEEP_METRIC: float(best.get("accuracy", 0.0)) if best else 0.0,
            "best_latency_ms": best.get("latency_ms"), "best_mflops": best.get("mflops"),
            "best_params_m": best.get("params_m"), "best_arch_id": best.get("arch_id"),
            "feasible_found": bool(best)}


def sweep_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable of a sweep: one :func:`run_experiment` per trial.

    Everything comes through ``config`` (no global state reaches the workers):
    ``experiment`` (the base mapping as JSON), ``point`` (field path -> value of this trial)
    and ``out_root``. The run folder is ``out_root/runs/<trial id>``; a retried or restored
    trial finds its SQLite study there and resumes it, and a trial whose folder already has a
    ``run.json`` reports it without searching again.

    Reports ``best_accuracy`` (0.0 while nothing is feasible) and ``n_evaluated`` after every
    search round (for schedulers), then the run's summary with ``finished=True``.
    """
    from ray import tune

    from nasforge.experiments.runner import run_experiment
    from nasforge.strategies.storage import StorageURL

    point = dict(config["point"])
    trial_id = tune.get_context().get_trial_id() or "local"
    run_dir = Path(config["out_root"]) / "runs" / trial_id
    run_dir.mkdir(parents=True, exist_ok=True)
    attempt = _record_attempt(run_dir)
    base_info = {"run_dir": str(run_dir), "attempt": attempt, "label": _label(point)}
    manifest = run_dir / "run.json"
    if manifest.exists():
        summary = load_structured(manifest, "run manifest", kind="json")["summary"]
    else:
        cfg = _absolute(ExperimentConfig.from_dict(
            apply_overrides(json.loads(config["experiment"]), point)), Path(config["cwd"]))
        store = StorageURL.for_run(None, run_dir)
        cfg = cfg.replace(out=str(run_dir), storage=str(store),
                          resume=bool(store.path and store.path.exists()),
                          name=cfg.name or base_info["label"])
        summary = run_experiment(cfg, progress=False,
                                 callbacks=[_RoundReporter(tune.report, base_info)]).summary
    tune.report({**base_info, **_best_metrics(summary), "finished": True,
                 "n_evaluated": int(summary.get("n_evaluated", 0)),
                 "pareto_size": int(summary.get("pareto_size", 0)),
                 "seconds": float(summary.get("seconds", 0.0)), "run_name": summary.get("name")})


def _absolute(cfg: ExperimentConfig, cwd: Path) -> ExperimentConfig:
    """Relative file fields resolved against the driver's working directory (a trial runs
    in its own directory, possibly on another node)."""
    def fix(p: str) -> str:
        return p if Path(p).is_absolute() or "://" in p else str(cwd / p)

    accuracy = cfg.accuracy.with_paths(fix)
    return cfg if accuracy == cfg.accuracy else cfg.replace(accuracy=accuracy)


class _RoundReporter:
    """A search callback reporting best-so-far accuracy once per search round."""

    def __init__(self, report: Any, info: dict[str, Any]) -> None:
        self.report, self.info = report, info
        self.best, self.n, self.step = 0.0, 0, None

    def __call__(self, cand: Any) -> None:
        if self.step is not None and cand.step != self.step:
            self.report({**self.info, SWEEP_METRIC: self.best, "n_evaluated": self.n,
                         "finished": False})
        self.step = cand.step
        self.n += 1
        acc = cand.values.get("accuracy", np.nan)
        if cand.feasible and acc > self.best:
            self.best = float(acc)


# ---- the sweep ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep wrote.

    Attributes:
        out_dir: the sweep folder.
        table: one row per trial (``sweep.csv``).
        csv: ``sweep.csv``.
        plot: ``sweep_pareto.png`` (None when no trial finished).
    """

    out_dir: Path
    table: Any
    csv: Path
    plot: Path | None


def _param_space(cfg: SweepConfig, out_root: Path) -> dict[str, Any]:
    from ray import tune

    point: dict[str, Any] = {p: tune.grid_search(v) for p, v in cfg.grid.items()}
    for p, dist in cfg.random.items():
        kind, arg = next(iter(dist.items()))
        point[p] = (tune.choice(arg) if kind == "choice" else tune.uniform(*arg)
                    if kind == "uniform" else tune.loguniform(*arg) if kind == "loguniform"
                    else tune.randint(*arg))
    return {"experiment": json.dumps(cfg.base, sort_keys=True), "out_root": str(out_root),
            "cwd": os.getcwd(), "point": point}


def _scheduler_obj(cfg: SweepConfig) -> Any:
    if cfg.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    budgets = [ExperimentConfig.from_dict(apply_overrides(cfg.base, {p: v})).budget
               for p, vs in cfg.grid.items() if p == "budget" for v in vs]
    max_t = max(budgets or [int(cfg.base.get("budget", 100))])
    s = cfg.scheduler.settings
    return ASHAScheduler(time_attr="n_evaluated", max_t=max_t,
                         grace_period=int(s.get("grace_period", max(1, max_t // 8))),
                         reduction_factor=int(s.get("reduction_factor", 2)),
                         brackets=int(s.get("brackets", 1)))


def run_sweep(cfg: SweepConfig, *, address: str | None = None,
              max_concurrent: int | None = None, resume: bool = False,
              progress: bool = True) -> SweepOutcome:
    """Run (or resume) a sweep on Ray Tune and aggregate its results.

    Args:
        cfg: the sweep.
        address: Ray cluster address (``auto``, ``HOST:PORT``); None: a local Ray instance
            (or the one this process is already connected to).
        max_concurrent: trials at once (overrides the file's ``max_concurrent``).
        resume: continue the sweep found in ``cfg.out``: finished trials are kept, errored and
            unfinished ones run again (resuming their own studies).
        progress: Ray Tune's progress output.

    Returns:
        The :class:`SweepOutcome` (``sweep.csv``, ``sweep_pareto.png``).

    Raises:
        InvalidInputError: a sweep already in ``cfg.out`` without ``resume``, a sweep file
            that differs from the one being resumed, or another process writing ``cfg.out``.
        MissingDependencyError: Ray is not installed.
    """
    out = Path(cfg.out).resolve()
    with lock_run_folder(out, "sweep"):  # the trials lock their own folders under it
        return _sweep(cfg, out, address, max_concurrent, resume, progress)


def _sweep(cfg: SweepConfig, out: Path, address: str | None, max_concurrent: int | None,
           resume: bool, progress: bool) -> SweepOutcome:
    ray = _import_ray()
    from ray import tune

    from nasforge.evaluation.pool import ensure_ray

    exp_path = out / _TUNE_DIR
    recorded = out / "sweep.json"
    state_exists = exp_path.exists() and tune.Tuner.can_restore(str(exp_path))
    if state_exists and not resume:
        raise InvalidInputError(
            f"{out} already holds a sweep; pass --resume to continue it or choose another `out`")
    if resume and recorded.exists() and load_structured(recorded, "sweep record") != json.loads(
            json.dumps(cfg.to_dict())):
        raise InvalidInputError(
            f"{recorded} records another sweep than {cfg.source or 'the one given'}; resume "
            "with the same file or choose another `out`")
    out.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    scheduler = _scheduler_obj(cfg)  # before Ray starts: a scheduler that cannot work raises
    owns = ensure_ray(address)
    try:
        trainable = tune.with_resources(sweep_trial, dict(cfg.resources_per_trial))
        if resume and state_exists:
            tuner = tune.Tuner.restore(str(exp_path), trainable, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=_param_space(cfg, out),
                tune_config=tune.TuneConfig(
                    num_samples=cfg.num_samples, scheduler=scheduler,
                    metric=SWEEP_METRIC if scheduler is not None else None,
                    mode="max" if scheduler is not None else None,
                    max_concurrent_trials=max_concurrent or cfg.max_concurrent),
                run_config=tune.RunConfig(
                    name=_TUNE_DIR, storage_path=str(out),
                    failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
                    verbose=1 if progress else 0),
            )
        grid = tuner.fit()
    finally:
        if owns:
            ray.shutdown()
    table = results_table(grid, cfg)
    csv = out / "sweep.csv"
    table.to_csv(csv, index=False)
    plot = sweep_plot(table, out / "sweep_pareto.png")
    return SweepOutcome(out, table, csv, plot)


def results_table(grid: Any, cfg: SweepConfig) -> Any:
    """One row per trial of a Ray Tune ``ResultGrid``: the swept values, status, attempts and
    the best architecture found (sorted by device, then the swept fields)."""
    import pandas as pd

    rows = []
    for result in grid:
        conf = result.config or {}
        point = conf.get("point", {})
        m = dict(result.metrics or {})
        run_dir = m.get("run_dir") or (str(Path(conf["out_root"]) / "runs" /
                                           str(m.get("trial_id"))) if "out_root" in conf else "")
        attempts_file = Path(run_dir) / "attempts.jsonl" if run_dir else None
        attempts = (len(attempts_file.read_text().splitlines())
                    if attempts_file is not None and attempts_file.exists() else 0)
        status = ("finished" if m.get("finished") else "error" if result.error is not None
                  else "stopped early")
        row: dict[str, Any] = {"trial_id": m.get("trial_id", Path(str(result.path)).name)}
        for p in cfg.swept:
            v = point.get(p)
            row[p] = v.get("name", json.dumps(v)) if isinstance(v, dict) else v
        row.update({"status": status, "attempts": attempts,
                    "n_evaluated": m.get("n_evaluated"), "best_arch_id": m.get("best_arch_id"),
                    "best_accuracy": m.get(SWEEP_METRIC) if m.get("feasible_found", True)
                    else None,
                    "best_latency_ms": m.get("best_latency_ms"),
                    "best_mflops": m.get("best_mflops"), "pareto_size": m.get("pareto_size"),
                    "seconds": m.get("seconds"), "run_name": m.get("run_name"),
                    "run_dir": run_dir,
                    "error": _error_line(result.error) if result.error is not None else None})
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        keys = [c for c in cfg.swept if c in table]
        table = table.sort_values(
            keys or ["trial_id"], kind="stable",
            key=lambda s: s if pd.api.types.is_numeric_dtype(s) else s.astype(str),
        ).reset_index(drop=True)
    return table


def _error_line(err: BaseException) -> str:
    """The line of a trial's error that says what went wrong: the last one (a Ray error's text
    is the remote traceback, which ends with ``ErrorType: message``), at most 300 characters."""
    text = str(err).strip().splitlines()
    return text[-1][:300] if text else type(err).__name__


def sweep_plot(table: Any, path: Path) -> Path | None:
    """The Pareto fronts of every finished trial in one figure (see
    :func:`nasforge.experiments.report.plot_fronts_by_device`); None when none finished."""
    from nasforge.experiments.report import load_run
    from nasforge.experiments.report import plot_fronts_by_device

    done = table[table["status"] == "finished"] if len(table) else table
    runs = [load_run(d) for d in done["run_dir"]] if len(done) else []
    if not runs:
        return None
    plot_fronts_by_device(runs, path, title=f"sweep: {len(runs)} runs")
    return path
