"""The issue-12 TFLite checks: export min, max and N random archs of each space as ``.tflite``.

For every arch: LiteRT runs the file, the max abs difference of its logits to torch (eval mode,
random input, at the arch's own resolution) must be at most 1e-4, and the converter's MAC count
must be within 3 % of our ``flops``. Prints one JSON object (per-arch rows and a summary per
space). A whole subnet converts in tens of seconds on one core, so the full run (``--n 10``, 36
archs) takes most of an hour on an idle machine; ``--n 0 --no-max`` is the quick version.

The MAC check compares the count from the file's own ops with ours; the converter's logged
estimate (which under-counts batch-matmul) is reported beside it with its gap. With ``--out`` the
JSON file is rewritten after every arch and a rerun resumes where it stopped.

Usage: python benchmarks/tflite_checks.py [--spaces elasticvit,elasticvit_efficient,ofa_mbv3]
       [--n 10] [--no-max] [--runs 10] [--seed 0] [--out benchmarks/results/tflite_checks.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["space"] for r in rows):
        mine = [r for r in rows if r["space"] == name]
        out[name] = {
            "n": len(mine), "archs": [r["arch"] for r in mine],
            "all_ok_1e-4": all(r["ok_1e-4"] for r in mine),
            "max_abs_diff": max(r["max_abs_diff"] for r in mine),
            "all_macs_within_3pct": all(bool(r["macs_within_3pct"]) for r in mine),
            "max_abs_graph_macs_rel_diff": max(abs(r["graph_macs_rel_diff"] or 0.0)
                                               for r in mine),
            "max_abs_converter_macs_rel_diff": max(abs(r["macs_rel_diff"] or 0.0)
                                                   for r in mine),
            "converter_within_3pct": sum(bool(r["converter_within_3pct"]) for r in mine)}
    return out


def _write(path: Path | None, doc: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default="elasticvit,elasticvit_efficient,ofa_mbv3")
    ap.add_argument("--n", type=int, default=10, help="random archs per space")
    ap.add_argument("--no-max", action="store_true", help="skip the max arch (slowest)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON file written after every arch; rows already there are kept and "
                    "their archs skipped (resume)")
    ap.add_argument("--order", choices=("space", "interleave"), default="interleave",
                    help="interleave: min of every space, then max, then random0, ... (a run "
                    "cut short still covers every space)")
    ap.add_argument("--shard", default="0/1",
                    help="I/K: run only the archs whose position in the order is I mod K "
                    "(K processes, one JSON file each)")
    args = ap.parse_args(argv)
    shard, n_shards = (int(x) for x in args.shard.split("/"))
    sys.path.insert(0, str(REPO))
    import yaml

    from nasforge.experiments import export_model
    from nasforge.search_spaces import get_space
    from nasforge.supernet.static import build_static

    rows: list[dict[str, Any]] = []
    if args.out is not None and args.out.is_file():
        rows = json.loads(args.out.read_text()).get("archs", [])
    done = {(r["space"], r["arch_id"]) for r in rows}
    plan: list[list[tuple[str, str, Any, Any]]] = []
    for name in args.spaces.split(","):
        space = get_space(name)
        rng = np.random.default_rng(args.seed)
        randoms = [(f"random{i}", space.sample(rng)) for i in range(args.n)]
        archs = [("min", space.min_arch()), *randoms[:1]]
        if not args.no_max:
            archs.append(("max", space.max_arch()))
        archs += randoms[1:]
        plan.append([(name, tag, space, arch) for tag, arch in archs])
    order = ([job for col in itertools.zip_longest(*plan) for job in col if job is not None]
             if args.order == "interleave" else [job for jobs in plan for job in jobs])
    order = [job for i, job in enumerate(order) if i % n_shards == shard]
    meta = {"command": "python benchmarks/tflite_checks.py " + " ".join(argv or sys.argv[1:]),
            "planned": len(order)}
    with tempfile.TemporaryDirectory(prefix="nasforge-tflite-") as out:
        for name, tag, space, arch in order:
            if (name, arch.arch_id) in done:
                continue
            model = build_static(space, arch)
            t0 = time.perf_counter()
            r = export_model(model, arch, space, "tflite", out, runs=args.runs,
                             tolerance=1e-4, rtol=0.0, strict=False)
            macs = yaml.safe_load(r.config_path.read_text())["macs"]
            rows.append({"space": name, "arch": tag, "arch_id": arch.arch_id,
                         "resolution": r.input_size, "max_abs_diff": r.max_abs_diff,
                         "ok_1e-4": r.max_abs_diff <= 1e-4,
                         "litert_ms": round(r.latency_ms, 3),
                         "converter_macs": macs["converter"], "graph_macs": macs["graph"],
                         "our_flops": macs["ours"], "macs_rel_diff": macs["rel_diff"],
                         "graph_macs_rel_diff": macs["graph_rel_diff"],
                         "macs_compared": macs.get("compared"),
                         "macs_within_3pct": macs["within_tolerance"],
                         "converter_within_3pct": macs.get("converter_within_tolerance"),
                         "export_s": round(time.perf_counter() - t0, 1),
                         "load_avg": round(os.getloadavg()[0], 2)})
            for f in Path(out).iterdir():  # keep the temp folder small
                f.unlink()
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            _write(args.out, {**meta, "finished": len(rows), "summary": _summary(rows),
                              "archs": rows})
    doc = {**meta, "finished": len(rows), "summary": _summary(rows), "archs": rows,
           "load_avg": [round(x, 2) for x in os.getloadavg()]}
    _write(args.out, doc)
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
