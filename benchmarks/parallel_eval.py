"""Parallel subnet evaluation: wall time of 64 subnets on a Ray actor pool of 1 vs 2 workers.

Same supernet, same archs, same data, measured side by side in one run. Each pool's start-up
(actors rebuilding the supernet from the object store) is timed apart from the evaluation. The
machine's load average is reported with the figures: on a shared machine the ratio is bounded by
the CPU the other processes leave.

Without ``--supernet`` the supernet is randomly initialised (seeded): evaluation costs the same
as a trained one's (BN recalibration + validation forward passes), only the accuracies are
meaningless.

    python benchmarks/parallel_eval.py [--supernet runs/sn/last.ckpt] [--n 64]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import torch


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _burn(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t0


def _cpu_ceiling(n: int = 20_000_000) -> dict[str, float]:
    """What two processes get on this machine right now: throughput of 2 pure-Python busy
    loops in parallel over 1 alone (2.0 on two idle cores; the pool's ratio cannot beat it)."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_burn, [1000, 1000])  # workers started
        t0 = time.perf_counter()
        pool.apply(_burn, (n,))
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        pool.map(_burn, [n, n])
        two = time.perf_counter() - t0
    return {"one_process_s": round(one, 3), "two_processes_s": round(two, 3),
            "throughput_ratio": round(2 * one / two, 3)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print its JSON figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--supernet", default=None, help="checkpoint (default: random init)")
    p.add_argument("--space", default="elasticvit")
    p.add_argument("--data", default="digits")
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--n", type=int, default=64, help="subnets to evaluate")
    p.add_argument("--recal-batches", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, choices=(1, 2), default=2,
                   help="1: one pool of each size; 2: ABBA order (1, 2, 2, 1 workers)")
    args = p.parse_args(argv)

    import ray

    from nasforge.data import load_data
    from nasforge.evaluation.pool import SupernetActorPool
    from nasforge.search_spaces import get_space
    from nasforge.supernet import build_supernet
    from nasforge.supernet.checkpoint import load_supernet

    if args.supernet:
        net, ckpt = load_supernet(args.supernet)
        space = net.space
        data = load_data(str(ckpt.config.get("data", args.data)),
                         int(ckpt.config.get("input_size", args.input_size)), seed=args.seed)
        weights = str(args.supernet)
    else:
        space = get_space(args.space)
        data = load_data(args.data, args.input_size, seed=args.seed)
        torch.manual_seed(args.seed)
        net = build_supernet(space, data.num_classes).eval()
        weights = "random init (seeded)"
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.n)]
    opts = {"recal_batches": args.recal_batches, "batch_size": args.batch_size,
            "seed": args.seed}

    ceiling_before = _cpu_ceiling()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False,
             log_to_driver=False)
    results: dict[str, Any] = {}
    accs: dict[int, np.ndarray] = {}
    times: dict[int, list[float]] = {1: [], 2: []}
    try:
        # ABBA order (1, 2, 2, 1 workers) so that a drift in the machine's load cancels
        for rep, workers in enumerate((1, 2, 2, 1)[:2 * args.repeats]):
            load_before = _load()
            t0 = time.perf_counter()
            pool = SupernetActorPool(net, data, workers=workers, **opts)
            pool.wait_ready()
            startup = time.perf_counter() - t0
            t0 = time.perf_counter()
            accs[workers] = pool.evaluate_many(archs)
            wall = time.perf_counter() - t0
            pool.close()
            times[workers].append(wall)
            results[f"run{rep}_workers_{workers}"] = {
                "eval_s": round(wall, 3), "startup_s": round(startup, 3),
                "subnets_per_s": round(args.n / wall, 3),
                "loadavg_before": load_before, "loadavg_after": _load()}
    finally:
        ray.shutdown()
    mean = {w: float(np.mean(t)) for w, t in times.items()}
    out = {
        "benchmark": "parallel_eval", "space": space.name, "weights": weights,
        "data": data.name, "input_size": data.input_size, "val_images": len(data.val_x),
        "n_subnets": args.n, "recal_batches": args.recal_batches,
        "threads_per_worker": 1, "cpu_count": os.cpu_count(), **results,
        "mean_eval_s_1_worker": round(mean[1], 3), "mean_eval_s_2_workers": round(mean[2], 3),
        "speedup_2_vs_1": round(mean[1] / mean[2], 3),
        "same_accuracies": bool(np.array_equal(accs[1], accs[2])),
        "cpu_parallel_ceiling": {"before": ceiling_before, "after": _cpu_ceiling()},
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
