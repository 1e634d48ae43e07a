"""Data-parallel scaling on this machine: training images/s with 1 and 2 gloo processes, and the
gradient all-reduce time per step, bucketed (25 MB buckets) vs one all-reduce per tensor.

Each setting trains the ``elasticvit`` supernet with the real trainer
(:class:`~nasforge.supernet.training.trainer.SupernetTrainer`, ``sandwich`` sampler: max + 1 random
+
min per step) on ``synthetic`` 32 px data at a fixed global batch; ranks take strided shards
of it. After training, each 2-rank process times ``all_reduce_gradients`` on the gradients of
one real step (slice gradients included), bucketed and per tensor, interleaved, ``--reps``
times, and reports medians. One torch thread per process.

Run:
    python benchmarks/ddp_scaling.py --steps 6 --batch 32

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nasforge.data import load_data
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.distributed import all_reduce_gradients
from nasforge.supernet.training.distributed import gradient_buckets
from nasforge.supernet.training.distributed import launch
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.sliced_optim import gradients
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainConfig


def _run(rank: int, world: int, out: str, steps: int, batch: int, reps: int) -> None:
    torch.set_num_threads(1)
    space = get_space("elasticvit")
    data = load_data("synthetic:256", input_size=32, seed=0, resolution_scale=0.125)
    cfg = TrainConfig(steps=steps + 1, batch_size=batch, input_size=32, warmup_steps=1,
                      resolution_scale=0.125)
    torch.manual_seed(0)
    tr = SupernetTrainer(build_supernet(space, 10),
                         create_sampler("sandwich", space, np.random.default_rng(0)),
                         data, cfg, None)
    tr.train_step()  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    train_s = (time.perf_counter() - t) / steps
    result = {"step_s": train_s, "images_per_s": batch / train_s}
    if world > 1:
        # gradients of one real step, kept (no optimizer step) to time the reduction alone
        tr.optimizer.zero_grad(set_to_none=True)
        plan = tr.sampler.sample()
        x = torch.randn(batch // world, 3, 16, 16)
        for item in plan:
            tr.model.set_active(item.arch)
            tr.model(x).float().logsumexp(1).mean().backward()
        grads = [g for _, _, g in gradients(list(tr.model.parameters()), tr.slice_grads)]
        times: dict[str, list[float]] = {"bucketed": [], "per_tensor": []}
        for _ in range(reps):
            for name, mb in (("bucketed", 25.0), ("per_tensor", 0.0)):
                work = [g.clone() for g in grads]
                torch.distributed.barrier()
                t = time.perf_counter()
                calls = all_reduce_gradients(work, bucket_mb=mb)
                times[name].append(time.perf_counter() - t)
                result[f"{name}_calls"] = calls
        result.update({f"{k}_ms": 1e3 * statistics.median(v) for k, v in times.items()})
        result["grad_tensors"] = len(grads)
        result["grad_mb"] = sum(g.numel() * g.element_size() for g in grads) / 2**20
        result["buckets"] = len(gradient_buckets(grads))
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32, help="global batch")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _run(0, 1, tmp, args.steps, args.batch, args.reps)
        one = json.loads(Path(tmp, "rank0.json").read_text())
        launch(_run, 2, tmp, args.steps, args.batch, args.reps)
        two = [json.loads(Path(tmp, f"rank{r}.json").read_text()) for r in (0, 1)]
    step2 = max(r["step_s"] for r in two)
    out = {
        "machine_cores": len(__import__("os").sched_getaffinity(0)),
        "global_batch": args.batch, "steps": args.steps,
        "images_per_s": {"1_process": round(one["images_per_s"], 1),
                         "2_gloo_processes": round(args.batch / step2, 1)},
        "speedup_2_vs_1": round(one["step_s"] / step2, 3),
        "allreduce_ms_per_step": {"bucketed_25mb": round(two[0]["bucketed_ms"], 2),
                                  "per_tensor": round(two[0]["per_tensor_ms"], 2)},
        "allreduce_calls_per_step": {"bucketed_25mb": two[0]["bucketed_calls"],
                                     "per_tensor": two[0]["per_tensor_calls"]},
        "grad_tensors": two[0]["grad_tensors"], "grad_mb": round(two[0]["grad_mb"], 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
