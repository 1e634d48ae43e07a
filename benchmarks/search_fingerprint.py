"""Fingerprint of a fixed set of ``nas search`` runs: a refactor's "same results" check.

Runs every strategy, single and Pareto mode, in two settings, for two seeds, through the CLI
(the interface a refactor must keep): NB201 in tabular mode (``../shared/data/nb201_dev``,
accuracy ``cifar10_val``, latency column ``pixel3_ms``) and ``elasticvit`` with the embedded quick
supernet (trained once and cached, as ``nas search`` does) on ``pixel7``. For each run it hashes
``candidates.csv``, ``pareto.csv`` and ``best.yaml`` (sha1, first 16 hex) and prints JSON
``{run name: {candidates, pareto, best}}`` plus one digest of all runs. Two trees that print the
same digest evaluated the same candidates in the same order and chose the same subnets.

Usage: ``python benchmarks/search_fingerprint.py [--only nb201|elasticvit] > fp.json``
(``PYTHONPATH`` selects the tree; ``nas`` runs as ``python -m nasforge.cli``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NB201 = DATA / "nb201_dev" / "nb201_dev.csv"

#: (name, strategy, extra options); "-pareto" runs rank accuracy x latency by NSGA-II.
STRATEGIES = [
    ("random", "random", []),
    ("evolution", "evolution", ["--strategy-opt", "population_size=10",
                                "--strategy-opt", "parents=4", "--strategy-opt", "mutations=5",
                                "--strategy-opt", "crossovers=5"]),
    ("evolution-pareto", "evolution", ["--strategy-opt", "mode=pareto",
                                       "--strategy-opt", "population_size=10",
                                       "--strategy-opt", "mutations=5",
                                       "--strategy-opt", "crossovers=5"]),
    ("predictor", "predictor", []),
    ("gradient", "gradient", []),
    ("optuna", "optuna", []),
    ("optuna-pareto", "optuna", ["--strategy-opt", "mode=pareto",
                                 "--strategy-opt", "sampler=nsga2"]),
]

SETTINGS = {
    "nb201": (["--space", "nasbench201", "--benchmark", str(NB201), "--metric", "cifar10_val",
               "--device", "pixel3_ms", "--latency", "20"], 40),
    "elasticvit": (["--space", "elasticvit", "--device", "pixel7", "--latency", "30"], 16),
}


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16] if path.exists() else "missing"


def run_one(setting: str, name: str, strategy: str, extra: list[str], seed: int,
            work: Path) -> dict[str, str]:
    base, budget = SETTINGS[setting]
    out = work / f"{setting}-{name}-{seed}"
    cmd = [sys.executable, "-m", "nasforge.cli", "search", *base, "--strategy", strategy,
           *extra, "--budget", str(budget), "--seed", str(seed), "--out", str(out), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return {f: _digest(out / f"{f}.{'yaml' if f == 'best' else 'csv'}")
            for f in ("candidates", "pareto", "best")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SETTINGS), default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    settings = [args.only] if args.only else list(SETTINGS)
    runs: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for setting in settings:
            for name, strategy, extra in STRATEGIES:
                for seed in args.seeds:
                    key = f"{setting}/{name}/seed{seed}"
                    runs[key] = run_one(setting, name, strategy, extra, seed, Path(tmp))
                    print(key, runs[key], file=sys.stderr, flush=True)
    digest = hashlib.sha1(json.dumps(runs, sort_keys=True).encode()).hexdigest()[:16]
    print(json.dumps({"runs": runs, "n_runs": len(runs), "digest": digest}, indent=1))


if __name__ == "__main__":
    main()
