"""Sampling quality: uniform (SPOS) vs ElasticViT's complexity- + performance-aware sampling.

Papers: SPOS, https://arxiv.org/abs/1904.00420; ElasticViT, https://arxiv.org/abs/2303.09730.

Trains two supernets of the same space on the same data with the same budget — the same steps,
batches, schedule and the same number of subnet passes per step (uniform draws as many random
subnets as the ElasticViT plan holds: max + level subnets + min) — then BN-recalibrates and
evaluates the same 20 random subnets on each and prints JSON with min / median / max top-1 and
the Spearman correlation of their top-1 with their FLOPs (does accuracy rise with size?). An
honest comparison: no threshold, no claim.

Usage:
    python benchmarks/sampling_quality.py [--steps 150] [--space elasticvit] [--data digits]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
from scipy.stats import spearmanr

from nasforge.search_spaces import get_space
from nasforge.supernet.evaluate import evaluate_subnet
from nasforge.supernet.quick import DEFAULT_RECIPE
from nasforge.supernet.quick import Recipe
from nasforge.supernet.quick import train_supernet


def _plan_length(recipe: Recipe) -> int:
    o = recipe.sampler_options
    return (int(o.get("num_subnets", 2)) + int(o.get("include_max", True))
            + int(o.get("include_min", "level") != "none"))


def main() -> None:
    """Parse options, train both supernets, print the JSON figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="elasticvit")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--steps", type=int, default=DEFAULT_RECIPE.train.steps)
    ap.add_argument("--subnets", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    opts = ap.parse_args()
    space = get_space(opts.space)
    train = dataclasses.replace(DEFAULT_RECIPE.train, steps=opts.steps, seed=opts.seed)
    elastic = dataclasses.replace(DEFAULT_RECIPE, data=opts.data, train=train)
    uniform = Recipe(data=opts.data, sampler="uniform",
                     sampler_options={"num_subnets": _plan_length(elastic)}, train=train)
    rng = np.random.default_rng(1234 + opts.seed)
    archs = [space.sample(rng) for _ in range(opts.subnets)]
    flops = [space.flops(a) for a in archs]
    out: dict[str, object] = {"space": space.name, "data": opts.data, "steps": opts.steps,
                              "subnets_per_step": _plan_length(elastic),
                              "evaluated_subnets": len(archs)}
    for name, recipe in (("uniform", uniform), ("complexity+performance_aware", elastic)):
        t0 = time.perf_counter()
        trainer, _ = train_supernet(space, recipe, None)
        seconds = time.perf_counter() - t0
        accs = [evaluate_subnet(trainer.model, a, trainer.data) for a in archs]
        top1 = np.array([a.top1 for a in accs])
        out[name] = {
            "min": float(top1.min()), "median": float(np.median(top1)),
            "max": float(top1.max()), "mean": float(top1.mean()),
            "spearman_flops": round(float(spearmanr(flops, top1).statistic), 3),
            "max_subnet": evaluate_subnet(trainer.model, space.max_arch(), trainer.data).top1,
            "train_seconds": round(seconds, 1), "input_size": accs[0].input_size,
            "sampler_options": dict(recipe.sampler_options),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
