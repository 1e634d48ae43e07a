"""What persisting a search costs: the same evolution search run without storage, into SQLite,
into PostgreSQL (when ``NASFORGE_POSTGRES_URL`` names a reachable server), and as two workers
sharing one persisted study, at budgets 2,000 and 20,000.

Setting: OFA's evolution (population 100, 25 parents, 50 + 50 children, mutation probability
0.1) over ``--space`` (default ``ofa_mbv3_w12``: 46 choices, i.e. 46 trial params per
candidate, the heaviest trial nasforge writes) with two analytic objectives on the index
matrix, so that the search itself is as cheap as a table/predictor search and the figures
are mostly the storage's: an accuracy (a seeded weighted sum of the choices, maximised) and
a latency (another, cheap, with an upper bound at 60% of its range, so candidates are also
rejected).

Modes: ``none`` (no storage), ``sqlite`` / ``postgres`` (worker 0 with claims, as when workers
share the study), ``sqlite_single_writer`` / ``postgres_single_writer`` (``exclusive=True``:
the study's only writer, one transaction a second without claims, the arch stored once; what
``nas search`` without ``--study``/``--worker`` does), ``sqlite_single_writer_every_round_params``
(the same writer with ``commit_every=0`` and ``trial_params=True``: every round, with the
Optuna params, as before those options), and the two-worker modes (``--modes`` picks some).

Prints JSON: per budget and mode ``cpu_s`` (process CPU time: the client's; a PostgreSQL
server's own CPU is not counted), ``wall_s``, ``n_evaluated``, ``ms_per_candidate`` (CPU),
``ratio`` (CPU over the unpersisted run's) and ``extra_ms_per_candidate`` (CPU over the
unpersisted run's, per evaluated candidate). The two-worker modes report the CPU of both
workers summed, the wall time of the pair, the trials stored (``n_stored``, must equal the
budget) and the distinct keys among them (``n_distinct``). Timings on a shared machine are
noisy: read the ratios, measured side by side in one run.

Usage: ``python benchmarks/persist_speed.py [--budgets 2000 20000] [--space ofa_mbv3_w12]
[--modes sqlite_single_writer ...]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: the persisted modes (see the module docstring); ``..._every_round_params``: the single
#: writer writing every round with the Optuna params (``commit_every=0``,
#: ``trial_params=True``), i.e. before the write interval and the arch stored once
MODES = ("sqlite", "sqlite_single_writer", "sqlite_single_writer_every_round_params",
         "sqlite_2_workers", "postgres", "postgres_single_writer", "postgres_2_workers")

SETTINGS = {"population_size": 100, "parents": 25, "mutations": 50, "crossovers": 50,
            "mutation_prob": 0.1}


def problem(space_name: str, seed: int = 0) -> tuple[Any, Any]:
    """The space and its two analytic objectives (see the module docstring)."""
    from nasforge.search_spaces import get_space
    from nasforge.strategies import CallableObjective
    from nasforge.strategies import SearchObjectives

    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    width = len(space.index_names())
    acc_w, lat_w = rng.normal(size=width), rng.uniform(0.5, 2.0, size=width)
    top = float(lat_w @ (np.asarray([len(o) for o in space.index_options()]) - 1))

    def acc(archs: Sequence[Any]) -> np.ndarray:
        return space.to_indices(list(archs)) @ acc_w

    def lat(archs: Sequence[Any]) -> np.ndarray:
        return space.to_indices(list(archs)) @ lat_w

    return space, SearchObjectives([CallableObjective("acc", acc, "maximize"),
                                    CallableObjective("lat", lat, "minimize", upper=0.6 * top,
                                                      cheap=True)])


def one_run(space_name: str, budget: int, storage: str | None, study: str = "nasforge",
            worker: int = 0, exclusive: bool = False, commit_every: float = 1.0,
            trial_params: bool = False) -> dict[str, Any]:
    """One search (``storage`` None: nothing persisted; ``exclusive``: the study's single
    writer, no claims, writing every ``commit_every`` seconds, with ``trial_params`` or not);
    its CPU and wall seconds."""
    from nasforge.strategies import STRATEGIES
    from nasforge.strategies import SearchStudy
    from nasforge.strategies import run_search

    space, objs = problem(space_name)
    strategy = STRATEGIES.get("evolution")(space, objs, seed=1 + worker, **SETTINGS)
    c0, t0 = time.process_time(), time.perf_counter()
    store = None if storage is None else SearchStudy(
        storage, study, worker=worker, space=space, exclusive=exclusive,
        commit_every=commit_every, trial_params=trial_params)
    res = run_search(strategy, budget=budget, storage=store,
                     resume=worker > 0 or storage is not None, meta={"seed": 1})
    return {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0,
            "n_evaluated": int(res.n_evaluated), "n_asked": int(res.n_asked)}


def _one_run_star(args: tuple[Any, ...]) -> dict[str, Any]:
    return one_run(*args)


def two_workers(space_name: str, budget: int, url: str) -> dict[str, Any]:
    """Two processes sharing one study of ``url``: CPU summed, wall of the pair, and what the
    study holds (trials, distinct keys)."""
    import optuna

    study = f"two_{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        runs = pool.map(_one_run_star, [(space_name, budget, url, study, w) for w in (0, 1)])
    wall = time.perf_counter() - t0
    trials = optuna.load_study(storage=url, study_name=study).get_trials(deepcopy=False)
    done = [t for t in trials if t.state.is_finished() and "nasforge_released" not in t.user_attrs]
    return {"cpu_s": sum(r["cpu_s"] for r in runs), "wall_s": wall,
            "n_evaluated": [r["n_evaluated"] for r in runs], "n_stored": len(done),
            "n_distinct": len({t.user_attrs["key"] for t in done}),
            "per_worker_cpu_s": [r["cpu_s"] for r in runs]}


def _run_mode(mode: str, space: str, budget: int, tmp: str, pg: str | None) -> dict[str, Any]:
    """One persisted mode of :data:`MODES` (files in ``tmp``; ``pg``: the server URL)."""
    sqlite = f"sqlite:///{tmp}/{mode}_{budget}.db"
    fresh = f"{mode}_{uuid.uuid4().hex[:8]}"
    if mode == "sqlite":
        return one_run(space, budget, sqlite)
    if mode == "sqlite_single_writer":
        return one_run(space, budget, sqlite, exclusive=True)
    if mode == "sqlite_single_writer_every_round_params":
        return one_run(space, budget, sqlite, exclusive=True, commit_every=0.0,
                       trial_params=True)
    if mode == "sqlite_2_workers":
        return two_workers(space, budget, sqlite)
    assert pg is not None
    if mode == "postgres":
        return one_run(space, budget, pg, fresh)
    if mode == "postgres_single_writer":
        return one_run(space, budget, pg, fresh, exclusive=True)
    return two_workers(space, budget, pg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--space", default="ofa_mbv3_w12")
    ap.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    ap.add_argument("--modes", nargs="+", default=None, choices=MODES,
                    help="the modes to run (default: all; `none` always runs)")
    args = ap.parse_args()
    modes = set(args.modes or MODES)
    pg = os.environ.get("NASFORGE_POSTGRES_URL")
    report: dict[str, Any] = {"space": args.space, "settings": SETTINGS,
                              "postgres": bool(pg), "load_before": os.getloadavg()[0],
                              "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for budget in args.budgets:
            rows: dict[str, Any] = {"none": one_run(args.space, budget, None)}
            for mode in MODES:
                if mode in modes and (pg or not mode.startswith("postgres")):
                    rows[mode] = _run_mode(mode, args.space, budget, tmp, pg)
            base = rows["none"]["cpu_s"]
            for row in rows.values():
                n = budget
                row["ms_per_candidate"] = 1000 * row["cpu_s"] / n
                row["ratio"] = row["cpu_s"] / base
                row["extra_ms_per_candidate"] = 1000 * (row["cpu_s"] - base) / n
                row["wall_ratio"] = row["wall_s"] / rows["none"]["wall_s"]
            report["runs"][str(budget)] = rows
    report["load_after"] = os.getloadavg()[0]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
