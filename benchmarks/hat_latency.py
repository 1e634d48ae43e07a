"""nasforge's HAT latency model beside HAT's own predictor recipe, per HAT latency CSV (issue 23).

For each of HAT's 8 CSVs (``../shared/data/hat_latency/``), one seeded random split (20% held
out, seed 0 by default) and on it:

* ``nasforge``: the encoder + decoder parts model (``nasforge.hardware_models._hat_csv``,
  linear in per-layer MACs, fitted on the 80% by the L1 relative-error fit);
* ``hat``: HAT's recipe re-implemented from its ``latency_predictor.py`` and
  ``configs/*/latency_predictor/*.yml``: features divided by ``[640, 6, 2048, 6, 640, 6, 2048,
  6, 6, 2]``, target (encoder + decoder ms) divided by the device's ``lat-norm`` (Raspberry Pi
  5000, Xeon 300, TITAN Xp 200), an MLP 10 -> 400 -> 3 x (400 -> 400) -> 1 with ReLU, Adam
  lr 1e-5, 5,000 steps of 128 rows drawn without replacement, MSE (torch, one thread). HAT
  trains on 80% of its shuffled rows too (its 10% validation slice only prints a loss).

Figures per CSV: MAPE, RMSE (ms), Spearman on the held-out rows, and the drift statistic (lag-1
autocorrelation of nasforge's out-of-fold residuals in row order) with whether it warns.

``--published DIR``: HAT's published SubTransformers (``configs/*/subtransformer/HAT_*.yml`` of
mit-han-lab/hardware-aware-transformers, not shipped: pass a folder holding them), never fitted
on, predicted by the model fitted on all rows of their task's and device's CSV (what ``nas hw
import`` stores) and compared with the latency in their file name (``@3.5s``: the latency HAT
reports for the model; HAT's paper reports them as measured on the device, by a protocol we
cannot check). HAT's MLP is not compared there (its trained weights are not kept).

Run:
    python benchmarks/hat_latency.py                # all 8 CSVs (HAT's MLP: minutes per CSV)
    python benchmarks/hat_latency.py --no-hat       # nasforge's model and drift only (seconds)
    python benchmarks/hat_latency.py --hat-from benchmarks/results/hat_latency.json \
        --published hat_subtransformers/             # reuse HAT's figures of an earlier run

Prints one JSON object; ``--out`` also writes it (default benchmarks/results/hat_latency.json).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from nasforge.hardware_models._drift import DRIFT_THRESHOLD
from nasforge.hardware_models._hat_csv import _drift
from nasforge.hardware_models._hat_csv import fit_hat_model
from nasforge.hardware_models._hat_csv import holdout_errors
from nasforge.hardware_models._hat_csv import read_hat_csv

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "hat_latency"
FEATURE_NORM = np.array([640, 6, 2048, 6, 640, 6, 2048, 6, 6, 2], dtype=np.float64)
LAT_NORM = {"raspberrypi": 5000.0, "xeon": 300.0, "titanxp": 200.0}
#: HAT's recipe as measured earlier on the same kind of split (the issue's anchors).
ANCHORS = {"wmt14enfr_cpu_raspberrypi": 0.0089, "wmt14enfr_gpu_titanxp": 0.0198,
           "wmt14ende_cpu_raspberrypi": 0.0454, "wmt14ende_cpu_xeon": 0.0496,
           "wmt14ende_gpu_titanxp": 0.0573}


def hat_recipe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, lat_norm: float,
               seed: int) -> np.ndarray:
    """HAT's MLP predictor trained as HAT trains it; predicted ms of ``x_test`` (N, 10)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    layers: list[torch.nn.Module] = [torch.nn.Linear(10, 400), torch.nn.ReLU()]
    for _ in range(3):
        layers += [torch.nn.Linear(400, 400), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(400, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    xt = torch.tensor(x_train / FEATURE_NORM, dtype=torch.float32)
    yt = torch.tensor(y_train / lat_norm, dtype=torch.float32)
    for _ in range(5000):
        idx = torch.from_numpy(rng.choice(len(xt), 128, replace=False))
        loss = torch.nn.functional.mse_loss(net(xt[idx]).squeeze(1), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = net(torch.tensor(x_test / FEATURE_NORM, dtype=torch.float32)).squeeze(1)
    return out.numpy().astype(np.float64) * lat_norm


def one_csv(path: Path, seed: int, with_hat: bool) -> dict[str, object]:
    """The figures of one CSV."""
    data = read_hat_csv(path)
    y = data.total_ms
    perm = np.random.default_rng(seed).permutation(len(y))
    test, train = perm[: len(y) // 5], perm[len(y) // 5:]
    t0 = time.perf_counter()
    pred = fit_hat_model(data, train).predict(data.features[test])
    row: dict[str, object] = {"rows": len(y), "held_out": len(test),
                              "nasforge": holdout_errors(y[test], pred),
                              "nasforge_fit_s": time.perf_counter() - t0}
    drift = _drift(data, seed)
    row["drift"] = drift.to_dict()
    if with_hat:
        t0 = time.perf_counter()
        hat = hat_recipe(data.features[train], y[train], data.features[test],
                         LAT_NORM[path.stem.split("_")[2]], seed)
        row["hat"] = holdout_errors(y[test], hat)
        row["hat_fit_s"] = time.perf_counter() - t0
        row["nasforge_at_least_as_good"] = (row["nasforge"]["mape"]  # type: ignore[index]
                                            <= row["hat"]["mape"])  # type: ignore[index]
    key = path.stem.removesuffix("_all")
    if key in ANCHORS:
        row["anchor_hat_mape"] = ANCHORS[key]
    return row


_NAME = re.compile(r"HAT_(\w+?)_(raspberrypi|xeon|titanxp)@([\d.]+)(ms|s)_bleu@([\d.]+)\.yml$")
_KIND = {"raspberrypi": "cpu", "xeon": "cpu", "titanxp": "gpu"}


def published(folder: Path, data_dir: Path) -> dict[str, object]:
    """nasforge's error on HAT's published SubTransformers (see the module docstring)."""
    from nasforge.search_spaces import get_space
    from nasforge.search_spaces._hat_io import arch_from_hat_config

    rows, models = [], {}
    for path in sorted(folder.glob("HAT_*.yml")):
        m = _NAME.search(path.name)
        if m is None:
            continue
        task, device, value, unit, bleu = m.groups()
        csv_path = data_dir / f"{task}_{_KIND[device]}_{device}_all.csv"
        if not csv_path.is_file():
            continue
        if csv_path not in models:
            models[csv_path] = fit_hat_model(read_hat_csv(csv_path))
        space = get_space(f"hat_{task}")
        arch = arch_from_hat_config(space, yaml.safe_load(path.read_text()))  # type: ignore[arg-type]
        x = space.hat_features_many([arch])  # type: ignore[attr-defined]
        reported = float(value) * (1000.0 if unit == "s" else 1.0)
        pred = float(models[csv_path].predict(x)[0])
        rows.append({"config": path.name, "csv": csv_path.stem, "reported_ms": reported,
                     "predicted_ms": pred, "rel_err": pred / reported - 1, "bleu": float(bleu)})
    rel = np.abs([r["rel_err"] for r in rows])
    return {"n": len(rows), "mape": float(rel.mean()) if len(rel) else None,
            "max_abs_rel_err": float(rel.max()) if len(rel) else None, "configs": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-hat", action="store_true", help="skip HAT's MLP (minutes per CSV)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/hat_latency.json")
    ap.add_argument("--hat-from", type=Path, help="take HAT's figures from this earlier JSON "
                    "(same data, seed and split) instead of retraining its MLP")
    ap.add_argument("--published", type=Path, help="folder of HAT's published "
                    "SubTransformer YAMLs (HAT_*.yml)")
    args = ap.parse_args(argv)
    earlier = json.loads(args.hat_from.read_text())["csvs"] if args.hat_from else {}
    files = sorted(args.data.glob("*_all.csv"))
    if not files:
        print(f"no HAT CSVs in {args.data}", file=sys.stderr)
        return 2
    result: dict[str, object] = {
        "split": f"seeded random 20% held out (numpy default_rng({args.seed}).permutation)",
        "drift_threshold": DRIFT_THRESHOLD,
        "published_subtransformers": "not run (--published DIR)",
        "note": "2-core machine shared with other jobs; timings are indicative only",
        "csvs": {}}
    for f in files:
        key = f.stem.removesuffix("_all")
        row = one_csv(f, args.seed, not (args.no_hat or args.hat_from))
        if key in earlier:
            row["hat"], row["hat_fit_s"] = earlier[key]["hat"], earlier[key].get("hat_fit_s")
            row["hat_from"] = str(args.hat_from)
            row["nasforge_at_least_as_good"] = (row["nasforge"]["mape"]  # type: ignore[index]
                                                <= row["hat"]["mape"])
        result["csvs"][key] = row  # type: ignore[index]
        print(f"{f.name} done", file=sys.stderr, flush=True)
    if args.published:
        result["published_subtransformers"] = published(args.published, args.data)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
