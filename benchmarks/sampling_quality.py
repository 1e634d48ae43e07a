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

Elastic resolution (``--resolution-of CKPT``): no training; takes ``--subnets`` random archs of
the checkpoint's space, scores each at every resolution of the space (each at its proxy size,
BN recalibrated there) and prints the Spearman correlation of resolution with top-1, pooled
and averaged per arch (does a larger resolution buy accuracy?).
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


def resolution_spearman(path: str, subnets: int, seed: int, values: list[int]
                        ) -> dict[str, object]:
    """Spearman(resolution, top-1) over subnets that differ only in resolution."""
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import load_supernet

    model, ck = load_supernet(path)
    run = RunConfig.from_checkpoint(ck)
    data = run.open_data()
    space = model.space  # type: ignore[union-attr]
    rng = np.random.default_rng(seed)
    rows, per_arch = [], []
    for _ in range(subnets):
        base = space.sample(rng).to_dict()
        accs = []
        for r in values:
            arch = space.arch_from_dict({**base, "resolution": r})
            acc = evaluate_subnet(model, arch, data, recal_batches=4)  # type: ignore[arg-type]
            accs.append(acc.top1)
            rows.append((r, acc.top1, acc.input_size))
        per_arch.append(float(spearmanr(values, accs).statistic))
    res = [r for r, _, _ in rows]
    top1 = [t for _, t, _ in rows]
    return {"checkpoint": str(ck.path), "resolution_scale": run.resolution_scale,
            "resolutions": values, "proxy_px": sorted({p for _, _, p in rows}),
            "subnets": subnets, "spearman_pooled": round(float(spearmanr(res, top1).statistic), 3),
            "spearman_mean_per_arch": round(float(np.nanmean(per_arch)), 3),
            "mean_top1_by_resolution": {str(r): round(float(np.mean(
                [t for rr, t, _ in rows if rr == r])), 4) for r in values}}


def main() -> None:
    """Parse options, train both supernets, print the JSON figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="elasticvit")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--steps", type=int, default=DEFAULT_RECIPE.train.steps)
    ap.add_argument("--subnets", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution-of", default=None, help="checkpoint: resolution mode")
    ap.add_argument("--resolutions", default="128,160,176,192,224,256")
    opts = ap.parse_args()
    if opts.resolution_of:
        print(json.dumps(resolution_spearman(opts.resolution_of, opts.subnets, opts.seed,
                                             [int(v) for v in opts.resolutions.split(",")]),
                         indent=2))
        return
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
