"""``nas finetune`` on the main job's subnet (issue 24): top-1 before and after fine-tuning.

The main job (``nas search --space elasticvit --device pixel7 --latency 25``: the quick
supernet of elasticvit on ``digits``, trained once and cached) picks a subnet; this script
fine-tunes it with the shipped ``finetune_quick`` recipe, with distillation from the supernet's
largest subnet and with plain labels, and quotes the subnet's top-1 on the validation split
with the inherited weights and with the fine-tuned ones. Both are the same evaluation
(:func:`nasforge.supernet.evaluate.evaluate_subnet`: BN recalibrated on the same 8 training
batches, the same held-out images at the subnet's own size); the validation images are never
trained on (the fine-tuning run keeps the supernet's split).

Run (the search takes minutes the first time: it trains the quick supernet):
    python benchmarks/finetune_quick.py [--arch best.yaml --supernet CKPT] [--out DIR]

Prints one JSON object (benchmarks/results/finetune_quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _search(out: Path) -> tuple[Path, Path]:
    """The main job: its best subnet and the quick supernet checkpoint it used."""
    from nasforge._paths import cache_dir
    from nasforge.cli import app
    from nasforge.cli._common import run_app

    rc = run_app(app, ["search", "--space", "elasticvit", "--device", "pixel7", "--latency",
                       "25", "--out", str(out)])
    if rc != 0:
        sys.exit(f"nas search failed with exit code {rc}")
    ckpts = sorted((cache_dir() / "supernets").glob("elasticvit-*/last.ckpt"),
                   key=lambda p: p.stat().st_mtime)
    return out / "best.yaml", ckpts[-1]


def _finetune(arch: Path, supernet: Path, out: Path, distill: bool) -> dict[str, object]:
    from nasforge.experiments.export import load_arch_config
    from nasforge.supernet.training import finetune as ft

    recipe = ft.load_finetune_recipe("finetune_quick").with_overrides(distill=distill)
    cfg = load_arch_config(arch)
    job = ft.FinetuneJob(cfg.arch.to_dict(), supernet, recipe.to_dict(), out,
                         accelerator="cpu")
    ft.check_finetune_job(job)
    t0 = time.perf_counter()
    o = ft.launch_finetune(job)
    assert o is not None
    return {"distill": distill, "steps": o.step, "top1_inherited": round(o.inherited_top1, 4),
            "top1_finetuned": round(o.top1, 4),
            "gain_points": round(100 * (o.top1 - o.inherited_top1), 2),
            "val_images": o.num_val, "input_size_px": o.input_size,
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", type=Path, help="the subnet (default: run the main job)")
    ap.add_argument("--supernet", type=Path, help="its supernet (default: the quick one)")
    ap.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--runs", default="distill,labels",
                    help="which runs, in order: distill (from the largest subnet), labels")
    args = ap.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="finetune_quick_"))
    arch, supernet = args.arch, args.supernet
    if arch is None or supernet is None:
        arch, supernet = _search(work / "search")
    from nasforge.experiments.export import load_arch_config

    a = load_arch_config(arch).arch
    runs: list[dict[str, object]] = []
    for name in args.runs.split(","):
        runs.append(_finetune(arch, supernet, work / f"ft_{name}", name == "distill"))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)  # each run as it ends
    print(json.dumps({
        "benchmark": "finetune_quick", "issue": 24,
        "command": "python benchmarks/finetune_quick.py",
        "subnet": {"arch_id": a.arch_id, "arch": a.to_dict(),
                   "from": "nas search --space elasticvit --device pixel7 --latency 25"},
        "supernet": "the quick supernet (recipe quick: elasticvit on digits, 160 steps)",
        "recipe": "finetune_quick", "evaluation": "evaluate_subnet: BN recalibrated on 8 "
        "training batches, top-1 on the held-out validation split at the subnet's own size",
        "runs": runs, "machine": f"{platform.machine()}, {os.cpu_count()} cores, busy (8 "
        "helpers share 2 cores): seconds are not comparable",
    }, indent=2))


if __name__ == "__main__":
    main()
