"""Quick-supernet recipe variants: training cost vs how well the supernet ranks subnets.

Each variant is the quick recipe (``recipes/quick.yaml``) with ``--variant NAME:key=value,...``
overrides; every variant trains in its own process (one torch thread each, run in parallel up to
``--jobs``) and then scores the same subnets: ``--archs`` random archs, each at every resolution
of ``--resolutions``, BN recalibrated at its own size (K=1 batch of 128, the search objective's
protocol). Printed as JSON per variant: training wall and CPU seconds, Spearman(resolution, top-1)
pooled and mean per arch, Spearman(MFLOPs, top-1), mean top-1 per resolution.

    python benchmarks/quick_recipe_rank.py --variant base: \\
        --variant short:train.steps=120,train.lr=0.002 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any


def _parse(spec: str) -> tuple[str, dict[str, Any]]:
    import yaml

    name, _, rest = spec.partition(":")
    changes: dict[str, Any] = {}
    for pair in filter(None, rest.split(",")):
        key, _, raw = pair.partition("=")
        changes[key.strip()] = yaml.safe_load(raw)
    return name, changes


def _variant(name: str, changes: dict[str, Any], n_archs: int, resolutions: list[int],
             out: str) -> dict[str, Any]:
    import numpy as np
    import torch
    from scipy.stats import spearmanr

    from nasforge.search_spaces import get_space
    from nasforge.supernet.evaluate import EvalSet
    from nasforge.supernet.evaluate import evaluate_subnets
    from nasforge.supernet.training.recipe import apply_overrides
    from nasforge.supernet.training.recipe import load_recipe
    from nasforge.supernet.training.train import train_supernet

    torch.set_num_threads(1)
    recipe = apply_overrides(load_recipe("quick"), {"loader.workers": 0, **changes})
    space = get_space("elasticvit")
    t, c = time.perf_counter(), time.process_time()
    trainer, result = train_supernet(space, recipe, Path(out) / name, progress=False)
    train_wall, train_cpu = time.perf_counter() - t, time.process_time() - c
    rng = np.random.default_rng(123)
    base = [space.sample(rng) for _ in range(n_archs)]
    archs = [space.arch_from_dict({**a.to_dict(), "resolution": r})
             for a in base for r in resolutions]
    t = time.perf_counter()
    es = EvalSet(trainer.data, recal_batches=1, batch_size=128, seed=recipe.train.seed)
    top1 = np.array([a.top1 for a in evaluate_subnets(trainer.model, archs, trainer.data,
                                                      eval_set=es)])
    eval_s = time.perf_counter() - t
    res = np.array([a.resolution for a in archs])
    flops = np.array([space.flops(a) for a in archs])
    per_arch = [spearmanr(resolutions, top1[i * len(resolutions):(i + 1) * len(resolutions)])[0]
                for i in range(n_archs)]
    return {
        "variant": name, "changes": changes, "steps": result.step,
        "train_wall_s": round(train_wall, 1), "train_cpu_s": round(train_cpu, 1),
        "eval_s_per_subnet": round(eval_s / len(archs), 3),
        "spearman_resolution_top1": round(float(spearmanr(res, top1)[0]), 3),
        "spearman_resolution_top1_per_arch": round(float(np.nanmean(per_arch)), 3),
        "spearman_mflops_top1": round(float(spearmanr(flops, top1)[0]), 3),
        "mean_top1_by_resolution": {str(r): round(float(top1[res == r].mean()), 4)
                                    for r in resolutions},
        "mean_top1": round(float(top1.mean()), 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", default=[],
                   help="NAME:key=value,... (recipe overrides; `base:` for none)")
    p.add_argument("--archs", type=int, default=6)
    p.add_argument("--resolutions", type=str, default="128,160,192,224,256")
    p.add_argument("--jobs", type=int, default=1)
    args = p.parse_args()
    variants = [_parse(v) for v in (args.variant or ["base:"])]
    resolutions = [int(r) for r in args.resolutions.split(",")]
    with tempfile.TemporaryDirectory(prefix="quick_rank_") as tmp, \
            ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_variant, n, c, args.archs, resolutions, tmp)
                   for n, c in variants]
        results = []
        for f in futures:
            results.append(f.result())
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"cpus": os.cpu_count(), "jobs": args.jobs, "load_end": os.getloadavg(),
                      "children_cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
                      "variants": results}, indent=1))


if __name__ == "__main__":
    main()
