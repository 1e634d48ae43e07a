"""Whole-network LiteRT latency vs the sum of its blocks' isolated latencies (issue 12).

For ``--n`` archs of a space (its min arch, then seeded random ones) every block of the arch and
the whole network are converted to ``.tflite`` (cached by key) and timed with LiteRT (XNNPACK,
fp32, one pinned thread, the shared interleaved protocol). No regressor is involved: each
network's block sum is over its own blocks, measured. Prints and writes JSON: per arch the
measured network time, the exact block sum, their ratio, the block sum per block kind, the
op histograms of the network file and of its blocks' files (what the network adds or drops),
and the fusion rule (:func:`nasforge.hardware_models._fusion.fit_fusion`) judged by
leave-one-network-out prediction (ratio, share within +-10 %, Spearman) against the plain sum.

Usage: python benchmarks/litert_block_sum.py [--space elasticvit] [--n 8] [--workers 4]
       [--repeats 15] [--seed 0] [--deadline-s 400] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _ops(path: Path) -> Counter[str]:
    from ai_edge_litert.interpreter import Interpreter

    ip = Interpreter(model_path=str(path))
    return Counter(op["op_name"] for op in ip._get_ops_details())


def _loo(sums: np.ndarray, nblk: np.ndarray, meas: np.ndarray) -> dict[str, Any]:

    from nasforge.hardware_models._fusion import fit_fusion

    pred = []
    forms = []
    for i in range(len(meas)):
        keep = np.arange(len(meas)) != i
        f = fit_fusion(sums[keep].tolist(), nblk[keep].tolist(), meas[keep].tolist())
        pred.append(f.per_network_ms + f.scale * sums[i] + f.per_block_ms * nblk[i])
        forms.append((f.rel_err or {}).get("form"))
    p = np.asarray(pred)
    return _metrics(p, meas) | {"forms": forms}


def _metrics(p: np.ndarray, m: np.ndarray) -> dict[str, Any]:
    from scipy import stats

    r = p / m
    return {"ratio_median": float(np.median(r)), "ratio_min": float(r.min()),
            "ratio_max": float(r.max()), "within_10pct": float(np.mean(np.abs(r - 1) <= 0.1)),
            "spearman": float(stats.spearmanr(p, m).statistic) if len(m) > 2 else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="elasticvit")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smallest", action="store_true",
                    help="the n - 1 random archs are the ones with fewest blocks out of 20 n "
                    "draws (cheaper to convert)")
    ap.add_argument("--deadline-s", type=float, default=400.0,
                    help="stop converting after this long; archs fully converted are measured")
    ap.add_argument("--clocks", default="before,wall,cpu",
                    help="protocols to time with: wall (the shared protocol: undisturbed wall "
                    "samples, CPU time for an item descheduled in nearly every sample), cpu "
                    "(the thread's CPU time), before (blocks as wall, networks on every wall "
                    "sample: what the protocol did before its CPU-time fallback)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder of converted files (default: a new temporary one; "
                    "~/.cache/nasforge/tflite shares the blocks `nas profile` converted)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from nasforge.hardware_models._blockkeys import block_key_scheme
    from nasforge.hardware_models.profiling._litert import TfliteCache
    from nasforge.hardware_models.profiling._litert import _convert_job
    from nasforge.hardware_models.profiling._litert import interpreter_call
    from nasforge.hardware_models.profiling._litert_runner import LiteRTRunner
    from nasforge.hardware_models.profiling._protocol import measure_interleaved
    from nasforge.hardware_models.profiling._protocol import pinned
    from nasforge.search_spaces import get_space
    from nasforge.supernet.static import build_block
    from nasforge.supernet.static import build_static

    t_start = time.perf_counter()
    space = get_space(args.space)
    rng = np.random.default_rng(args.seed)
    draws = [space.sample(rng) for _ in range((20 if args.smallest else 1) * (args.n - 1))]
    if args.smallest:
        draws = sorted(draws, key=lambda a: len(space.blocks(a)))[: args.n - 1]
    archs = [space.min_arch(), *draws]
    root = args.cache or Path(tempfile.mkdtemp(prefix="nasforge-blocksum-"))
    cache = TfliteCache(root)
    plan: dict[str, list[tuple[str, Any, tuple[int, ...]]]] = {}
    for a in archs:
        blocks = space.blocks(a)
        first = blocks[0]
        net = (f"net:{space.name}:{a.arch_id}", build_static(space, a),
               (1, first.cin, first.hw_in, first.hw_in))
        blk = [(k, build_block(b), (1, b.cin, b.hw_in, b.hw_in))  # nas profile's keys
               for k, b in zip(block_key_scheme(space.name).keys(blocks), blocks, strict=True)]
        plan[a.arch_id] = [net, *blk]
    jobs: dict[tuple[str, tuple[int, ...]], Any] = {}
    for items in plan.values():  # networks first (the long poles), then blocks
        k, m, s = items[0]
        jobs.setdefault((k, s), m)
    for items in plan.values():
        for k, m, s in items[1:]:
            jobs.setdefault((k, s), m)
    todo = [(k, s, m) for (k, s), m in jobs.items() if cache.get(k, s) is None]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as ex:
        futs = {ex.submit(_convert_job, m, s, k): (k, s) for k, s, m in todo}
        done, pending = wait(futs, timeout=max(1.0, args.deadline_s - (t0 - t_start)))
        for f in done:
            k, s = futs[f]
            cache.put(k, s, f.result())
        for f in pending:
            f.cancel()
        ex.shutdown(wait=False, cancel_futures=True)
    convert_s = time.perf_counter() - t0
    ready = [a for a in archs if all(cache.get(k, s) for k, _, s in plan[a.arch_id])]
    clocks = args.clocks.split(",")
    runner = LiteRTRunner(1, repeats=args.repeats, cache_root=root)

    def timed(files: list[Path], clock: str) -> list[Any]:
        with pinned(runner.cpus):
            calls = [interpreter_call(f, 1)[0] for f in files]
            kw = {"warmup": runner.warmup, "repeats": runner.repeats,
                  "sample_ms": runner.sample_ms}
            if clock == "before":  # blocks filtered, the network on every wall sample
                net = measure_interleaved(calls[:1], clock="wall", filtered=False, **kw)
                return net + measure_interleaved(calls[1:], clock="wall", filtered=True, **kw)
            return measure_interleaved(calls, clock=clock, filtered=clock == "wall", **kw)

    rows: dict[str, list[dict[str, Any]]] = {c: [] for c in clocks}
    for a in ready:
        items = plan[a.arch_id]
        blocks = space.blocks(a)
        files = [cache.get(k, s) for k, _, s in items]
        net_ops = _ops(files[0])  # type: ignore[arg-type]
        blk_ops: Counter[str] = Counter()
        for f in files[1:]:
            blk_ops += _ops(f)  # type: ignore[arg-type]
        diff = {op: net_ops[op] - blk_ops[op] for op in set(net_ops) | set(blk_ops)
                if net_ops[op] != blk_ops[op]}
        for c in clocks:
            got = timed(files, c)  # type: ignore[arg-type]
            net_ms = got[0].ms
            per_kind: Counter[str] = Counter()
            for b, g in zip(blocks, got[1:], strict=True):
                per_kind[b.kind] += g.ms
            bsum = float(sum(g.ms for g in got[1:]))
            rows[c].append({
                "arch_id": a.arch_id, "clock": c, "resolution": getattr(a, "resolution", None),
                "n_blocks": len(blocks), "flops": int(space.flops(a)), "network_ms": net_ms,
                "network_rel_spread": got[0].rel_spread, "network_basis": got[0].basis,
                "block_bases": dict(Counter(g.basis for g in got[1:])), "block_sum_ms": bsum,
                "ratio_sum_over_network": bsum / net_ms,
                "block_sum_by_kind_ms": {k: round(v, 4) for k, v in per_kind.items()},
                "block_ms": [round(g.ms, 4) for g in got[1:]],
                "block_kinds": [b.kind for b in blocks],
                "ops_network_minus_blocks": dict(sorted(diff.items())),
                "ops_network_total": sum(net_ops.values()),
                "ops_blocks_total": sum(blk_ops.values()),
                "load_avg_1min": round(os.getloadavg()[0], 2)})
            print(json.dumps({k: v for k, v in rows[c][-1].items()
                              if k not in ("block_ms", "block_kinds")}),
                  file=sys.stderr, flush=True)
    out: dict[str, Any] = {"space": space.name, "planned": len(archs), "measured": len(ready),
                           "convert_s": round(convert_s, 1), "workers": args.workers,
                           "cpu_count": os.cpu_count(),
                           "load_avg": [round(x, 2) for x in os.getloadavg()],
                           "runtime": runner.runtime(), "by_clock": {}}
    for c, rs in rows.items():
        entry: dict[str, Any] = {"archs": rs}
        if len(rs) >= 3:
            s_ = np.asarray([r["block_sum_ms"] for r in rs])
            m_ = np.asarray([r["network_ms"] for r in rs])
            nb = np.asarray([r["n_blocks"] for r in rs], dtype=float)
            entry["plain_block_sum"] = _metrics(s_, m_)
            entry["fusion_rule_leave_one_out"] = _loo(s_, nb, m_)
        out["by_clock"][c] = entry
    text = json.dumps(out, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
