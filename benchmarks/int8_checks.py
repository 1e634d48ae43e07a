"""int8 against fp32 (issue 24): file size, top-1 and latency of post-training int8 exports.

For the min, max and ``--random`` random archs of each space, the subnet is exported four
times (``tflite`` / ``tflite-int8`` with LiteRT, ``executorch`` / ``executorch-int8`` with
ExecuTorch's XNNPACK delegate), each file run back on its runtime on this machine: its size,
its median latency (1 thread) and its top-1 on the validation split of the quick data
(``digits``, one image at a time at the deployment shape). The int8 files are calibrated on
``--calib-batches`` x 8 training images. Ratios int8 / fp32 and the top-1 change (points) are
per runtime; the latency ratio comes from timing an arch's four files again in ``--rounds``
alternating rounds (``latency_interleaved_ms``), so that fp32 and int8 share the machine's load.

Weights: ``elasticvit`` subnets come from the quick supernet (``--supernet``, default the
cached one; BN recalibrated, input at the subnet's quick size resolution / 8 px), so their top-1
means something; ``elasticvit_efficient`` and ``ofa_mbv3`` have no quick supernet, so they are
randomly initialised (torch seed 0, 10 classes, 32 px input): their top-1 is chance and only
the agreement of int8 with fp32 (``top1_change``, ``max_abs_diff``) and the size / latency
ratios mean something.

Run:
    python benchmarks/int8_checks.py [--spaces elasticvit,ofa_mbv3] [--random 10]
        [--archs min,max] [--only SPACE:KIND,...] [--json benchmarks/results/int8_checks.json]

The archs run round-robin over the spaces (min of each space, then random0, max, random1,
...), so a run cut short has measured every space alike. Prints one JSON object, also written
to ``--json`` after every export; an existing ``--json`` is resumed.

Per int8 file: ``max_abs_diff`` against the PT2E program run in PyTorch (the check, allowed
``tolerance`` = ``INT8_STEPS`` output quantization steps), ``diff_in_output_steps``,
``max_abs_diff_to_fp32`` (the accuracy cost on the check's input, not an error),
``ops_left_fp32`` (ops the quantizer left in float32) and, for ExecuTorch,
``outside_delegate``.
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
from typing import Any

import numpy as np
import torch

FORMATS = ("tflite", "tflite-int8", "executorch", "executorch-int8")


def _weights(space: Any, arch: Any, supernet: Path | None) -> tuple[Any, Any, int, str]:
    """``(fp32 model, data, input size, where the weights come from)``."""
    from nasforge.data import LoaderConfig
    from nasforge.data import open_data
    from nasforge.experiments.export import extract_subnet
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import read_checkpoint
    from nasforge.supernet.static import build_static

    if space.name == "elasticvit" and supernet is not None:
        data = RunConfig.from_checkpoint(read_checkpoint(supernet)).open_data(workers=0)
        model, _ = extract_subnet(supernet, arch, calib_batches=8)
        return model, data, data.eval_size(arch.resolution), "quick supernet"
    torch.manual_seed(0)
    model = build_static(space, arch, num_classes=10).eval()
    return model, open_data("digits", 32, 0, loader=LoaderConfig(workers=0)), 32, "random init"


def _one(fmt_name: str, model: Any, arch: Any, space: Any, data: Any, size: int, out: Path,
         args: argparse.Namespace) -> dict[str, Any]:
    from nasforge.experiments import EXPORT_FORMATS
    from nasforge.experiments import export_model
    from nasforge.experiments.export._executorch import delegation_report
    from nasforge.experiments.export._int8 import Int8Format
    from nasforge.experiments.export._int8 import int8_tolerance
    from nasforge.experiments.export._quantize import calibration_images
    from nasforge.experiments.export._quantize import quantize_pt2e
    from nasforge.experiments.export._quantize import top1
    from nasforge.experiments.export.checks import fixed_input
    from nasforge.experiments.export.checks import max_abs_diff

    fmt = EXPORT_FORMATS.get(fmt_name)
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    try:
        module, atol, rtol = model, 1e-4, 1e-5
        if isinstance(fmt, Int8Format):
            images = calibration_images(data, size, args.calib_batches)
            module = quantize_pt2e(model, fixed_input(size), images, fmt.quantizer(),
                                   fold_quantize=fmt.fold_quantize)
            atol, rtol = int8_tolerance(module.calibration)
            extra = {k: module.calibration[k] for k in ("output_step", "ops_left_fp32",
                                                        "folded_batchnorms")}
        r = export_model(module, arch, space, fmt_name, out, input_size=size,
                         name=f"{space.name}_{arch.arch_id}_{fmt_name}", runs=args.runs,
                         tolerance=atol, rtol=rtol, strict=False)
        run = fmt.load(r.model_path, lambda: model, 1)
        if extra:  # the accuracy cost on the check's input: the file against fp32
            x = fixed_input(size)
            with torch.no_grad():
                to_fp32 = max_abs_diff(run(x.numpy()), model(x).numpy())
            extra["max_abs_diff_to_fp32"] = float(f"{to_fp32:.3e}")
            if extra["output_step"]:
                extra["diff_in_output_steps"] = round(r.max_abs_diff / extra["output_step"], 1)
        if fmt.suffix == ".pte":
            extra["outside_delegate"] = delegation_report(r.model_path).get("outside_delegate")
        acc, n = top1(run, data, size, args.val_images)
    except Exception as e:  # one failing export is a result, not the end of the run
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:240]}",
                "seconds": round(time.perf_counter() - t0, 1)}
    return {"bytes": r.model_path.stat().st_size, "latency_ms": round(r.latency_ms, 3),
            "max_abs_diff": float(f"{r.max_abs_diff:.3e}"), "tolerance":
            float(f"{r.tolerance:.3e}"), "check_ok": r.ok, "top1": round(acc, 4),
            "val_images": n, **extra, "seconds": round(time.perf_counter() - t0, 1)}


def _ratios(rows: dict[str, dict[str, Any]], interleaved: dict[str, float] | None = None
            ) -> dict[str, Any]:
    """int8 / fp32 per runtime; the latency from the interleaved timing when there is one."""
    out: dict[str, Any] = {}
    for runtime, fp32, int8 in (("litert", "tflite", "tflite-int8"),
                                ("executorch", "executorch", "executorch-int8")):
        a, b = rows.get(fp32, {}), rows.get(int8, {})
        if "bytes" in a and "bytes" in b:
            ms = interleaved if interleaved and fp32 in interleaved and int8 in interleaved \
                else {fp32: a["latency_ms"], int8: b["latency_ms"]}
            out[runtime] = {"size_ratio": round(b["bytes"] / a["bytes"], 4),
                            "latency_ratio": round(ms[int8] / ms[fp32], 3),
                            "top1_change_points": round(100 * (b["top1"] - a["top1"]), 2)}
    return out


def _interleaved_ms(entry: dict[str, Any], work: Path, rounds: int, runs: int
                    ) -> dict[str, float]:
    """Median latency (ms, 1 thread) of each written file, timed in alternating rounds of
    ``runs`` calls, so that fp32 and int8 see the same machine load (it is busy)."""
    from nasforge.experiments import EXPORT_FORMATS
    from nasforge.experiments.export.checks import fixed_input
    from nasforge.experiments.export.checks import median_latency_ms

    runners = {}
    for f, row in entry["formats"].items():
        fmt = EXPORT_FORMATS.get(f)
        path = work / f"{entry['space']}_{entry['arch_id']}_{f}{fmt.suffix}"
        if "bytes" in row and path.is_file():
            runners[f] = fmt.load(path, lambda: None, 1)
    x = fixed_input(entry["input_size"]).numpy()
    times: dict[str, list[float]] = {f: [] for f in runners}
    for _ in range(rounds):
        for f, run in runners.items():
            times[f].append(median_latency_ms(run, x, runs=runs, warmup=2))
    return {f: round(float(np.median(t)), 4) for f, t in times.items()}


def _summary(report: dict[str, Any], planned: list[tuple[str, str]]) -> dict[str, Any]:
    """Per runtime over the measured archs: exports that ran, checks passed, the errors (first
    lines), the ranges of the ratios and of the top-1 change; and the archs not reached."""
    out: dict[str, Any] = {}
    for runtime, fmt in (("litert", "tflite-int8"), ("executorch", "executorch-int8")):
        rows = [(a, a["formats"][fmt]) for a in report["archs"] if fmt in a["formats"]]
        ratios = [a.get("int8_vs_fp32", {}).get(runtime) for a, _ in rows]
        ratios = [r for r in ratios if r]
        span = {k: [min(r[k] for r in ratios), round(float(np.median([r[k] for r in ratios])), 4),
                    max(r[k] for r in ratios)] for k in ("size_ratio", "latency_ratio",
                                                         "top1_change_points")} if ratios else {}
        out[runtime] = {
            "int8_exports": len(rows), "ran": sum("error" not in r for _, r in rows),
            "check_ok": sum(bool(r.get("check_ok")) for _, r in rows),
            "check_failed": [f"{a['space']} {a['kind']}: {r['diff_in_output_steps']} steps"
                             for a, r in rows if r.get("check_ok") is False],
            "errors": [f"{a['space']} {a['kind']}: {r['error']}" for a, r in rows
                       if "error" in r],
            "min_median_max": span}
    seen = {(a["space"], a["kind"]) for a in report["archs"]}
    out["not_measured"] = [f"{s} {k}" for s, k in planned if (s, k) not in seen]
    return out


def _retime(entry: dict[str, Any], work: Path, args: argparse.Namespace) -> None:
    """Interleaved latencies of an arch's files into ``entry`` and its ratios."""
    ms = _interleaved_ms(entry, work, args.rounds, args.runs)
    if ms:
        entry["latency_interleaved_ms"] = ms
        entry["int8_vs_fp32"] = _ratios(entry["formats"], ms)


