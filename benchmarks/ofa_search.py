"""Once-for-All's evolution search with OFA's own accuracy predictor and Note10 tables.

Setting (OFA's ``EvolutionFinder`` and tutorial): ``ofa_mbv3_w12`` at resolutions 160-224 step
16, population 100, 25 parents, 50 mutations + 50 crossovers per generation, mutation
probability 0.1, 500 generations; accuracy from OFA's pretrained ``acc_predictor.pth``
(imported with :func:`~nasforge.predictors.import_ofa_predictor`); latency from OFA's five
Note10 ``{160..224}_lookup_table.yaml`` files (``ofa-yaml``), merged into one table and imported
as device ``note10`` into a temporary cache. OFA's tables repeat the resolution-independent
layers (``Conv_2``, ``Logits``, ...) with slightly different means (< 0.02 ms); the merged table
keeps the first file's (160 px). The assets are not shipped: the script takes their paths.

Runs, each at ``--latency`` 20 / 25 / 30 ms for ``--seeds`` 0 1 2:

* ``library``: :func:`~nasforge.strategies.run_search` with no storage, on the space with OFA's
  five resolutions (the headline: predicted top-1, latency, CPU seconds of the search loop);
* with ``--cli``, also ``library_default_res`` (the same on the registered ``ofa_mbv3_w12``,
  resolutions 128-224 step 4, which is what ``nas search --space ofa_mbv3_w12`` searches) and
  ``cli``: ``nas search`` with that space, persisted in a fresh SQLite study, its ``--budget``
  the distinct candidates the library run evaluated (so both stop at the same point); its CPU
  seconds are the child process's (imports and writing the run folder included).

Prints JSON (one entry per run: ``top1``, ``latency_ms``, ``arch_id``, ``cpu_s``, ``evaluated``)
and writes it to ``--out`` when given.

Usage: ``python benchmarks/ofa_search.py /path/acc_predictor.pth [--tables DIR] [--cli]``
(``--tables`` defaults to the predictor's folder; ``PYTHONPATH`` selects the tree).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OFA_RESOLUTIONS = (160, 176, 192, 208, 224)
SPACE = "ofa_mbv3_w12"


def _setup(predictor_file: Path, tables: Path, work: Path) -> tuple[Any, Path]:
    """Import the Note10 tables as device ``note10`` and OFA's predictor; (model, pred dir)."""
    from nasforge.hardware_models import LatencyTable
    from nasforge.hardware_models import get_device
    from nasforge.hardware_models import import_table
    from nasforge.hardware_models import read_table
    from nasforge.predictors import import_ofa_predictor

    entries = {}
    for r in OFA_RESOLUTIONS:
        t = read_table(tables / f"{r}_lookup_table.yaml", "ofa-yaml")
        for k in t:
            entries.setdefault(k, t[k])
    LatencyTable(entries).write_csv(work / "note10.csv")
    import_table(work / "note10.csv", "csv", "note10", SPACE)
    pred_dir = import_ofa_predictor(predictor_file, work / "ofa_predictor", space=SPACE)
    return get_device("note10"), pred_dir


def _library(space: Any, pred_dir: Path, model: Any, latency: float, seed: int,
             generations: int) -> dict[str, Any]:
    from nasforge.evaluation import PredictorObjective
    from nasforge.predictors import BasePredictor
    from nasforge.strategies import EvolutionStrategy
    from nasforge.strategies import LatencyObjective
    from nasforge.strategies import SearchObjectives
    from nasforge.strategies import run_search

    pred = BasePredictor.load(pred_dir)
    objs = SearchObjectives([PredictorObjective(pred, space, name="top1"),
                             LatencyObjective(model, upper=latency)])
    strategy = EvolutionStrategy(space, objs, seed=seed)
    c0 = time.process_time()
    res = run_search(strategy, max_steps=generations + 1)
    cpu = time.process_time() - c0
    best = res.best
    return {"top1": best.values["top1"], "latency_ms": best.values["note10_ms"],
            "arch_id": best.arch.arch_id, "cpu_s": round(cpu, 3), "wall_s": round(res.seconds, 3),
            "asked": res.n_asked, "evaluated": res.n_evaluated}


def _cli(pred_dir: Path, latency: float, seed: int, budget: int, work: Path) -> dict[str, Any]:
    out = work / f"cli-{latency}-{seed}"
    cmd = [sys.executable, "-m", "nasforge.cli", "search", "--space", SPACE, "--predictor",
           str(pred_dir), "--device", "note10", "--latency", str(latency), "--budget",
           str(budget), "--seed", str(seed), "--out", str(out), "--quiet", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    summary = json.loads(proc.stdout)["summary"]
    best = summary.get("best") or {}
    return {"top1": best.get("accuracy"), "latency_ms": best.get("latency_ms"),
            "arch_id": best.get("arch_id"), "search_s": summary.get("seconds"),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3),
            "wall_s": round(wall, 3), "evaluated": summary.get("n_evaluated")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("predictor", type=Path, help="OFA's acc_predictor.pth")
    p.add_argument("--tables", type=Path, default=None,
                   help="folder of {160..224}_lookup_table.yaml (default: the predictor's)")
    p.add_argument("--latency", type=float, nargs="+", default=[20.0, 25.0, 30.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--generations", type=int, default=500)
    p.add_argument("--cli", action="store_true", help="also run `nas search` (SQLite)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nasforge_ofa_search_"))
    os.environ["NASFORGE_CACHE"] = str(work / "cache")

    from nasforge.search_spaces import get_space
    from nasforge.search_spaces._ofa_mbv3 import SPACE_CFGS
    from nasforge.search_spaces._ofa_mbv3 import OFAMobileNetV3Space

    model, pred_dir = _setup(args.predictor, args.tables or args.predictor.parent, work)
    ofa_space = OFAMobileNetV3Space(SPACE, cfg=dataclasses.replace(
        SPACE_CFGS[SPACE], resolutions=OFA_RESOLUTIONS))
    runs: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    for lat in args.latency:
        for seed in args.seeds:
            run = {"latency_budget_ms": lat, "seed": seed,
                   "library": _library(ofa_space, pred_dir, model, lat, seed, args.generations)}
            if args.cli:
                lib = _library(get_space(SPACE), pred_dir, model, lat, seed, args.generations)
                run["library_default_res"] = lib
                run["cli"] = _cli(pred_dir, lat, seed, lib["evaluated"], work)
                if "cpu_s" in run["cli"]:
                    run["cli_over_library_cpu"] = round(run["cli"]["cpu_s"] / lib["cpu_s"], 2)
            runs.append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
    lib_cpu = sorted(r["library"]["cpu_s"] for r in runs)
    out = {
        "setting": {"space": SPACE, "resolutions": OFA_RESOLUTIONS, "population": 100,
                    "parents": 25, "mutations": 50, "crossovers": 50, "mutation_prob": 0.1,
                    "generations": args.generations, "device": "note10 (OFA's tables)"},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_cores": os.cpu_count(),
        "library_cpu_s_median": lib_cpu[len(lib_cpu) // 2],
        "runs": runs,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
