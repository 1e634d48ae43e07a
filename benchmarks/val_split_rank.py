"""The quick recipe's validation split: do scores on 180 held-out images rank as on 359?

``val_fraction`` 0.1 holds out 180 of the 1,797 ``digits`` images, a subset of the 359 of
``val_fraction`` 0.2. On a quick supernet trained with the 359-image split (one trained with
today's 180-image split has seen the other 179 images), ``SUBNETS`` random
subnets are each scored on both splits (one held EvalSet each, BN recalibrated on the same 128
training images), alternating; prints JSON: Spearman, Kendall, the mean |difference| of top-1
and the seconds per evaluation of each.

    python benchmarks/val_split_rank.py CKPT [SUBNETS]
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np
import torch

from nasforge.predictors.metrics import kendall_tau
from nasforge.predictors.metrics import spearman
from nasforge.search_spaces import get_space
from nasforge.supernet import load_supernet
from nasforge.supernet.checkpoint import RunConfig
from nasforge.supernet.evaluate import EvalSet
from nasforge.supernet.evaluate import evaluate_subnets


def main(ckpt: str, n: int) -> dict[str, object]:
    torch.set_num_threads(1)
    net, state = load_supernet(ckpt)
    run = RunConfig.from_checkpoint(state)
    full, small = (dataclasses.replace(run, loader={**run.loader, "val_fraction": f}).open_data()
                   for f in (0.2, 0.1))  # the splits compared, whatever the checkpoint used
    space = get_space(str(state.config["space"]))
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(n)]
    sets = {"full": (full, EvalSet(full, recal_batches=1, batch_size=128, seed=run.seed)),
            "small": (small, EvalSet(small, recal_batches=1, batch_size=128, seed=run.seed))}
    top1: dict[str, list[float]] = {k: [] for k in sets}
    secs = dict.fromkeys(sets, 0.0)
    for a in archs:  # alternate, so both see the same load
        for k, (data, es) in sets.items():
            t = time.perf_counter()
            top1[k].append(evaluate_subnets(net, [a], data, eval_set=es)[0].top1)
            secs[k] += time.perf_counter() - t
    return {"checkpoint": ckpt, "subnets": n, "val_images": [full.num_val, small.num_val],
            "spearman": round(spearman(top1["full"], top1["small"]), 3),
            "kendall": round(kendall_tau(top1["full"], top1["small"]), 3),
            "mean_abs_diff_top1": round(float(np.mean(np.abs(np.subtract(top1["full"],
                                                                         top1["small"])))), 4),
            "s_per_eval": {k: round(v / n, 3) for k, v in secs.items()},
            "full_over_small": round(secs["full"] / secs["small"], 2),
            "load": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 24)))
