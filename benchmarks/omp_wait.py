"""OpenMP wait policy of the ``nas`` process: spinning (ACTIVE) vs sleeping (PASSIVE) threads.

``nas`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy
(``nasforge/cli/_app.py``). This prints JSON with the wall time of ``nas train --steps N`` on the
quick recipe (torch's default threads, one per core) under each policy, run alternately
``--reps`` times, and the ratio ACTIVE / PASSIVE; with ``--busy`` a single-threaded busy loop
holds one core meanwhile (another user's job), the case the passive policy is for.

    python benchmarks/omp_wait.py [--steps 12] [--reps 2] [--busy]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICIES = ("ACTIVE", "PASSIVE")


def _train(policy: str, steps: int, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_WAIT_POLICY": policy}
    env.pop("OMP_NUM_THREADS", None)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nasforge.cli", "-q", "train", "--space", "elasticvit",
                    "--steps", str(steps), "--no-eval", "--no-progress", "--out", str(out)],
                   check=True, env=env, cwd=REPO, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12, help="training steps per run")
    p.add_argument("--reps", type=int, default=2, help="runs per policy (alternating)")
    p.add_argument("--busy", action="store_true", help="hold one core with a busy loop")
    args = p.parse_args()
    busy = (subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy
            else None)
    times: dict[str, list[float]] = {pol: [] for pol in POLICIES}
    load = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="omp_wait_") as tmp:
            for r in range(args.reps):
                for pol in POLICIES:
                    times[pol].append(round(_train(pol, args.steps, Path(tmp, f"{pol}{r}")), 2))
    finally:
        if busy is not None:
            busy.kill()
    mean = {pol: sum(v) / len(v) for pol, v in times.items()}
    print(json.dumps({"steps": args.steps, "busy_core": args.busy, "cpus": os.cpu_count(),
                      "load_avg_start": [round(x, 2) for x in load],
                      "wall_s": times, "active_over_passive": round(mean["ACTIVE"]
                                                                    / mean["PASSIVE"], 2)},
                     indent=1))


if __name__ == "__main__":
    main()
