"""Supernet overhead: training-step time of the active supernet / its extracted static twin.

A step is forward + backward + optimizer step on one fixed batch. The supernet (min or max
subnet active) and the extracted static subnet are timed side by side in one process,
interleaved, and the ratio of the medians is reported. The supernet steps with the optimizer
its trainer uses (the slice-aware one of ``nasforge.supernet.training.sliced_optim``, which updates
the
active slices only); the static subnet with the same optimizer class over its whole tensors
(the same kernels, so the ratio isolates the supernet's overhead). ``stock_opt`` times both with
the stock torch optimizer instead, for comparison. Two settings: ``digits`` (batch 32 at
32 px, the quick supernet's proxy input) and ``resolution`` (the arch's own resolution, a small
batch). ``fwd_bwd`` ratios leave the optimizer step out, to show where the overhead is.

Run:
    python benchmarks/supernet_overhead.py --space elasticvit --threads 1

Prints one JSON object; ``ratio_min`` and ``ratio_max`` are the ``digits`` full-step ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.sliced_optim import SlicedAdamW
from nasforge.supernet.training.sliced_optim import SlicedSGD
from nasforge.supernet.training.sliced_optim import SliceGrads


def _optimizer(name: str, params: list[nn.Parameter], sliced: bool,
               grads: SliceGrads | None = None) -> torch.optim.Optimizer:
    """The slice-aware optimizer (over the store ``grads``; whole tensors when ``None``) or the
    stock torch one, with the same settings."""
    if name == "adamw":
        kw: dict[str, object] = {"lr": 1e-4, "weight_decay": 0.05}
        return (SlicedAdamW(params, grads, **kw) if sliced
                else torch.optim.AdamW(params, **kw))  # type: ignore[arg-type]
    kw = {"lr": 1e-3, "momentum": 0.9, "nesterov": True, "weight_decay": 3e-5}
    return (SlicedSGD(params, grads, **kw) if sliced
            else torch.optim.SGD(params, **kw))  # type: ignore[arg-type]


def _step_fn(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
             with_opt: bool) -> Callable[[], None]:
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if with_opt:
            opt.step()

    return step


def _time(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _ratio(a: Callable[[], None], b: Callable[[], None], warmup: int, repeats: int
           ) -> dict[str, float]:
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for i in range(repeats):  # interleave, alternating which goes first
        if i % 2:
            ta.append(_time(a))
            tb.append(_time(b))
        else:
            tb.append(_time(b))
            ta.append(_time(a))
    ma, mb = statistics.median(ta), statistics.median(tb)
    return {"supernet_ms": round(1e3 * ma, 3), "static_ms": round(1e3 * mb, 3),
            "ratio": round(ma / mb, 3)}


def measure(space_name: str, which: str, size: int | None, batch: int, optimizer: str,
            warmup: int, repeats: int, num_classes: int = 10) -> dict[str, object]:
    """Ratios for the ``which`` (min/max) arch at input ``size`` (None: the arch's resolution)."""
    space = get_space(space_name)
    arch = space.min_arch() if which == "min" else space.max_arch()
    torch.manual_seed(0)
    net = build_supernet(space, num_classes).train()
    net.set_active(arch)
    static = net.extract(arch).train()
    side = size or arch.resolution  # type: ignore[attr-defined]
    x = torch.randn(batch, 3, side, side)
    y = torch.randint(0, num_classes, (batch,))
    out: dict[str, object] = {"arch": which, "input": side, "batch": batch}
    for with_opt, sliced, key in ((True, True, "step"), (False, True, "fwd_bwd"),
                                  (True, False, "stock_opt")):
        store = net.enable_slice_grads() if sliced else None
        if not sliced:
            net.disable_slice_grads()
        opt_n = _optimizer(optimizer, list(net.parameters()), sliced, store)
        opt_s = _optimizer(optimizer, list(static.parameters()), sliced)
        out[key] = _ratio(_step_fn(net, opt_n, x, y, with_opt),
                          _step_fn(static, opt_s, x, y, with_opt), warmup, repeats)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="elasticvit")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--res-batch", type=int, default=2,
                   help="batch of the arch-resolution setting (0 skips it)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    result: dict[str, object] = {"space": a.space, "threads": a.threads,
                                 "optimizer": a.optimizer, "torch": torch.__version__}
    digits = {w: measure(a.space, w, 32, 32, a.optimizer, a.warmup, a.repeats)
              for w in ("min", "max")}
    result["digits"] = digits
    result["ratio_min"] = digits["min"]["step"]["ratio"]  # type: ignore[index]
    result["ratio_max"] = digits["max"]["step"]["ratio"]  # type: ignore[index]
    if a.res_batch:
        res = {w: measure(a.space, w, None, a.res_batch, a.optimizer, a.warmup,
                          max(5, a.repeats // 3)) for w in ("min", "max")}
        result["resolution"] = res
        result["ratio_min_resolution"] = res["min"]["step"]["ratio"]  # type: ignore[index]
        result["ratio_max_resolution"] = res["max"]["step"]["ratio"]  # type: ignore[index]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
