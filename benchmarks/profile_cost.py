"""What profiling a space's block set with LiteRT costs: conversion vs measurement, cold vs cached.

Runs ``profile_device(backend="litert")`` in a temporary ``$NASFORGE_CACHE`` twice:

* ``cold``: empty ``.tflite`` cache -- every block is converted (``litert-torch``) and timed;
  ``convert_s`` is the conversions' own wall time (the ``convert_s`` each cached file records,
  summed; with ``--jobs 1`` they run in this process, one after the other), ``measure_s`` the rest;
* ``cached``: the device folder removed, the converted files kept -- the same blocks are timed
  again with no conversion.

Prints one JSON object. The whole block set of a space is ``--budget 400`` (the default of
``nas profile``); the machine this was written on is shared, so the committed figures used a
reduced ``--budget`` (the JSON says which).

Usage: python benchmarks/profile_cost.py [--space elasticvit] [--budget 24] [--jobs 1]
       [--repeats 15] [--networks 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="elasticvit")
    ap.add_argument("--budget", type=int, default=24)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--networks", type=int, default=0)
    ap.add_argument("--n-archs", type=int, default=200)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="nasforge-profile-cost-") as tmp:
        os.environ["NASFORGE_CACHE"] = tmp
        from nasforge.hardware_models.profiling import profile_device

        kw = {"backend": "litert", "budget": args.budget, "seed_blocks": args.budget,
              "n_networks": args.networks, "repeats": args.repeats, "workers": args.jobs,
              "n_archs": args.n_archs}
        t0 = time.perf_counter()
        prof = profile_device("cpu-local", args.space, **kw)  # type: ignore[arg-type]
        cold = time.perf_counter() - t0
        metas = [json.loads(p.read_text()) for p in (Path(tmp) / "tflite").glob("*.json")]
        convert_s = sum(float(m["convert_s"]) for m in metas)
        assert prof.folder is not None
        shutil.rmtree(prof.folder)
        t0 = time.perf_counter()
        profile_device("cpu-local", args.space, **kw)  # type: ignore[arg-type]
        cached = time.perf_counter() - t0
    n = len(metas)
    print(json.dumps({
        "space": args.space, "backend": "litert", "blocks": args.budget, "networks": args.networks,
        "converted_files": n, "jobs": args.jobs, "repeats": args.repeats,
        "cold": {"wall_s": round(cold, 1), "convert_s": round(convert_s, 1),
                 "measure_s": round(cold - convert_s, 1),
                 "convert_s_per_file": round(convert_s / max(n, 1), 2)},
        "cached": {"wall_s": round(cached, 1)},
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "runtime": prof.runtime, "hardware": prof.hardware,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