def _picks(spaces: list[str], archs: list[str], n_random: int) -> list[tuple[Any, str, Any]]:
    """``(space, kind, arch)`` round-robin over the spaces: min, random0, max, random1, ..."""
    from nasforge.search_spaces import get_space

    order = ["min", "random0", "max", *(f"random{i}" for i in range(1, n_random))]
    kinds = [k for k in order if k in archs or (k.startswith("random")
                                                 and int(k[6:]) < n_random)]
    per_space = {}
    for name in spaces:
        space = get_space(name)
        rng = np.random.default_rng(0)
        randoms = [space.sample(rng) for _ in range(n_random)]
        per_space[name] = (space, {"min": space.min_arch(), "max": space.max_arch(),
                                   **{f"random{i}": a for i, a in enumerate(randoms)}})
    return [(per_space[n][0], k, per_space[n][1][k]) for k in kinds for n in spaces]


def main() -> None:
    from nasforge._paths import cache_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default="elasticvit,elasticvit_efficient,ofa_mbv3")
    ap.add_argument("--archs", default="min,max", help="min, max (comma-separated)")
    ap.add_argument("--random", type=int, default=10, help="random archs per space (seeded)")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--only", default="", help="only these archs, comma-separated "
                    "space:kind (e.g. elasticvit:random0,elasticvit_efficient:max)")
    ap.add_argument("--supernet", type=Path, help="quick elasticvit supernet (default: cached)")
    ap.add_argument("--calib-batches", type=int, default=4)
    ap.add_argument("--val-images", type=int, default=180)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--work", type=Path, help="folder of the written files (default: a "
                    "fresh temporary one); --retime re-reads it")
    ap.add_argument("--retime", action="store_true", help="time the files of the archs in "
                    "--json again, interleaved, where --work still holds them")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--summarize", action="store_true",
                    help="only add the summary to the existing --json (measure nothing)")
    ap.add_argument("--json", type=Path, help="written after every arch; an existing file is "
                    "resumed (its rows without an error are kept, not measured again)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    supernet = args.supernet or next(iter(sorted(
        (cache_dir() / "supernets").glob("elasticvit-*/last.ckpt"))), None)
    work = args.work or Path(tempfile.mkdtemp(prefix="int8_checks_"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "int8_checks", "issue": 24, "command": " ".join(["python", *sys.argv]),
        "weights": {"elasticvit": "quick supernet (digits), input resolution / 8 px",
                    "others": "random init (seed 0), 32 px: top-1 is chance; the change "
                    "and the ratios are what mean something"},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, BUSY (shared by 4 "
                   "sessions): latency ratios are indicative only; re-measure idle",
        "threads": 1, "archs": []}
    if args.json is not None and args.json.is_file():
        report["archs"] = json.loads(args.json.read_text())["archs"]
    done = {(a["space"], a["kind"]): a for a in report["archs"]}
    picks = _picks(args.spaces.split(","), args.archs.split(","), args.random)
    if args.only:
        wanted = set(args.only.split(","))
        picks = [p for p in picks if f"{p[0].name}:{p[1]}" in wanted]
    planned = [(space.name, kind) for space, kind, _ in picks]
    for entry in report["archs"] if args.retime else []:
        _retime(entry, work, args)
    for space, kind, arch in [] if args.summarize else picks:
        entry = done.get((space.name, kind))
        todo = [f for f in args.formats.split(",") if entry is None
                or "error" in entry["formats"].get(f, {"error": "not run"})]
        if not todo:
            continue
        model, data, size, source = _weights(space, arch, supernet)
        if entry is None:
            entry = {"space": space.name, "kind": kind, "arch_id": arch.arch_id,
                     "mflops": round(space.flops(arch) / 1e6, 1), "weights": source,
                     "input_size": size, "formats": {}}
            report["archs"].append(entry)
            done[(space.name, kind)] = entry
        for f in todo:
            entry["formats"][f] = _one(f, model, arch, space, data, size, work, args)
            entry["int8_vs_fp32"] = _ratios(entry["formats"])
            if args.json is not None:
                args.json.write_text(json.dumps(report, indent=2) + "\n")
        _retime(entry, work, args)
        print(json.dumps(entry), file=sys.stderr, flush=True)
    report["summary"] = _summary(report, planned)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
