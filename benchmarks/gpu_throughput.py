"""GPU throughput: images/s of the elasticvit supernet (max subnet active) vs the extracted max
subnet, fp32 (TF32 allowed) vs bf16 autocast.

A training step is forward + backward + optimizer step on a synthetic batch already on the GPU
(the supernet with its slice-aware AdamW over the slice-gradient store, as the trainer runs it;
the static subnet with torch's AdamW); an inference step is a forward pass under
``torch.no_grad`` in eval mode. Each setting runs ``--warmup`` untimed steps, then ``--steps``
timed ones between CUDA synchronisations.

Imports only torch, numpy and nasforge (no optuna, xgboost or ray).

Run:
    python benchmarks/gpu_throughput.py --batch 64 --resolution 224 [--out result.json]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.optim import build_optimizer
from nasforge.supernet.training.precision import autocast
from nasforge.supernet.training.precision import enable_tf32


def _time(fn: Callable[[], None], warmup: int, steps: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                precision: str) -> Callable[[], None]:
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(precision, x.device):
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        opt.step()
    return step


def _infer_step(model: nn.Module, x: torch.Tensor, precision: str) -> Callable[[], None]:
    @torch.no_grad()
    def step() -> None:
        with autocast(precision, x.device):
            model(x)
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="elasticvit")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--channels-last", action="store_true", help="NHWC weights and batch")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_throughput.py needs a CUDA device")
    dev = torch.device("cuda")
    tf32 = enable_tf32(dev)
    space = get_space(args.space)
    arch = space.max_arch()
    if hasattr(arch, "resolution"):
        arch = space.arch_from_dict({**arch.to_dict(), "resolution": args.resolution})
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(args.batch, 3, args.resolution, args.resolution, device=dev, generator=gen)
    y = torch.randint(0, args.classes, (args.batch,), device=dev, generator=gen)
    torch.manual_seed(0)
    supernet = build_supernet(space, args.classes).to(dev)
    supernet.set_active(arch)
    static = supernet.extract(arch)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        supernet.to(memory_format=torch.channels_last)
        static.to(memory_format=torch.channels_last)
    grads = supernet.enable_slice_grads()
    models = {
        "supernet": (supernet, build_optimizer(supernet, "adamw", 1e-4, slice_grads=grads)),
        "extracted": (static, torch.optim.AdamW(static.parameters(), lr=1e-4)),
    }
    rows = {}
    for precision in ("fp32", "bf16"):
        for name, (model, opt) in models.items():
            model.train()
            s_train = _time(_train_step(model, opt, x, y, precision), args.warmup, args.steps)
            model.eval()
            s_infer = _time(_infer_step(model, x, precision), args.warmup, args.steps)
            rows[f"{name}_{precision}"] = {
                "train_images_per_s": round(args.batch / s_train, 1),
                "infer_images_per_s": round(args.batch / s_infer, 1),
                "train_step_ms": round(1e3 * s_train, 2),
                "infer_step_ms": round(1e3 * s_infer, 2),
            }
    out = {
        "device": torch.cuda.get_device_name(dev), "torch": torch.__version__,
        "space": args.space, "arch_id": arch.arch_id,
        "mflops": round(space.flops(arch) / 1e6, 1), "batch": args.batch,
        "resolution": args.resolution, "tf32": tf32, "channels_last": args.channels_last,
        "warmup": args.warmup,
        "steps": args.steps, "results": rows,
        "supernet_over_extracted_train": {
            p: round(rows[f"extracted_{p}"]["train_images_per_s"]
                     / rows[f"supernet_{p}"]["train_images_per_s"], 3) for p in ("fp32", "bf16")},
        "bf16_speedup_train": {
            m: round(rows[f"{m}_bf16"]["train_images_per_s"]
                     / rows[f"{m}_fp32"]["train_images_per_s"], 3) for m in models},
        "peak_memory_gb": round(torch.cuda.max_memory_allocated(dev) / 2**30, 2),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
