"""The main job's time goal: ``nas search --space elasticvit --device pixel7 --latency 25``.

Prints JSON with, for each checkout given (``--tree``, default this one; give the old and the new
checkout to compare them side by side, run alternately on the same machine):

- ``main_job``: cold (fresh ``NASFORGE_CACHE``: the quick supernet is trained first) and cached
  (the same cache again) wall time and CPU time (``RUSAGE_CHILDREN``: user + sys of the ``nas``
  process), evaluations, per-evaluation wall time of the search, the best arch and the Pareto
  front's resolution spread (from ``pareto.csv``). ``--cache DIR`` seeds the cache with a copy of
  DIR (skips the cold run, e.g. when the quick supernet's recipe is unchanged).
- ``per_eval`` (``--eval-ckpt CKPT``): in one process on one loaded supernet, the cost of one
  subnet evaluation by the old protocol (a fresh read of the data per subnet, K=2 recalibration
  batches of 128) and by the search objective's (one held :class:`EvalSet`, K as configured),
  alternating subnet by subnet, with the Spearman of each against a K=8 reference.

The machine's load average is reported with the figures: on the shared 2-core machine other
processes take CPU, so CPU time is the steadier figure. The ``nas`` process runs with torch's
default threads (one per core), as the README's command does; ``--threads N`` sets
``OMP_NUM_THREADS``.

    python benchmarks/main_job.py --tree /tmp/old --tree . [--cache DIR] [--eval-ckpt CKPT]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

JOB = ["search", "--space", "elasticvit", "--device", "pixel7", "--latency", "25"]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _partial(label: str, value: Any) -> Any:
    """Print one finished figure to stderr at once (a long run that is stopped keeps them)."""
    print(json.dumps({label: value}), file=sys.stderr, flush=True)
    return value


def _run_job(tree: Path, cache: Path, out: Path, threads: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "NASFORGE_CACHE": str(cache)}
    if threads:  # --threads N; 0: torch's own choice, as the README's command runs
        env["OMP_NUM_THREADS"] = str(threads)
    else:
        env.pop("OMP_NUM_THREADS", None)
    load = os.getloadavg()[0]
    t, c = time.perf_counter(), _cpu()
    proc = subprocess.run([sys.executable, "-m", "nasforge.cli", *JOB, "--out", str(out)],
                          cwd=tree, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t, _cpu() - c
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:], "wall_s": round(wall, 1)}
    run = json.loads((out / "run.json").read_text())
    summary = run["summary"]
    with open(out / "pareto.csv", newline="") as f:
        front = list(csv.DictReader(f))
    spread = Counter(int(r["resolution"]) for r in front)
    return {
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2), "evaluated": summary["n_evaluated"],
        "search_s": round(summary["seconds"], 1),
        "search_s_per_eval": round(summary["seconds"] / max(1, summary["n_evaluated"]), 3),
        "best": {k: summary["best"][k] for k in ("accuracy", "latency_ms", "mflops")}
        | {"resolution": summary["best"]["arch"].get("resolution")},
        "pareto_size": len(front),
        "pareto_resolutions": {str(k): v for k, v in sorted(spread.items())},
        "accuracy_provenance": {k: v for k, v in run["accuracy"].items() if k != "checkpoint"},
    }


def _main_job(trees: list[Path], seed_cache: Path | None, cold: bool, threads: int,
              keep: Path | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="main_job_") as tmp:
        caches = {}
        for i, tree in enumerate(trees):
            cache = Path(tmp, f"cache{i}")
            if seed_cache is not None:
                shutil.copytree(seed_cache, cache)
            caches[tree] = cache
            out[str(tree)] = {}
        if cold and seed_cache is None:
            for i, tree in enumerate(trees):
                out[str(tree)]["cold"] = _partial(f"{tree} cold", _run_job(
                    tree, caches[tree], Path(tmp, f"cold{i}"), threads))
        for i, tree in enumerate(trees):
            out[str(tree)]["cached"] = _partial(f"{tree} cached", _run_job(
                tree, caches[tree], Path(tmp, f"cached{i}"), threads))
        if keep is not None:  # the trained quick supernet(s), for later checks
            for i, tree in enumerate(trees):
                shutil.copytree(caches[tree], keep / f"cache{i}", dirs_exist_ok=True)
    return out


def _per_eval(ckpt: Path, n: int, recal_batches: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from scipy.stats import spearmanr

    from nasforge.search_spaces import get_space
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.evaluate import EvalSet
    from nasforge.supernet.evaluate import evaluate_subnet

    torch.set_num_threads(1)
    net, state = load_supernet(ckpt)
    run = RunConfig.from_checkpoint(state)
    data = run.open_data()
    space = get_space(net.space.name)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(n)]
    es = EvalSet(data, recal_batches=recal_batches, batch_size=128, seed=run.seed)
    ref_es = EvalSet(data, recal_batches=8, batch_size=128, seed=run.seed)
    old_t, new_t, old_acc, new_acc, ref_acc = [], [], [], [], []
    for a in archs:  # alternate, so both see the same load
        t = time.perf_counter()
        old_acc.append(evaluate_subnet(net, a, data, recal_batches=2, batch_size=128,
                                       seed=run.seed).top1)
        old_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        new_acc.append(evaluate_subnet(net, a, data, eval_set=es).top1)
        new_t.append(time.perf_counter() - t)
        ref_acc.append(evaluate_subnet(net, a, data, eval_set=ref_es).top1)
    res = [a.resolution for a in archs]
    flops = [space.flops(a) for a in archs]
    return {
        "subnets": n, "checkpoint": str(ckpt), "load": round(os.getloadavg()[0], 2),
        "old_s_per_eval": round(float(np.median(old_t)), 3),
        "new_s_per_eval": round(float(np.median(new_t)), 3),
        "old_over_new": round(float(np.sum(old_t) / np.sum(new_t)), 2),
        "new_protocol": es.provenance(),
        "spearman_vs_K8": {"old_K2": round(float(spearmanr(old_acc, ref_acc)[0]), 3),
                           f"new_K{recal_batches}": round(float(spearmanr(new_acc, ref_acc)[0]),
                                                          3)},
        "spearman_top1": {"resolution": round(float(spearmanr(res, ref_acc)[0]), 3),
                          "mflops": round(float(spearmanr(flops, ref_acc)[0]), 3)},
        "mean_top1_K8": round(float(np.mean(ref_acc)), 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", type=Path, action="append", default=[],
                   help="checkout to run (repeatable; default: this one)")
    p.add_argument("--cache", type=Path, default=None,
                   help="seed each run's cache with a copy of this NASFORGE_CACHE folder")
    p.add_argument("--no-cold", action="store_true", help="skip the cold runs")
    p.add_argument("--keep-cache", type=Path, default=None,
                   help="copy each tree's cache (the trained quick supernet) to DIR/cacheI")
    p.add_argument("--no-job", action="store_true", help="skip the main job runs")
    p.add_argument("--eval-ckpt", type=Path, default=None,
                   help="also time one evaluation, old vs new protocol, on this checkpoint")
    p.add_argument("--eval-n", type=int, default=12, help="subnets for --eval-ckpt")
    p.add_argument("--recal-batches", type=int, default=1,
                   help="K of the new protocol (the search objective's default)")
    p.add_argument("--threads", type=int, default=0,
                   help="OMP_NUM_THREADS of the nas process (default: unset, torch's choice: one "
                        "per core, as the README's command runs)")
    args = p.parse_args()
    trees = [t.resolve() for t in args.tree] or [Path(__file__).resolve().parents[1]]
    report: dict[str, Any] = {"cpus": os.cpu_count(), "threads": args.threads or "torch default",
                              "load_start": os.getloadavg()}
    if not args.no_job:
        report["main_job"] = _main_job(trees, args.cache, not args.no_cold, args.threads,
                                       args.keep_cache)
    if args.eval_ckpt is not None:
        report["per_eval"] = _partial("per_eval", _per_eval(args.eval_ckpt, args.eval_n,
                                                            args.recal_batches))
    report["load_end"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
