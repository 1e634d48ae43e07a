"""Train-step time fp32 vs bf16 autocast on CPU, side by side (sibling of
``supernet_overhead.py``).

Two :class:`~nasforge.supernet.training.trainer.SupernetTrainer` s of the ``elasticvit`` supernet,
one
per precision, built from the same seed and fed the same ``synthetic`` batches, step in turn
(interleaved, so machine load hits both alike); the sampler is ``sandwich`` (max + 1 random +
min per step) or, with ``--subnet min|max``, a single fixed subnet. Medians over ``--steps``
after one warm-up step; the last losses are reported too.

Run:
    python benchmarks/precision_step.py --steps 8 --threads 1 [--subnet max]

Prints one JSON object. Note: bf16 autocast on a CPU without native bf16 (AVX512-BF16 / AMX)
runs emulated kernels and is expected to be slower than fp32; it pays on GPUs and on CPUs with
those units.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from nasforge.data import load_data
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.samplers.base import BaseSampler
from nasforge.supernet.training.samplers.base import SampledArch
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainConfig


class _Fixed(BaseSampler):
    """One fixed subnet per step."""

    name = "fixed"

    def __init__(self, space, rng, which: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__(space, rng)
        self.arch = space.min_arch() if which == "min" else space.max_arch()
        self.role = which

    def sample(self) -> list[SampledArch]:
        return [SampledArch(self.arch, self.role, None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--subnet", choices=["sandwich", "min", "max"], default="sandwich")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space("elasticvit")
    scale = args.input_size / 256
    data = load_data("synthetic:256", input_size=args.input_size, seed=0,
                     resolution_scale=scale)
    trainers = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(steps=args.steps + 1, batch_size=args.batch,
                          input_size=args.input_size, warmup_steps=1, precision=precision,
                          resolution_scale=scale, dropout=0.0)
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        sampler = (create_sampler("sandwich", space, rng) if args.subnet == "sandwich"
                   else _Fixed(space, rng, args.subnet))
        trainers[precision] = SupernetTrainer(build_supernet(space, 10), sampler, data, cfg)
    times: dict[str, list[float]] = {p: [] for p in trainers}
    losses: dict[str, list[float]] = {p: [] for p in trainers}
    for i in range(args.steps + 1):
        for p, tr in trainers.items():
            t = time.perf_counter()
            recs = tr.train_step()
            if i:
                times[p].append(time.perf_counter() - t)
            losses[p] = [r["ce"] for r in recs]
    med = {p: statistics.median(v) for p, v in times.items()}
    print(json.dumps({
        "device": "cpu", "threads": args.threads, "batch": args.batch,
        "input_size": args.input_size, "sampler": args.subnet, "steps": args.steps,
        "step_ms": {p: round(1e3 * v, 1) for p, v in med.items()},
        "bf16_over_fp32_time": round(med["bf16"] / med["fp32"], 3),
        "last_step_ce": losses,
        "mkldnn_bf16_supported": bool(getattr(torch.backends.mkldnn, "is_available",
                                            lambda: False)()
                                    and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    }, indent=2))


if __name__ == "__main__":
    main()
