"""Parallel subnet evaluation: wall time of 64 subnets on a Ray actor pool of 1 vs 2 workers.

Same supernet, same archs, same data, measured side by side in one run; each pool's start-up
(actors rebuilding the supernet from the object store) is timed apart from the evaluation (until every actor
has rebuilt the supernet). The machine's load average is reported with the
figures: on a shared machine the ratio is bounded by the CPU the other processes leave.

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
    args = p.parse_args(argv)

    import ray

    from nasforge.experiments.pool import SupernetActorPool
    from nasforge.search_spaces import get_space
    from nasforge.supernet import build_supernet
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.data import load_data

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

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False,
             log_to_driver=False)
    results: dict[str, Any] = {}
    accs: dict[int, np.ndarray] = {}
    try:
        for workers in (1, 2):
            load_before = _load()
            t0 = time.perf_counter()
            pool = SupernetActorPool(net, data, workers=workers, **opts)
            pool.wait_ready()
            startup = time.perf_counter() - t0
            t0 = time.perf_counter()
            accs[workers] = pool.evaluate_many(archs)
            wall = time.perf_counter() - t0
            pool.close()
            results[f"workers_{workers}"] = {
                "eval_s": round(wall, 3), "startup_s": round(startup, 3),
                "subnets_per_s": round(args.n / wall, 3),
                "loadavg_before": load_before, "loadavg_after": _load()}
    finally:
        ray.shutdown()
    out = {
        "benchmark": "parallel_eval", "space": space.name, "weights": weights,
        "data": data.name, "input_size": data.input_size, "val_images": len(data.val_x),
        "n_subnets": args.n, "recal_batches": args.recal_batches,
        "threads_per_worker": 1, "cpu_count": os.cpu_count(), **results,
        "speedup_2_vs_1": round(results["workers_1"]["eval_s"]
                                / results["workers_2"]["eval_s"], 3),
        "same_accuracies": bool(np.array_equal(accs[1], accs[2])),
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
