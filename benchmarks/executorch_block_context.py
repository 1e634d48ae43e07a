"""What a block costs in a whole ExecuTorch network beyond its isolated timing (issue 24).

``nas profile`` times each block's ``.pte`` alone, in the shared interleaved protocol: the block
runs again and again, so its weights stay in cache (8 blocks interleaved hold a few MB, the
32 MB L3 keeps them), and every call pays the harness (``method.execute``, the input copy, the
output tensor). In a whole network neither holds: one call for all blocks, and an elasticvit
network holds 8-38 M weights (32-150 MB fp32), so each block streams its weights from memory.
This script measures both effects on this machine, side by side in one interleaved run:

* **harness**: a (nearly) empty program (``x + 1``) at each block's input shape, run the way
  blocks are run;
* **cold cache**: each block timed hot (as profiled) and right after a read of a 64 MB buffer
  (which evicts the caches): ``cold - hot = (flush + block) - flush - block``, fitted on the
  block's weights and its activations (the flush evicts its input too, which a network keeps
  hot). The weights slope (ms per million weights) can be set beside the fusion rule's
  weights term, fitted on whole networks (:mod:`nasforge.hardware_models._fusion`). The
  difference of two samples a few ms long resolves tenths of a ms at best: on a busy machine
  it is noise.

Usage: python benchmarks/executorch_block_context.py [--n 12] [--repeats 40] [--flush-mb 64]
       [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


class AddOne(torch.nn.Module):
    """The nearly empty program: ``x + 1`` (one XNNPACK add); x: (1, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1.0


def _blocks(n: int, seed: int) -> list[Any]:
    """``n`` distinct blocks of elasticvit's min, max and one random arch, spread over weights."""
    from nasforge.search_spaces.block import block_params
    from nasforge.search_spaces.registry import get_space

    space = get_space("elasticvit")
    archs = [space.min_arch(), space.max_arch(), space.sample(np.random.default_rng(seed))]
    seen: dict[tuple[Any, ...], Any] = {}
    for a in archs:
        for b in space.blocks(a):
            seen.setdefault((b.kind, b.cin, b.cout, b.hw_in, block_params(b)), b)
    by_params = sorted(seen.values(), key=block_params)
    idx = np.unique(np.linspace(0, len(by_params) - 1, n).round().astype(int))
    return [by_params[i] for i in idx]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="blocks")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flush-mb", type=int, default=64)
    ap.add_argument("--out", type=Path,
                    default=REPO / "benchmarks/results/executorch_block_context.json")
    args = ap.parse_args(argv)

    from nasforge.hardware_models._blockkeys import block_key
    from nasforge.hardware_models.profiling._executorch import PteCache
    from nasforge.hardware_models.profiling._executorch import lower_many
    from nasforge.hardware_models.profiling._executorch import method_call
    from nasforge.hardware_models.profiling._protocol import default_cpus
    from nasforge.hardware_models.profiling._protocol import measure_interleaved
    from nasforge.hardware_models.profiling._protocol import pinned
    from nasforge.search_spaces.block import block_params
    from nasforge.supernet.static import build_block

    blocks = _blocks(args.n, args.seed)
    cache = PteCache()
    shapes = [(1, b.cin, b.hw_in, b.hw_in) for b in blocks]
    keys = [block_key(b) for b in blocks]
    files = lower_many([(k, build_block(b), s) for k, b, s in zip(keys, blocks, shapes,
                                                                  strict=True)], cache)
    empties = lower_many([(f"bench:add_one:{s}", AddOne(), s) for s in shapes], cache)
    buf = np.ones(args.flush_mb * (1 << 20) // 8)

    def flush() -> object:
        return buf.sum()

    with pinned(default_cpus(1)):
        calls = [method_call(f)[0] for f in files]
        empty_calls = [method_call(f)[0] for f in empties]
        cold = [(lambda c=c: (flush(), c())) for c in calls]
        got = measure_interleaved([flush, *calls, *cold, *empty_calls], warmup=3,
                                  repeats=args.repeats, sample_ms=1.0, clock="wall",
                                  filtered=True)
    t_flush, hot = got[0].ms, got[1:1 + len(blocks)]
    cold_m = got[1 + len(blocks):1 + 2 * len(blocks)]
    empty_m = got[1 + 2 * len(blocks):]
    rows = []
    for b, k, h, c, e in zip(blocks, keys, hot, cold_m, empty_m, strict=True):
        rows.append({"key": k, "kind": b.kind, "mparams": block_params(b) / 1e6,
                     "mact": (b.cin * b.hw_in ** 2 + b.cout * b.hw_out ** 2) / 1e6,
                     "hot_ms": h.ms, "cold_extra_ms": c.ms - t_flush - h.ms,
                     "empty_program_ms": e.ms, "bases": [h.basis, c.basis, e.basis]})
    # the flush evicts the block's input and code too, which a network keeps hot: fit the cold
    # extra on weights and activations (input + output elements) together
    feats = np.column_stack([np.ones(len(rows)), [r["mparams"] for r in rows],
                             [r["mact"] for r in rows]])
    extra = np.array([r["cold_extra_ms"] for r in rows])
    icpt, slope, per_mact = np.linalg.lstsq(feats, extra, rcond=None)[0]
    out = {"benchmark": "executorch_block_context", "date": datetime.now(timezone.utc)
           .isoformat(timespec="seconds"), "load_avg": list(os.getloadavg()),
           "flush_mb": args.flush_mb, "flush_ms": t_flush, "repeats": args.repeats,
           "cold_extra_ms_per_mparam": float(slope), "cold_extra_ms_per_mact": float(per_mact),
           "cold_extra_intercept_ms": float(icpt),
           "empty_program_ms_median": float(np.median([r["empty_program_ms"] for r in rows])),
           "blocks": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "blocks"}, indent=1))
    for r in rows:
        print(f"{r['kind']:10s} {r['mparams']:6.3f} M weights {r['mact']:6.3f} M act  hot "
              f"{r['hot_ms']:.4f} ms  cold +{r['cold_extra_ms']:.4f} ms  empty program "
              f"{r['empty_program_ms']:.4f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
