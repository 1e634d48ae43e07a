"""Profile of one training step of the ``elasticvit`` supernet, CPU side (torch profiler).

A :class:`~nasforge.supernet.training.trainer.SupernetTrainer` (sandwich sampler: max + one
random + min subnet per step, ``synthetic`` data, ``--batch`` images at ``--input-size`` px) runs
``--warmup`` steps, then ``--steps`` steps under :mod:`torch.profiler` (CPU activity). Reported:

* ``step_ms``: median wall time of a step without the profiler (``--timed`` steps after it);
* ``top_ops``: the ops with the most self CPU time over the profiled steps (ms per step, calls
  per step);
* ``ops_per_step`` (all aten ops) and ``ops_per_subnet`` (forward + backward of one subnet);
* ``host_syncs_per_step``: ``aten::_local_scalar_dense`` calls (the read behind ``.item()``,
  ``float(t)``; on a GPU, for a tensor on the GPU, each one stalls the launch queue);
* ``optimizer_ms_per_step``: the sliced optimizer's step (its ``record_function`` range);
* ``autocast_dtypes``: with ``--precision bf16``, the dtypes the matmuls and convolutions
  actually ran in (a dispatch-mode census of one forward + backward under autocast).

Run:
    python benchmarks/supernet_step_profile.py --steps 3 --threads 1 [--precision bf16]

Prints one JSON object. The GPU check left: ``benchmarks/gpu_throughput.py`` on a lent GPU
(supernet vs extracted max subnet per image, bf16 vs fp32, batch 128 at 224 px).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity
from torch.profiler import profile
from torch.profiler import record_function
from torch.utils._python_dispatch import TorchDispatchMode

from nasforge.data import load_data
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainConfig

_SYNC = "aten::_local_scalar_dense"  # what aten::item, .tolist() and float(t) run
_COMPUTE = ("aten.mm", "aten.addmm", "aten.bmm", "aten.convolution", "aten.convolution_backward",
            "aten._scaled_dot_product", "aten.baddbmm", "aten.linear")


class _DtypeCensus(TorchDispatchMode):
    """Counts (op, dtype of its first tensor input) of the matmuls and convolutions run."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        name = str(func.overloadpacket)
        if name.startswith(_COMPUTE):
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if first is not None:
                self.counts[f"{name}:{str(first.dtype).removeprefix('torch.')}"] += 1
        return func(*args, **(kwargs or {}))


def _trainer(args: argparse.Namespace) -> SupernetTrainer:
    space = get_space("elasticvit")
    scale = args.input_size / 256
    data = load_data("synthetic:256", input_size=args.input_size, seed=0, resolution_scale=scale)
    total = args.warmup + args.steps + args.timed + 2
    cfg = TrainConfig(steps=total, batch_size=args.batch, input_size=args.input_size,
                      warmup_steps=1, precision=args.precision, resolution_scale=scale,
                      dropout=0.0)
    torch.manual_seed(0)
    sampler = create_sampler("sandwich", space, np.random.default_rng(0))
    return SupernetTrainer(build_supernet(space, 10), sampler, data, cfg)


def _wrap_optimizer(tr: SupernetTrainer) -> None:
    """Name the optimizer step in the profile (a ``record_function`` range)."""
    step = tr.optimizer.step

    def named_step(*a: Any, **kw: Any) -> Any:
        with record_function("nasforge::optimizer_step"):
            return step(*a, **kw)

    tr.optimizer.step = named_step  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="profiled steps")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--timed", type=int, default=5, help="unprofiled timed steps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tr = _trainer(args)
    _wrap_optimizer(tr)
    for _ in range(args.warmup):
        tr.train_step()
    times = []
    for _ in range(args.timed):
        t = time.perf_counter()
        tr.train_step()
        times.append(time.perf_counter() - t)
    subnets = 0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            subnets += len(tr.train_step())
    events = prof.key_averages()
    per = 1.0 / args.steps
    aten = [e for e in events if e.key.startswith("aten::")]
    top = sorted(aten, key=lambda e: e.self_cpu_time_total, reverse=True)[:args.top]
    opt = [e for e in events if e.key == "nasforge::optimizer_step"]
    census = _DtypeCensus()
    with census:
        tr.train_step()
    total_ops = sum(e.count for e in aten) * per
    out = {
        "device": "cpu", "threads": args.threads, "batch": args.batch,
        "input_size": args.input_size, "precision": args.precision, "sampler": "sandwich",
        "subnets_per_step": subnets * per,
        "step_ms": round(1e3 * statistics.median(times), 1),
        "profiled_steps": args.steps,
        "ops_per_step": round(total_ops),
        "ops_per_subnet": round(total_ops * args.steps / max(subnets, 1)),
        "host_syncs_per_step": sum(e.count for e in events if e.key == _SYNC) * per,
        "optimizer_ms_per_step": round(opt[0].cpu_time_total * per / 1e3, 2) if opt else None,
        "top_ops": [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total * per / 1e3, 2),
                     "calls_per_step": round(e.count * per, 1)} for e in top],
        "autocast_dtypes": dict(sorted(census.counts.items())),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
