"""Ray Tune sweeps: many experiments (devices x budgets x strategies x seeds) as one job.

:mod:`~nasforge.experiments.sweep.config` reads and validates a sweep file (a base experiment
plus a grid and/or random search over its fields); :mod:`~nasforge.experiments.sweep.run` runs
it on Ray Tune, one :func:`~nasforge.experiments.runner.run_experiment` per trial, and gathers
the results. Ray is imported only when a sweep runs.
"""

from __future__ import annotations

from nasforge.experiments.sweep.config import SWEEP_METRIC
from nasforge.experiments.sweep.config import SchedulerConfig
from nasforge.experiments.sweep.config import SweepConfig
from nasforge.experiments.sweep.config import apply_overrides
from nasforge.experiments.sweep.config import load_sweep
from nasforge.experiments.sweep.run import SweepOutcome
from nasforge.experiments.sweep.run import run_sweep
from nasforge.experiments.sweep.run import sweep_trial

__all__ = [
    "SWEEP_METRIC",
    "SchedulerConfig",
    "SweepConfig",
    "SweepOutcome",
    "apply_overrides",
    "load_sweep",
    "run_sweep",
    "sweep_trial",
]
