"""The fusion rule with and without its weights term, judged on the same ``nas hw validate`` run.

Both rules are fitted the way ``nas profile`` fits them (:func:`~nasforge.hardware_models.
_fusion.fit_fusion`, form chosen by leave-one-out) on the device's own fusion networks (drawn
from the profile's stream, never validate's), once with the forms of before (no weights) and
once with all forms; each then predicts the validated subnets, whose measured latencies come
from ``validate.json``. Nothing is re-measured, so the two rules are compared on identical
measurements.

Usage: python benchmarks/fusion_forms.py DEVICE_FOLDER VALIDATE_JSON [--out results.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("device", type=Path, help="a profiled device folder (profile.json, ...)")
    ap.add_argument("validate", type=Path, help="the validate.json of `nas hw validate`")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    from nasforge.hardware_models._fusion import fit_fusion
    from nasforge.hardware_models._local import load_profiled
    from nasforge.hardware_models._model import BlockSumLatencyModel
    from nasforge.hardware_models.profiling._validate import latency_metrics
    from nasforge.search_spaces.block import total_params
    from nasforge.search_spaces.registry import get_space

    stored = load_profiled(args.device)
    bare = BlockSumLatencyModel(stored.profile, table=stored.table,
                                regressors=stored.regressors, keying="block")
    fused = set(stored.profile.extra["fusion"]["networks"])
    with (args.device / "networks.csv").open(newline="") as f:
        nets = [r for r in csv.DictReader(f) if r["arch_id"] in fused]
    fit_archs = [get_space(r["space"]).arch_from_dict(json.loads(r["arch"])) for r in nets]
    val = json.loads(args.validate.read_text())
    space = get_space(val["space"])
    val_archs = [space.arch_from_dict(r["arch"]) for r in val["subnets"]]
    measured = np.array([r["measured_ms"] for r in val["subnets"]])

    def features(archs: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        blocks = [get_space(a.space).blocks(a) for a in archs]
        return (bare.predict_many(archs), np.array([len(b) for b in blocks], dtype=float),
                np.array([total_params(b) / 1e6 for b in blocks]))

    s, n, w = features(fit_archs)
    y = [float(r["ms"]) for r in nets]
    rules = {"without_weights": fit_fusion(s.tolist(), n.tolist(), y),
             "with_weights": fit_fusion(s.tolist(), n.tolist(), y, w.tolist())}
    vs, vn, vw = features(val_archs)
    out: dict[str, Any] = {"benchmark": "fusion_forms", "device": str(args.device.name),
                           "validate": str(args.validate), "fusion_networks": len(nets),
                           "load_avg_validate": val.get("load_avg_before")}
    for name, f in rules.items():
        pred = _predict(f, vs, vn, vw)
        out[name] = {"rule": f.to_dict(), **latency_metrics(pred.tolist(), measured.tolist())}
    stored_pred = np.array([r["predicted_ms"] for r in val["subnets"]])
    out["stored_rule_reproduced"] = bool(np.allclose(stored_pred, _predict(stored.fusion, vs,
                                                                           vn, vw)))
    text = json.dumps(out, indent=1)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0


def _predict(f: Any, s: np.ndarray, n: np.ndarray, w: np.ndarray) -> np.ndarray:
    return f.per_network_ms + f.per_block_ms * n + f.scale * s + f.per_mparam_ms * w


if __name__ == "__main__":
    sys.exit(main())
