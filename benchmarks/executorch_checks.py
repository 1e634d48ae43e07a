"""The issue-24 ExecuTorch checks: lower min, max and N random archs of each space to ``.pte``.

For every arch (random-init weights, eval mode, at the arch's own resolution): the static model
is exported with ``torch.export``, lowered with the XNNPACK partitioner and written as ``.pte``
(``nas export --format executorch``); ``executorch.runtime`` runs the file, the max abs
difference of its logits to torch must be at most 1e-4, and the ops left outside the delegate
are listed (count per op name). Prints one JSON object (per-arch rows and a summary per space).
With ``--out`` the JSON file is rewritten after every arch and a rerun resumes where it stopped.

Usage: python benchmarks/executorch_checks.py [--spaces elasticvit,elasticvit_efficient,ofa_mbv3]
       [--n 10] [--no-max] [--runs 10] [--seed 0]
       [--out benchmarks/results/executorch_checks.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["space"] for r in rows):
        mine = [r for r in rows if r["space"] == name]
        ops: Counter[str] = Counter()
        for r in mine:
            ops.update(r["outside_delegate"])
        out[name] = {
            "n": len(mine), "archs": [r["arch"] for r in mine],
            "all_ok_1e-4": all(r["ok_1e-4"] for r in mine),
            "max_abs_diff": max(r["max_abs_diff"] for r in mine),
            "outside_delegate_ops_over_archs": dict(sorted(ops.items())),
            "median_executorch_ms": float(np.median([r["executorch_ms"] for r in mine]))}
    return out


def _write(path: Path | None, doc: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def _plan(spaces: str, n: int, seed: int, with_max: bool) -> list[tuple[str, str, Any, Any]]:
    """min of every space, then random0, max, random1, ... (a run cut short covers each space)."""
    from nasforge.search_spaces import get_space

    plan: list[list[tuple[str, str, Any, Any]]] = []
    for name in spaces.split(","):
        space = get_space(name)
        rng = np.random.default_rng(seed)
        randoms = [(f"random{i}", space.sample(rng)) for i in range(n)]
        archs = [("min", space.min_arch()), *randoms[:1]]
        if with_max:
            archs.append(("max", space.max_arch()))
        archs += randoms[1:]
        plan.append([(name, tag, space, arch) for tag, arch in archs])
    return [job for col in itertools.zip_longest(*plan) for job in col if job is not None]


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
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import yaml

    from nasforge.experiments import export_model
    from nasforge.supernet.static import build_static

    rows: list[dict[str, Any]] = []
    if args.out is not None and args.out.is_file():
        rows = json.loads(args.out.read_text()).get("archs", [])
    done = {(r["space"], r["arch_id"]) for r in rows}
    order = _plan(args.spaces, args.n, args.seed, not args.no_max)
    meta = {"command": "python benchmarks/executorch_checks.py " + " ".join(
        argv or sys.argv[1:]), "planned": len(order), "weights": "random init (seeded by torch "
        "default generator), eval mode", "input": "fixed_input(resolution, seed 0)"}
    with tempfile.TemporaryDirectory(prefix="nasforge-executorch-") as out:
        for name, tag, space, arch in order:
            if (name, arch.arch_id) in done:
                continue
            model = build_static(space, arch)
            t0 = time.perf_counter()
            r = export_model(model, arch, space, "executorch", out, runs=args.runs,
                             tolerance=1e-4, rtol=0.0, strict=False)
            deleg = yaml.safe_load(r.config_path.read_text())["delegation"]
            rows.append({"space": name, "arch": tag, "arch_id": arch.arch_id,
                         "resolution": r.input_size, "max_abs_diff": r.max_abs_diff,
                         "ok_1e-4": r.max_abs_diff <= 1e-4,
                         "executorch_ms": round(r.latency_ms, 3),
                         "outside_delegate": deleg["outside_delegate"],
                         "outside_delegate_total": deleg["outside_delegate_total"],
                         "delegate_calls": deleg["delegate_calls"],
                         "pte_bytes": deleg["pte_bytes"],
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
