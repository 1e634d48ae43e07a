"""Speed of constrained evolution over a GBDT accuracy predictor and a table-backed device.

Setting (OFA's ``EvolutionFinder`` defaults): population 100, 25 parents, 50 mutations + 50
crossovers per generation, mutation probability 0.1, 500 generations, candidates over the
latency budget rejected before the accuracy predictor runs. OFA's implementation took 62.9 s
for this (about 1,100 candidates/s).

* Accuracy: a GBDT (``PREDICTORS["gbdt"]``, 300 trees) fitted on 300 random ``elasticvit``
  archs with a **synthetic but structured target**: ``80 - 30 * exp(-MFLOPs / 300)`` plus
  Gaussian noise (sigma 0.5), MFLOPs by the space's reference rule. It stands for an accuracy
  predictor; only its cost matters here.
* Latency: device ``pixel6`` imported from the measured nn-Meter LUT
  (``../shared/data/nnmeter_hybrid_lut/pixel6_lut_ln_v3.json``) into a temporary cache, budget
  ``--latency`` ms. If that fails, the FLOPs objective is used instead and the JSON says so.

Persistence: by default the search persists nothing (``run_search`` without a storage: a
search over cheap objectives is rerun exactly from its seed, which is faster than reading it
back). ``--storage sqlite`` persists every candidate as a trial of an Optuna study in a fresh
SQLite file (what ``nas search`` does), to measure that cost; the JSON then holds
``trials_written``.

Prints JSON: ``seconds`` (wall time of the search loop), ``cpu_seconds`` (its process CPU
time, the figure to trust on a shared machine), ``candidates_per_s`` (proposed candidates,
rejected ones excluded, per wall second; ``candidates_per_cpu_s`` per CPU second), the load
average before and after, and a per-function CPU-time breakdown. ``--repeat`` runs the search
several times (fresh strategy, same seed; the latency and cheap-objective caches stay warm
after the first run, as in a long search) and reports the first run, the fastest and the median.
The issue's figure (median of 5) is of separate processes, i.e. cold runs:
``for i in 1 2 3 4 5; do python benchmarks/search_speed.py; done``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LUT = DATA / "nnmeter_hybrid_lut" / "pixel6_lut_ln_v3.json"


def _timed(fn: Callable[..., Any], clock: dict[str, list[float]], name: str) -> Callable[..., Any]:
    slot = clock.setdefault(name, [0.0, 0.0])

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.process_time()
        out = fn(*args, **kwargs)
        slot[0] += time.process_time() - t
        slot[1] += 1
        return out

    return wrapper


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--generations", type=int, default=500)
    p.add_argument("--latency", type=float, default=30.0, help="latency budget (ms)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=1, help="searches to run (first + fastest)")
    p.add_argument("--storage", choices=["none", "sqlite"], default="none",
                   help="persist every candidate into an Optuna study (sqlite) or not")
    args = p.parse_args()

    from nasforge.evaluation import PredictorObjective
    from nasforge.predictors import PREDICTORS
    from nasforge.search_spaces import ElasticViTSpace
    from nasforge.strategies import EvolutionStrategy
    from nasforge.strategies import FlopsObjective
    from nasforge.strategies import LatencyObjective
    from nasforge.strategies import SearchObjectives
    from nasforge.strategies import run_search

    space = ElasticViTSpace()  # a private instance: its methods are wrapped with timers below
    space.name = "elasticvit"
    rng = np.random.default_rng(args.seed)
    train = [space.sample(rng) for _ in range(300)]
    mflops = np.array([space.flops_reference(a) / 1e6 for a in train])
    y = 80.0 - 30.0 * np.exp(-mflops / 300.0) + rng.normal(0.0, 0.5, size=len(train))
    gbdt = PREDICTORS.get("gbdt")(n_estimators=300, seed=args.seed).fit(
        space.encode_many(train), y)

    device_note = "pixel6 from the nn-Meter LUT (measured)"
    cheap: Any
    try:
        os.environ["NASFORGE_CACHE"] = cache = tempfile.mkdtemp(prefix="nasforge_speed_")
        atexit.register(shutil.rmtree, cache, True)  # the imported table goes with the run
        from nasforge.hardware_models import get_device
        from nasforge.hardware_models import import_table

        import_table(LUT, "nnmeter-hybrid", "pixel6", "elasticvit")
        model = get_device("pixel6")
        model.predict_many(train[:2])
        cheap = LatencyObjective(model, upper=args.latency)
    except Exception as exc:  # fall back to FLOPs, and say so in the output
        device_note = f"FLOPs objective (<= 600 MFLOPs) instead of pixel6: {exc!r}"
        cheap = FlopsObjective(space, upper=600.0)

    clock: dict[str, list[float]] = {}
    for name in ("sample", "mutate", "crossover", "encode_many", "sample_indices",
                 "mutate_indices", "crossover_indices", "from_indices", "encode_indices"):
        setattr(space, name, _timed(getattr(space, name), clock, f"space.{name}"))
    cheap.evaluate_many = _timed(cheap.evaluate_many, clock, f"{cheap.name}.evaluate_many")
    acc = PredictorObjective(gbdt, space, name="pred_acc")
    acc.evaluate_many = _timed(acc.evaluate_many, clock, "pred_acc.evaluate_many (incl. encode)")
    objs = SearchObjectives([acc, cheap])
    load_before = os.getloadavg()
    runs = []
    for _ in range(max(1, args.repeat)):
        strategy = EvolutionStrategy(space, objs, seed=args.seed)
        storage = (None if args.storage == "none" else
                   Path(tempfile.mkdtemp(prefix="nasforge_speed_db_")) / "search.db")
        c0 = time.process_time()
        res = run_search(strategy, max_steps=args.generations + 1, storage=storage)
        runs.append((res, time.process_time() - c0))
        if len(runs) == 1:
            first_clock = {k: list(v) for k, v in clock.items()}
    res, cpu = runs[0]
    best = res.best
    out = {
        "seconds": round(res.seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "candidates_per_s": round(res.n_asked / res.seconds, 1),
        "candidates_per_cpu_s": round(res.n_asked / cpu, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_cores": os.cpu_count(),
        "generations": args.generations,
        "candidates": res.n_asked,
        "distinct_evaluated": res.n_evaluated,
        "device": device_note,
        "storage": args.storage,
        "trials_written": res.n_evaluated if args.storage != "none" else 0,
        "latency_budget_ms": args.latency if isinstance(cheap, LatencyObjective) else None,
        "best": None if best is None else best.values,
        "best_arch_id": None if best is None else best.arch.arch_id,
        "breakdown_cpu_s": {k: {"seconds": round(v[0], 3), "calls": int(v[1]),
                                "us_per_call": round(1e6 * v[0] / max(v[1], 1), 1)}
                            for k, v in first_clock.items() if v[1]},
        "reference": {"ofa_evolution_finder_s": 62.9, "ofa_candidates_per_s": 1100},
    }
    if len(runs) > 1:
        fastest = min(runs, key=lambda r: r[1])
        out["repeats"] = [{"seconds": round(r.seconds, 3), "cpu_seconds": round(c, 3)}
                          for r, c in runs]
        out["warm_fastest"] = {"seconds": round(fastest[0].seconds, 3),
                               "cpu_seconds": round(fastest[1], 3)}
        out["median"] = {"seconds": round(float(np.median([r.seconds for r, _ in runs])), 3),
                         "cpu_seconds": round(float(np.median([c for _, c in runs])), 3)}
        out["same_best_every_repeat"] = len({r.best.arch.arch_id for r, _ in runs
                                             if r.best is not None}) == 1
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
