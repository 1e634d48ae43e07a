"""Search strategies on NAS-Bench-201 in tabular mode (no training): query efficiency and
Pareto-front quality.

Data: ``../shared/data/nb201_dev/nb201_dev.csv`` (mini-NAS-Bench-201 accuracies, HW-NAS-Bench
Pixel 3 latencies; see that folder's README for sources and licences).

Part 1 (single objective, ``--metric``): for each strategy and seed, the number of distinct
table queries until one of the 16 best cells (top 0.1 % of 15,625) by the metric is evaluated;
median over seeds (a run that has not hit by ``--max-queries`` counts as ``--max-queries``, and
the number of such runs is reported). Part 2 (Pareto, metric vs ``pixel3_ms``; degenerate
cells with latency below ``--min-latency`` ms are excluded by a lower bound): hypervolume of
the front found after ``--pareto-queries`` queries as a share of the true front's, reference
point = the worst metric and the largest latency of the filtered table.

Usage: ``python benchmarks/nb201_strategies.py [--seeds 20] [--metric cifar10_val]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CSV = DATA / "nb201_dev" / "nb201_dev.csv"


def _strategy(name: str, space: Any, objs: Any, seed: int, pool: list[Any]) -> Any:
    from nasforge.predictors import PREDICTORS
    from nasforge.search_spaces import canonical_id
    from nasforge.strategies import EvolutionStrategy
    from nasforge.strategies import GradientStrategy
    from nasforge.strategies import OptunaStrategy
    from nasforge.strategies import PredictorStrategy
    from nasforge.strategies import RandomStrategy

    if name == "random":
        return RandomStrategy(space, objs, seed=seed, batch_size=1)
    if name == "evolution":
        return EvolutionStrategy(space, objs, seed=seed, population_size=20, parents=5,
                                 mutations=10, crossovers=10, mutation_prob=1 / 6)
    if name == "evolution-pareto":
        return EvolutionStrategy(space, objs, seed=seed, population_size=30, mutations=15,
                                 crossovers=15, mutation_prob=1 / 6, mode="pareto")
    if name == "predictor":
        return PredictorStrategy(
            space, objs, seed=seed, init_samples=20, top_k=10, candidate_pool=pool,
            dedupe_key=canonical_id,
            predictor=lambda s: PREDICTORS.get("gbdt")(n_estimators=300, seed=s))
    if name == "optuna-tpe":
        return OptunaStrategy(space, objs, seed=seed, sampler="tpe", n_startup_trials=20)
    if name == "optuna-nsga2":
        return OptunaStrategy(space, objs, seed=seed, sampler="nsga2", population_size=30,
                              mode="pareto")
    if name == "gradient":
        return GradientStrategy(space, objs, seed=seed, batch_size=10, lr=0.15)
    raise SystemExit(f"unknown strategy {name!r}")


def queries_to_top(name: str, seeds: list[int], metric: str, max_queries: int) -> dict[str, Any]:
    from nasforge.evaluation import TabularBenchmark
    from nasforge.search_spaces import get_space
    from nasforge.strategies import SearchObjectives
    from nasforge.strategies import run_search

    space = get_space("nasbench201")
    base = TabularBenchmark.from_csv(CSV, metric, space)
    top = set(base.table.nlargest(16, metric)["arch_str"])
    pool = base.archs()
    counts, hits, t0 = [], 0, time.perf_counter()
    for seed in seeds:
        bench = base.column(metric)
        objs = SearchObjectives([bench])
        found: list[int] = []

        def cb(c: Any, found: list[int] = found) -> bool:
            if c.arch.to_arch_str() in top:
                found.append(c.index + 1)
                return True
            return False

        run_search(_strategy(name, space, objs, seed, pool), budget=max_queries,
                   callbacks=[cb])
        hits += bool(found)
        counts.append(found[0] if found else max_queries)
    return {"median_queries": float(np.median(counts)), "runs_hit": hits,
            "runs": len(seeds), "queries": counts,
            "seconds": round(time.perf_counter() - t0, 1)}


def pareto_share(name: str, seeds: list[int], metric: str, n_queries: int,
                 min_latency: float) -> dict[str, Any]:
    from nasforge.evaluation import TabularBenchmark
    from nasforge.search_spaces import get_space
    from nasforge.strategies import SearchObjectives
    from nasforge.strategies import hypervolume_2d
    from nasforge.strategies import pareto_mask
    from nasforge.strategies import run_search

    space = get_space("nasbench201")
    base = TabularBenchmark.from_csv(CSV, metric, space)
    t = base.table[base.table["pixel3_ms"] >= min_latency]
    F_true = np.stack([-t[metric].to_numpy(), t["pixel3_ms"].to_numpy()], axis=1)
    ref = F_true.max(axis=0) + 1e-9
    hv_true = hypervolume_2d(F_true[pareto_mask(F_true)], ref)
    shares, t0 = [], time.perf_counter()
    for seed in seeds:
        acc = base.column(metric)
        lat = base.column("pixel3_ms", lower=min_latency)
        objs = SearchObjectives([acc, lat], mode="pareto")
        res = run_search(_strategy(name, space, objs, seed, []), budget=n_queries)
        ok = res.feasible
        F = np.stack([-res.values[ok, 0], res.values[ok, 1]], axis=1)
        shares.append(hypervolume_2d(F, ref) / hv_true)
    return {"median_hv_share": float(np.median(shares)), "min_hv_share": float(np.min(shares)),
            "shares": [round(s, 4) for s in shares],
            "seconds": round(time.perf_counter() - t0, 1)}


def kendall_section(metric: str, seeds: list[int], n_train: int = 200) -> dict[str, Any]:
    """GBDT on ``n_train`` random cells (the space's encoding) ranking the rest: Kendall tau."""
    import pandas as pd

    from nasforge.predictors import GBDTPredictor
    from nasforge.predictors import kendall_tau
    from nasforge.search_spaces import arch_from_nb201_str
    from nasforge.search_spaces import get_space

    df = pd.read_csv(CSV, usecols=["arch_str", metric])
    X = get_space("nasbench201").encode_many([arch_from_nb201_str(a) for a in df["arch_str"]])
    y = df[metric].to_numpy(dtype=np.float64)
    taus = []
    for seed in seeds:
        idx = np.random.default_rng(seed).permutation(len(y))
        train, test = idx[:n_train], idx[n_train:]
        pred = GBDTPredictor(seed=seed).fit(X[train], y[train]).predict(X[test]).mean
        taus.append(float(kendall_tau(y[test], pred)))
    return {"n_train": n_train, "taus": [round(t, 4) for t in taus],
            "median_kendall_tau": float(np.median(taus)), "goal": 0.7, "test_threshold": 0.6}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--metric", default="cifar10_val")
    p.add_argument("--max-queries", type=int, default=3000)
    p.add_argument("--pareto-queries", type=int, default=300)
    p.add_argument("--min-latency", type=float, default=0.1)
    p.add_argument("--strategies", default="random,evolution,predictor,optuna-tpe,gradient")
    p.add_argument("--pareto-strategies", default="evolution-pareto,optuna-nsga2,random")
    p.add_argument("--kendall-seeds", type=int, default=5)
    args = p.parse_args()
    if not CSV.is_file():
        raise SystemExit(f"benchmark table not found at {CSV}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    seeds = list(range(args.seeds))
    out: dict[str, Any] = {"metric": args.metric, "seeds": args.seeds,
                           "max_queries": args.max_queries, "top_k_cells": 16,
                           "queries_to_top_0.1pct": {}, "pareto": {}}
    out["gbdt_ranking"] = kendall_section(args.metric, list(range(args.kendall_seeds)))
    print("gbdt kendall", out["gbdt_ranking"]["median_kendall_tau"], file=sys.stderr)
    for name in [s for s in args.strategies.split(",") if s]:
        out["queries_to_top_0.1pct"][name] = queries_to_top(name, seeds, args.metric,
                                                             args.max_queries)
        print(name, out["queries_to_top_0.1pct"][name]["median_queries"], file=sys.stderr)
    q = out["queries_to_top_0.1pct"]
    if "random" in q and "predictor" in q:
        out["ratio_random_over_predictor"] = q["random"]["median_queries"] / max(
            q["predictor"]["median_queries"], 1.0)
    out["pareto"]["queries"] = args.pareto_queries
    out["pareto"]["min_latency_ms"] = args.min_latency
    for name in [s for s in args.pareto_strategies.split(",") if s]:
        out["pareto"][name] = pareto_share(name, seeds, args.metric, args.pareto_queries,
                                           args.min_latency)
        print(name, out["pareto"][name]["median_hv_share"], file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
