"""Latency-model figures: predict_many throughput and the shipped regressors' errors (JSON).

* ``archs_per_s``: ``predict_many`` on a table-backed device (pixel6 with its nn-Meter table
  imported into a temporary cache), warm (segment caches filled) and cold (first call), on
  one Python thread;
* per shipped phone: whole-network error of the regressors against the table sum on 1,000
  random ``elasticvit`` subnets (share within +-2 %), and the held-out-key figures stored in
  the device profile (refit with 20 % of each family's keys held out).

Usage: python benchmarks/latency_predict.py [--n 1000] [--n-speed 20000]
Needs ../shared/data/nnmeter_hybrid_lut (nn-Meter (Microsoft), MIT).
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
LUT = REPO.parent / "shared" / "data" / "nnmeter_hybrid_lut"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="latency-model benchmark")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--n-speed", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not LUT.is_dir():
        print(json.dumps({"error": f"{LUT} not found"}))
        return 2
    os.environ["NASFORGE_CACHE"] = tempfile.mkdtemp(prefix="nasforge-bench-")
    from nasforge.hardware_models import device_profile
    from nasforge.hardware_models import get_device
    from nasforge.hardware_models import get_key_scheme
    from nasforge.hardware_models import import_table
    from nasforge.search_spaces import get_space

    space, scheme = get_space("elasticvit"), get_key_scheme("elasticvit")
    rng = np.random.default_rng(args.seed)
    out: dict[str, object] = {"load_avg_1min": os.getloadavg()[0]}

    import_table(LUT / "pixel6_lut_ln_v3.json", "nnmeter-hybrid", "pixel6", "elasticvit")
    model = get_device("pixel6")
    archs = [space.sample(rng) for _ in range(args.n_speed)]
    t = time.perf_counter()
    model.predict_many(archs)
    cold = time.perf_counter() - t
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        model.predict_many(archs)
        best = min(best, time.perf_counter() - t)
    out["table_backed"] = {"device": "pixel6 (imported table)", "n": len(archs),
                           "archs_per_s": len(archs) / best,
                           "cold_archs_per_s": len(archs) / cold}
    out["archs_per_s"] = len(archs) / best

    phones = {}
    sample = [space.sample(rng) for _ in range(args.n)]
    keys = [scheme.keys(space.blocks(a)) for a in sample]
    for name in ("pixel1", "pixel4", "pixel6", "xiaomi11"):
        table = json.loads((LUT / f"{name}_lut_ln_v3.json").read_text())
        truth = np.asarray([sum(table[k] for k in ks) for ks in keys])
        os.environ["NASFORGE_CACHE"] = tempfile.mkdtemp(prefix="nasforge-bench-")  # no overlay
        m = get_device(name)
        t = time.perf_counter()
        pred = m.predict_many(sample)
        dt = time.perf_counter() - t
        rel = np.abs(pred / truth - 1)
        prof = device_profile(name)
        phones[name] = {
            "provenance": m.provenance,
            "n_archs": len(sample),
            "within_2pct": float(np.mean(rel <= 0.02)),
            "max_abs_rel_err": float(rel.max()),
            "cold_archs_per_s": len(sample) / dt,
            "holdout": prof.errors.get("holdout"),
            "analytic_calibration_median_rel_err":
                (prof.analytic or {}).get("calibration", {}).get("median_rel_err"),
        }
    out["regressors"] = phones
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
