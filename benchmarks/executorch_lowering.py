"""Lowering time and delegate partitions of ExecuTorch programs, as exported vs prepared.

For each (space, arch) -- min of every space and max of ``elasticvit`` by default -- the static
model (random init, eval) is lowered with the XNNPACK partitioner twice, each in a fresh
process so that no cache helps the second: ``before`` lowers the graph as ``torch.export``
gives it (``lower_module(..., prepare=False)``), ``after`` prepares it first (LayerNorm from
delegable ops, weights-only subgraphs folded, no-op expands dropped, provenance forgotten;
:mod:`nasforge.hardware_models.profiling._executorch_prep`). Each row: lowering seconds,
delegate calls, ops outside the delegate, ``.pte`` bytes, the max abs difference of the
program's logits (executorch.runtime) to torch, and the load average. Lowering is
single-threaded Python, so its CPU seconds (``lower_cpu_s``) are the figure to compare on a
busy machine; wall seconds (``lower_s``) grow with the load. Prints one JSON object
with per-arch ``before / after`` ratios.

Usage: python benchmarks/executorch_lowering.py [--archs elasticvit:min,elasticvit:max,...]
       [--out benchmarks/results/executorch_lowering.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT = "elasticvit:min,elasticvit_efficient:min,ofa_mbv3:min,elasticvit:max"


def _one(space_name: str, which: str, prepare: bool) -> dict[str, Any]:
    """Lower one arch in this process and check the program against torch."""
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    from nasforge.experiments.export.checks import fixed_input
    from nasforge.hardware_models.profiling._executorch import lower_module
    from nasforge.hardware_models.profiling._executorch import method_call
    from nasforge.search_spaces import get_space
    from nasforge.supernet.static import build_static

    space = get_space(space_name)
    arch = space.min_arch() if which == "min" else space.max_arch()
    torch.manual_seed(0)
    model = build_static(space, arch).eval()
    x = fixed_input(arch.resolution, 0)
    with torch.no_grad():
        ref = model(x).numpy()
    load = os.getloadavg()[0]
    cpu0 = time.process_time()
    low = lower_module(model, (x,), name=f"{space_name}:{which}", prepare=prepare)
    cpu_s = time.process_time() - cpu0
    _, run = method_call(low.content)
    return {"space": space_name, "arch": which, "arch_id": arch.arch_id,
            "resolution": arch.resolution, "lowering": "after" if prepare else "before",
            "lower_s": round(low.seconds, 2), "lower_cpu_s": round(cpu_s, 2),
            "delegate_calls": low.delegates,
            "outside_delegate": low.outside,
            "outside_delegate_total": int(sum(low.outside.values())),
            "pte_bytes": len(low.content),
            "max_abs_diff": float(np.abs(run(x.numpy()) - ref).max()),
            "load_avg_start": round(load, 2), "load_avg_end": round(os.getloadavg()[0], 2)}


def _in_child(space: str, which: str, prepare: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", f"{space}:{which}:{int(prepare)}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default=DEFAULT, help="space:min|max, comma separated")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        space, which, prep = args.one.split(":")
        print(json.dumps(_one(space, which, prep == "1")))
        return 0
    rows, ratios = [], {}
    for job in args.archs.split(","):
        space, which = job.split(":")
        pair = {}
        for prepare in (False, True):  # before, then after, back to back
            pair[prepare] = _in_child(space, which, prepare)
            rows.append(pair[prepare])
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        ratios[job] = {
            "lower_s_before_over_after": round(pair[False]["lower_s"] / pair[True]["lower_s"], 2),
            "lower_cpu_s_before_over_after": round(
                pair[False]["lower_cpu_s"] / pair[True]["lower_cpu_s"], 2),
            "delegate_calls": [pair[False]["delegate_calls"], pair[True]["delegate_calls"]],
            "outside_delegate_total": [pair[False]["outside_delegate_total"],
                                       pair[True]["outside_delegate_total"]]}
    doc = {"command": "python benchmarks/executorch_lowering.py " + " ".join(
        argv if argv is not None else sys.argv[1:]),
        "note": "each lowering in a fresh process; weights random (torch seed 0); the machine "
                "may be shared: compare before/after of one arch (taken back to back)",
        "ratios": ratios, "rows": rows}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
