"""Sampling quality: does each supernet sampler rank subnets as stand-alone training does?

Papers: SPOS (uniform), https://arxiv.org/abs/1904.00420; BigNAS / AttentiveNAS (sandwich),
https://arxiv.org/abs/2003.11142; ElasticViT (complexity- and performance-aware),
https://arxiv.org/abs/2303.09730.

Trains the quick supernet (``DEFAULT_RECIPE``: same data, steps, batches, schedule, losses) once
per sampler in ``--samplers`` (default ``uniform,sandwich,complexity_aware,performance_aware``),
each drawing the same number of subnets per step as the default plan (max + 1 + min = 3;
uniform draws 3 random ones, sandwich max + 1 random + min). Then, for the same ``--subnets``
subnets stratified by FLOPs, compares each supernet's BN-recalibrated top-1 with the subnets'
stand-alone top-1 (each trained from scratch for ``--standalone-steps`` steps on ``--data``, at
the same size), and prints JSON: per sampler Kendall tau, Spearman, top-5 overlap, median
top-1, the FLOPs-vs-top-1 Spearman and the training seconds. An honest comparison: no
threshold, no claim.

``--reference RANK.json`` (the output of ``nas rank --a supernet --b standalone --json``) reuses
that run's subnets and stand-alone accuracies instead of training them again.

Usage:
    python benchmarks/sampling_quality.py [--steps 160] [--subnets 20] [--standalone-steps 120]
        [--data mnist5k] [--samplers uniform,sandwich] [--reference rank.json]

Elastic resolution (``--resolution-of CKPT``): no training; takes ``--subnets`` random archs of
the checkpoint's space, scores each at every resolution of the space (each at its proxy size,
BN recalibrated there) and prints the Spearman correlation of resolution with top-1, pooled
and averaged per arch (does a larger resolution buy accuracy?).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nasforge.search_spaces import get_space
from nasforge.supernet.evaluate import evaluate_subnet
from nasforge.supernet.training.quick import DEFAULT_RECIPE
from nasforge.supernet.training.quick import train_supernet


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


#: sampler -> options giving the default plan's 3 subnets per step
PLANS: dict[str, dict[str, object]] = {
    "uniform": {"num_subnets": 3},
    "sandwich": {"num_random": 1},
    "complexity_aware": {"num_subnets": 1, "include_max": True, "include_min": "global"},
    "performance_aware": dict(DEFAULT_RECIPE.sampler_options),
}


def _reference(path: str, space: object) -> tuple[list[object], np.ndarray, dict[str, object]]:
    """Subnets and stand-alone top-1 of a ``nas rank --json`` report whose --b is standalone."""
    rep = json.loads(Path(path).read_text())
    key = "b" if rep["b"] == "standalone" else "a"
    archs = [space.arch_from_dict(s["arch"]) for s in rep["subnets"]]  # type: ignore[attr-defined]
    return archs, np.array([s[key] for s in rep["subnets"]]), rep["provenance"]["standalone"]


def sampler_ranks(opts: argparse.Namespace) -> dict[str, object]:
    """Train one supernet per sampler; tau of each against the same stand-alone accuracies."""
    from nasforge.data import open_data
    from nasforge.evaluation import StandaloneAccuracy
    from nasforge.evaluation import SupernetAccuracyObjective
    from nasforge.experiments.rank import stratified_archs
    from nasforge.predictors.metrics import kendall_tau
    from nasforge.predictors.metrics import spearman
    from nasforge.predictors.metrics import top_k_precision

    space = get_space(opts.space)
    train = dataclasses.replace(DEFAULT_RECIPE.train, steps=opts.steps, seed=opts.seed)
    t0 = time.perf_counter()
    if opts.reference:
        archs, ref, ref_prov = _reference(opts.reference, space)
    else:
        archs = stratified_archs(space, opts.subnets, np.random.default_rng(opts.seed))
        data = open_data(opts.data, train.input_size, opts.seed,
                         resolution_scale=train.resolution_scale)
        sa = StandaloneAccuracy(space, data, steps=opts.standalone_steps, seed=opts.seed)
        ref = sa.evaluate_many(archs)
        ref_prov = sa.provenance()
    flops = [space.flops(a) for a in archs]
    out: dict[str, object] = {
        "space": space.name, "data": opts.data, "steps": opts.steps, "subnets": len(archs),
        "subnets_per_step": 3, "standalone": {**ref_prov, "seconds": round(
            time.perf_counter() - t0, 1), "median_top1": round(float(np.median(ref)), 2)},
        "samplers": {}}
    k = min(5, len(archs))
    for name in opts.samplers.split(","):
        recipe = dataclasses.replace(DEFAULT_RECIPE, data=opts.data, sampler=name,
                                     sampler_options=PLANS[name], train=train)
        t0 = time.perf_counter()
        trainer, _ = train_supernet(space, recipe, None)
        seconds = time.perf_counter() - t0
        obj = SupernetAccuracyObjective(trainer.model, trainer.data, recal_batches=8,
                                        seed=opts.seed)
        top1 = obj.evaluate_many(archs)
        out["samplers"][name] = {  # type: ignore[index]
            "kendall_tau": round(kendall_tau(ref, top1), 4),
            "spearman": round(spearman(ref, top1), 4),
            f"top{k}_overlap": round(top_k_precision(ref, top1, k), 2),
            "median_top1": round(float(np.median(top1)), 2),
            "spearman_flops": round(float(spearmanr(flops, top1).statistic), 3),
            "train_seconds": round(seconds, 1),
        }
        print(json.dumps({name: out["samplers"][name]}), file=sys.stderr, flush=True)  # type: ignore[index]
    return out


def main() -> None:
    """Parse options, run the chosen mode, print the JSON figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="elasticvit")
    ap.add_argument("--data", default="mnist5k")
    ap.add_argument("--steps", type=int, default=DEFAULT_RECIPE.train.steps)
    ap.add_argument("--subnets", type=int, default=20)
    ap.add_argument("--standalone-steps", type=int, default=120)
    ap.add_argument("--samplers", default=",".join(PLANS))
    ap.add_argument("--reference", default=None, help="nas rank --json output to reuse")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--resolution-of", default=None, help="checkpoint: resolution mode")
    ap.add_argument("--resolutions", default="128,160,176,192,224,256")
    opts = ap.parse_args()
    import torch

    torch.set_num_threads(opts.threads)
    if opts.resolution_of:
        print(json.dumps(resolution_spearman(opts.resolution_of, opts.subnets, opts.seed,
                                             [int(v) for v in opts.resolutions.split(",")]),
                         indent=2))
        return
    print(json.dumps(sampler_ranks(opts), indent=2))


if __name__ == "__main__":
    main()
