"""Throughput of the search-space hot path: sample + validate + FLOPs on one core.

Prints JSON: ``archs_per_s`` for the cold pass (fresh process, every cache empty) and the warm
pass (a second pass over new archs once the per-stage cost caches are filled), per space.
Goal (issue "Foundation"): at least 20,000 archs/s on ``elasticvit`` on one core.

    python benchmarks/space_ops.py [--n 50000] [--space elasticvit]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from nasforge.search_spaces import SPACES
from nasforge.search_spaces import get_space


def measure(name: str, n: int, seed: int) -> dict[str, float]:
    space = get_space(name)
    rng = np.random.default_rng(seed)
    out = {}
    for label in ("cold", "warm"):
        t = time.perf_counter()
        for _ in range(n):
            arch = space.sample(rng)
            space.validate(arch)
            space.flops(arch)
        out[f"archs_per_s_{label}"] = n / (time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--space", default=None, help="one space (default: all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    names = [args.space] if args.space else SPACES.list()
    res = {name: measure(name, args.n, args.seed) for name in names}
    main_space = res.get("elasticvit", next(iter(res.values())))
    print(json.dumps({
        "benchmark": "space_ops",
        "op": "sample + validate + flops",
        "n": args.n,
        "archs_per_s": main_space["archs_per_s_cold"],
        "goal_archs_per_s": 20_000,
        "load_average_1min": os.getloadavg()[0],
        "per_space": res,
    }, indent=2))


if __name__ == "__main__":
    main()
