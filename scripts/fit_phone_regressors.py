"""Refit the shipped phone devices from nn-Meter's measured tables.

Reads ``../shared/data/nnmeter_hybrid_lut/{pixel1,pixel4,pixel6,xiaomi11}_lut_ln_v3.json``
(nn-Meter (Microsoft), MIT; never copied into this repository), fits the per-family regressors
(XGBoost JSON), calibrates the analytical estimate, measures the regressors (whole-network error
against the table on random subnets; held-out keys), and writes
``nasforge/hardware_models/devices/<phone>/`` (``profile.json`` + ``regressors/``) and the
derived ``pixel7`` profile. Prints the figures as JSON.

Usage:
    python scripts/fit_phone_regressors.py [--data ../shared/data] [--n-archs 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from nasforge.hardware_models import SHIPPED_DIR
from nasforge.hardware_models import AnalyticEstimator
from nasforge.hardware_models import BlockRegressors
from nasforge.hardware_models import DeviceProfile
from nasforge.hardware_models import pixel7_derivation
from nasforge.hardware_models import read_table
from nasforge.hardware_models import regressor_report

REPO = Path(__file__).resolve().parents[1]
ATTRIBUTION = "nn-Meter (Microsoft), MIT: {file} (branch dev/hybrid-transformer)"
RUNTIME = "TFLite fp32, 1 thread, big CPU core (benchmark_model over adb, 10 warm-ups, 50 runs)"
PHONES = {
    "pixel1": "Google Pixel 1, Qualcomm Snapdragon 821 (Kryo big core)",
    "pixel4": "Google Pixel 4, Qualcomm Snapdragon 855 (Cortex-A76 based Kryo 485)",
    "pixel6": "Google Pixel 6, Google Tensor G1 (Cortex-X1 prime core at 2.80 GHz)",
    "xiaomi11": "Xiaomi Mi 11, Qualcomm Snapdragon 888 (Cortex-X1)",
}


def fit_phone(name: str, data: Path, n_archs: int, seed: int) -> dict[str, object]:
    """Fit, measure and write one phone; returns its figures."""
    path = data / "nnmeter_hybrid_lut" / f"{name}_lut_ln_v3.json"
    t0 = time.perf_counter()
    table = read_table(path, "nnmeter-hybrid").means
    regs = BlockRegressors.fit(table, seed=seed)
    fit_s = time.perf_counter() - t0
    report = regressor_report(table, space="elasticvit", n_archs=n_archs, seed=seed, full=regs)
    analytic = AnalyticEstimator.calibrate(table)
    folder = SHIPPED_DIR / name
    if (folder / "regressors").exists():
        shutil.rmtree(folder / "regressors")
    regs.save(folder / "regressors")
    DeviceProfile(
        name=name,
        hardware=PHONES[name],
        runtime=RUNTIME,
        provenance="predicted",
        spaces=["elasticvit", "elasticvit_efficient"],
        source=ATTRIBUTION.format(file=path.name),
        description=(
            f"Per-block-family regressors fitted on the {len(table)} measured entries of the "
            "nn-Meter hybrid table; linear/window attention and other spaces' blocks use the "
            "analytical estimate. `nas hw import` of the original table gives exact lookups."),
        regressors="regressors",
        analytic=analytic.to_dict(),
        errors=report,
        extra={"fit_seconds": round(fit_s, 2), "table_entries": len(table),
               "fit_script": "scripts/fit_phone_regressors.py"},
    ).save(folder)
    return {"device": name, "fit_s": round(fit_s, 2), **report,
            "analytic_calibration_median_rel_err": analytic.calibration["median_rel_err"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--n-archs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--devices", nargs="*", default=list(PHONES))
    args = ap.parse_args(argv)
    if not (args.data / "nnmeter_hybrid_lut").is_dir():
        print(f"error: {args.data}/nnmeter_hybrid_lut not found; pass --data", file=sys.stderr)
        return 2
    out = [fit_phone(n, args.data, args.n_archs, args.seed) for n in args.devices]
    pixel6 = DeviceProfile.load(SHIPPED_DIR / "pixel6")
    DeviceProfile(
        name="pixel7",
        hardware="Google Pixel 7, Google Tensor G2 (Cortex-X1 prime at 2.85 GHz, A78 middle at "
                 "2.35 GHz)",
        runtime=pixel6.runtime,
        provenance="derived",
        spaces=pixel6.spaces,
        source=f"derived from pixel6 ({pixel6.source})",
        description="pixel6's model times a clock / core-generation factor; see `derived`.",
        derived=pixel7_derivation(),
    ).save(SHIPPED_DIR / "pixel7")
    print(json.dumps({"devices": out, "pixel7": pixel7_derivation()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
