"""``kill -9`` of ``nas train`` at random moments, then ``--resume``: N trials (issue 16).

One uninterrupted reference run, then per trial: start ``nas train`` in a subprocess, kill its
process group with SIGKILL after a random delay (so some kills land inside a checkpoint write:
``--ckpt-every 1`` makes a write every step), rerun with ``--resume`` (or from scratch when no
checkpoint was written yet), and compare with the reference: weights and optimizer tensors
bitwise, ``train_log.csv`` text equal, and no ``(step, role, arch)`` row twice.

Run:
    python benchmarks/kill_resume_sweep.py --trials 10

Prints one JSON object: per trial the kill time, the checkpoint step found, and the checks.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
TINY = ["--data", "synthetic:32", "--sampler", "uniform", "--input-size", "16",
        "--resolution-scale", "0.0625", "--batch-size", "4", "--accelerator", "cpu",
        "--no-progress", "--no-eval", "--set", "train.warmup_steps=1", "--ckpt-every", "1"]


def _train(out: Path, steps: int, resume: bool) -> list[str]:
    return [sys.executable, "-m", "nasforge.cli", "train", "--out", str(out), "--steps",
            str(steps), *TINY, *(["--resume"] if resume else [])]


def _state(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(run / "last.ckpt")).items()
            if k.startswith(("model.", "optim."))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ref = root / "ref"
        t0 = time.monotonic()
        subprocess.run(_train(ref, args.steps, False), check=True, env=env,
                       capture_output=True)
        run_s = time.monotonic() - t0
        ref_state, ref_log = _state(ref), (ref / "train_log.csv").read_text()
        trials = []
        for i in range(args.trials):
            run = root / f"t{i}"
            delay = float(rng.uniform(0.2, 0.7)) * run_s  # the reference ran under the same load
            proc = subprocess.Popen(_train(run, args.steps, False), env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            time.sleep(delay)
            finished = proc.poll() is not None
            if not finished:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            ck = run / "last.ckpt"
            step = None
            if ck.exists():
                from nasforge.supernet.checkpoint import read_checkpoint
                step = read_checkpoint(ck).step
            res = subprocess.run(_train(run, args.steps, ck.exists()), env=env,
                                 capture_output=True, text=True)
            state = _state(run) if res.returncode == 0 else {}
            with (run / "train_log.csv").open(newline="") as f:
                rows = [(r["step"], r["role"], r["arch_id"]) for r in csv.DictReader(f)]
            trials.append({
                "kill_after_s": round(delay, 2), "finished_before_kill": finished,
                "checkpoint_step": step, "tmp_left": (run / "last.ckpt.tmp").exists(),
                "resume_rc": res.returncode,
                "weights_bitwise_equal": bool(state) and state.keys() == ref_state.keys()
                and all(torch.equal(state[k], ref_state[k]) for k in ref_state),
                "log_equal": (run / "train_log.csv").read_text() == ref_log,
                "duplicate_rows": len(rows) - len(set(rows)),
            })
    ok = all(t["resume_rc"] == 0 and t["weights_bitwise_equal"] and t["log_equal"]
             and t["duplicate_rows"] == 0 for t in trials)
    print(json.dumps({"trials": len(trials), "steps": args.steps,
                      "reference_run_s": round(run_s, 1), "all_ok": ok, "results": trials},
                     indent=2))


if __name__ == "__main__":
    main()
