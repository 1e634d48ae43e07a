"""The issue-12 TFLite checks: export min, max and N random archs of each space as ``.tflite``.

For every arch: LiteRT runs the file, the max abs difference of its logits to torch (eval mode,
random input, at the arch's own resolution) must be at most 1e-4, and the converter's MAC count
must be within 3 % of our ``flops``. Prints one JSON object (per-arch rows and a summary per
space). A whole subnet converts in tens of seconds on one core, so the full run (``--n 10``, 36
archs) takes most of an hour on an idle machine; ``--n 0 --no-max`` is the quick version.

Usage: python benchmarks/tflite_checks.py [--spaces elasticvit,elasticvit_efficient,ofa_mbv3]
       [--n 10] [--no-max] [--runs 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default="elasticvit,elasticvit_efficient,ofa_mbv3")
    ap.add_argument("--n", type=int, default=10, help="random archs per space")
    ap.add_argument("--no-max", action="store_true", help="skip the max arch (slowest)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import yaml

    from nasforge.experiments import export_model
    from nasforge.search_spaces import get_space

    rows, summary = [], {}
    with tempfile.TemporaryDirectory(prefix="nasforge-tflite-") as out:
        for name in args.spaces.split(","):
            space = get_space(name)
            rng = np.random.default_rng(args.seed)
            archs = [("min", space.min_arch())]
            if not args.no_max:
                archs.append(("max", space.max_arch()))
            archs += [(f"random{i}", space.sample(rng)) for i in range(args.n)]
            for tag, arch in archs:
                model = space.build_model(arch)
                t0 = time.perf_counter()
                r = export_model(model, arch, space, "tflite", out, runs=args.runs,
                                 tolerance=1e-4, rtol=0.0, strict=False)
                macs = yaml.safe_load(r.config_path.read_text())["macs"]
                rows.append({"space": name, "arch": tag, "arch_id": arch.arch_id,
                             "resolution": r.input_size, "max_abs_diff": r.max_abs_diff,
                             "ok_1e-4": r.max_abs_diff <= 1e-4,
                             "litert_ms": round(r.latency_ms, 3),
                             "converter_macs": macs["converter"], "our_flops": macs["ours"],
                             "macs_rel_diff": macs["rel_diff"], "graph_macs": macs["graph"],
                             "graph_macs_rel_diff": macs["graph_rel_diff"],
                             "macs_within_3pct": macs["within_tolerance"],
                             "export_s": round(time.perf_counter() - t0, 1)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            mine = [r for r in rows if r["space"] == name]
            summary[name] = {
                "n": len(mine), "all_ok_1e-4": all(r["ok_1e-4"] for r in mine),
                "max_abs_diff": max(r["max_abs_diff"] for r in mine),
                "all_macs_within_3pct": all(bool(r["macs_within_3pct"]) for r in mine),
                "max_abs_macs_rel_diff": max(abs(r["macs_rel_diff"] or 0.0) for r in mine),
                "max_abs_graph_macs_rel_diff": max(abs(r["graph_macs_rel_diff"] or 0.0)
                                                   for r in mine)}
    print(json.dumps({"summary": summary, "archs": rows,
                      "load_avg": [round(x, 2) for x in os.getloadavg()]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
