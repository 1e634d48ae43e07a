"""Reports comparing search runs: Pareto fronts per device, chosen architectures, search curves.

A run is a run folder or a search's Optuna study: a storage URL (``sqlite:///PATH``,
``postgresql://...``, ``journal:PATH``), with ``#STUDY`` to pick a study (needed when the
storage holds several nasforge studies); :func:`load_run` reads either.
A run folder (written by :func:`~nasforge.experiments.runner.run_experiment`) holds
``run.json``, ``candidates.csv`` and ``pareto.csv`` and the run's own figure,
``pareto.png`` (:func:`plot_run_pareto`); :func:`make_report` reads several folders and draws
one page (PNG, and optionally an HTML file embedding it with the tables):

* the Pareto fronts, accuracy vs latency, one panel per latency-target device (latencies of
  different devices are not comparable, so they never share an axis);
* the search curves: best feasible accuracy so far vs the number of evaluations;
* the chosen architecture of each run: device, latency budget, strategy, arch_id, latency,
  accuracy, MFLOPs.

Example:
    >>> from nasforge.experiments.report import make_report
    >>> outcome = make_report(["runs/a", "runs/b"], "report.png", html=True)  # doctest: +SKIP
    >>> outcome.table.columns[:3].tolist()  # doctest: +SKIP
    ['run', 'device', 'latency budget (ms)']
"""

from __future__ import annotations

from nasforge.experiments.report._figures import plot_fronts_by_device
from nasforge.experiments.report._figures import plot_run_pareto
from nasforge.experiments.report._page import ReportOutcome
from nasforge.experiments.report._page import make_report
from nasforge.experiments.report._runs import RunRecord
from nasforge.experiments.report._runs import best_so_far
from nasforge.experiments.report._runs import load_run
from nasforge.experiments.report._runs import load_study_run
from nasforge.experiments.report._runs import runs_table

__all__ = ["ReportOutcome", "RunRecord", "best_so_far", "load_run", "load_study_run",
           "make_report",
           "plot_fronts_by_device", "plot_run_pareto", "runs_table"]
