"""Step 4 of a run: write its folder.

* ``best.yaml`` — the best architecture under the constraints (our arch YAML);
* ``pareto.csv`` / ``candidates.csv`` — the Pareto front / every evaluated candidate, one column
  per objective (``accuracy``, ``latency_ms``, ``mflops``, ``params_m``) plus ``step``,
  ``arch_id``, ``feasible`` and the canonical ``arch`` JSON;
* ``pareto.png`` — accuracy vs latency with the front, the best and the budget
  (:func:`~nasforge.experiments.report.plot_run_pareto`);
* ``run.json`` — the manifest: config, versions, seed, device and accuracy provenance,
  objectives, strategy settings, summary and the run's name in the field's style
  (``pixel7_lat@24.6ms_top1@71.3``). :func:`write_outputs` returns it, so nothing reads it back.

:func:`lock_out` holds ``OUT/.nas.lock`` (:mod:`nasforge._lock`, the lock of every run folder)
while a run writes the folder, so that two searches given one ``--out`` are
detected instead of the last silently overwriting the other.
"""

from __future__ import annotations

import contextlib
import json
import platform
from pathlib import Path
from typing import Any

from nasforge._lock import LOCK
from nasforge._lock import lock_run_folder
from nasforge.experiments._objectives import ACCURACY
from nasforge.experiments._objectives import LATENCY
from nasforge.experiments._objectives import MFLOPS
from nasforge.experiments._objectives import PARAMS
from nasforge.experiments._objectives import RunObjectives
from nasforge.experiments.config import ExperimentConfig
from nasforge.experiments.report import plot_run_pareto
from nasforge.search_spaces.base import SearchSpace
from nasforge.strategies import SearchResult

__all__ = ["LOCK", "OUTPUTS", "lock_out", "run_name", "write_outputs"]

#: the files of a run folder
OUTPUTS = ("best.yaml", "pareto.csv", "candidates.csv", "pareto.png", "run.json")


def lock_out(out: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the search's run folder ``out`` (:func:`~nasforge._lock.lock_run_folder`)."""
    return lock_run_folder(out, "search")


def run_name(device: str, latency_ms: float | None, accuracy: float | None,
             metric: str = "top1") -> str:
    """The field's naming style.

    Example:
        >>> run_name("pixel7", 24.63, 71.28)
        'pixel7_lat@24.6ms_top1@71.3'
    """
    parts = [device]
    if latency_ms is not None:
        parts.append(f"lat@{latency_ms:.1f}ms")
    if accuracy is not None:
        parts.append(f"{metric}@{accuracy:.1f}")
    return "_".join(parts)


def versions() -> dict[str, str]:
    """Python's and the installed versions of nasforge and the libraries behind the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("nasforge", "torch", "numpy", "optuna", "xgboost", "scikit-learn", "ray"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def write_outputs(cfg: ExperimentConfig, space: SearchSpace, result: SearchResult,
                  built: RunObjectives, out: Path, seconds: float,
                  cpu: dict[str, float] | None = None) -> dict[str, Any]:
    """Write the run folder ``out`` (see the module docstring) and return the manifest.

    ``seconds`` is the run's wall time; ``cpu`` process CPU seconds of its search step, added
    to the summary: ``cpu_s`` (the search loop: the study created or resumed, every round
    with its writes, the last writes) and ``storage_open_cpu_s`` (opening the storage); not
    the imports, the inputs' loading nor these outputs."""
    frame = result.candidates
    frame.to_csv(out / "candidates.csv", index=False)
    pareto = result.pareto_frame.sort_values(LATENCY)
    pareto.to_csv(out / "pareto.csv", index=False)
    best = result.best
    name = run_name(cfg.device, best.values[LATENCY] if best else None,
                    best.values[ACCURACY] if best else None, built.metric)
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
        **(cpu or {}),
        "latency_budget_ms": cfg.constraints.latency_ms,
    }
    manifest = {
        "name": name, "config": cfg.to_dict(), "versions": versions(),
        "space": space.name, "seed": cfg.seed,
        "device": built.device_provenance, "accuracy": built.accuracy_provenance,
        "objectives": built.objectives.describe(), "strategy": result.strategy,
        "summary": summary, "outputs": list(OUTPUTS),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True, default=str)
    (out / "run.json").write_text(text)
    plot_run_pareto(frame, pareto, best_info, cfg, out / "pareto.png",
                    built.accuracy_provenance, name)
    return json.loads(text)  # what run.json holds, exactly (JSON types, default=str applied)
