"""``kill -9`` of ``nas train`` at random moments, then ``--resume``: N trials (issue 16);
SIGINT / SIGTERM of an ``optuna``-strategy ``nas search``, then ``--resume`` (issue 26).

``train``: one uninterrupted reference run, then per trial: start ``nas train`` in a
subprocess, kill its process group with SIGKILL after a random delay (so some kills land inside
a checkpoint write: ``--ckpt-every 1`` makes a write every step), rerun with ``--resume`` (or
from scratch when no checkpoint was written yet), and compare with the reference: weights and
optimizer tensors bitwise, ``train_log.csv`` text equal, and no ``(step, role, arch)`` row twice.

``optuna``: one uninterrupted ``nas search --strategy optuna`` (TPE) on a tabular NB201 table
made here (every cell, values from a hash), then per trial: the same search sent SIGINT or
SIGTERM (alternating) once its study holds a random number of candidates (20 to 80 % of the
budget), rerun with ``--resume``, and its candidates
(``candidates.csv``: arch ids in order, and their values) compared with the reference.

Run:
    python benchmarks/kill_resume_sweep.py --trials 10
    python benchmarks/kill_resume_sweep.py --target optuna --trials 10 --budget 200

Prints one JSON object: per trial the kill time, the checkpoint step found (train) or the
candidates stored at the kill (optuna), and the checks.
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
import zlib
from itertools import product
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


def _train_sweep(args: argparse.Namespace, env: dict[str, str], rng: np.random.Generator
                 ) -> dict[str, object]:
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
            finished = _interrupt(_train(run, args.steps, False), env, delay, signal.SIGKILL)
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
    return {"target": "train", "trials": len(trials), "steps": args.steps,
            "reference_run_s": round(run_s, 1), "all_ok": ok, "results": trials}


def _interrupt(cmd: list[str], env: dict[str, str], delay: float, sig: int) -> bool:
    """Run ``cmd``, send ``sig`` to its process group after ``delay`` s; whether it had
    finished before."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        os.killpg(proc.pid, sig)
    proc.wait()
    return finished


def _interrupt_at(cmd: list[str], env: dict[str, str], db: Path, n: int, sig: int) -> bool:
    """Run ``cmd``, send ``sig`` to its process group once ``db`` holds ``n`` completed
    trials; whether it had finished before."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    while proc.poll() is None and _stored(db) < n:
        time.sleep(0.02)
    finished = proc.poll() is not None
    if not finished:
        os.killpg(proc.pid, sig)
    proc.wait()
    return finished


# ---- optuna search ----------------------------------------------------------------------------
_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def _nb201_table(path: Path) -> Path:
    """Every NB201 cell with an accuracy and a latency drawn from its string's CRC."""
    lines = ["index,arch_str,cifar10_val,pixel3_ms"]
    for i, o in enumerate(product(_OPS, repeat=6)):
        s = f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"
        h = zlib.crc32(s.encode())
        lines.append(f"{i},{s},{50 + h % 4000 / 100},{1 + (h >> 12) % 2000 / 100}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _search(table: Path, out: Path, budget: int, resume: bool) -> list[str]:
    return [sys.executable, "-m", "nasforge.cli", "search", "--space", "nasbench201",
            "--device", "pixel3_ms", "--benchmark", str(table), "--metric", "cifar10_val",
            "--strategy", "optuna", "--budget", str(budget), "--seed", "7", "--latency", "15",
            "--out", str(out), "--quiet", *(["--resume"] if resume else [])]


def _candidates(out: Path) -> list[tuple[str, ...]]:
    with (out / "candidates.csv").open(newline="") as f:
        return [tuple(r.values()) for r in csv.DictReader(f)]


def _stored(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return int(con.execute("select count(*) from trials where state = 'COMPLETE'")
                   .fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def _optuna_sweep(args: argparse.Namespace, env: dict[str, str], rng: np.random.Generator
                  ) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        table = _nb201_table(root / "nb201.csv")
        t0 = time.monotonic()
        subprocess.run(_search(table, root / "ref", args.budget, False), check=True, env=env,
                       capture_output=True)
        run_s = time.monotonic() - t0
        ref = _candidates(root / "ref")
        trials = []
        for i in range(args.trials):
            run, sig = root / f"t{i}", (signal.SIGINT, signal.SIGTERM)[i % 2]
            at = int(rng.integers(args.budget // 5, args.budget * 4 // 5))
            t1 = time.monotonic()
            finished = _interrupt_at(_search(table, run, args.budget, False), env,
                                     run / "search.db", at, sig)
            delay = time.monotonic() - t1
            stored = _stored(run / "search.db")
            res = subprocess.run(_search(table, run, args.budget, stored > 0), env=env,
                                 capture_output=True, text=True)
            got = _candidates(run) if res.returncode == 0 else []
            trials.append({
                "signal": signal.Signals(sig).name, "kill_at_stored": at,
                "kill_after_s": round(delay, 2),
                "finished_before_kill": finished, "stored_at_kill": stored,
                "resume_rc": res.returncode, "candidates": len(got),
                "same_arch_ids": [c[2] for c in got] == [c[2] for c in ref],
                "rows_equal": got == ref,
            })
    ok = all(t["resume_rc"] == 0 and t["rows_equal"] for t in trials)
    return {"target": "optuna", "trials": len(trials), "budget": args.budget,
            "reference_run_s": round(run_s, 1), "reference_candidates": len(ref),
            "all_ok": ok, "results": trials}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=("train", "optuna"), default="train")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--steps", type=int, default=8, help="train: steps of each run")
    ap.add_argument("--budget", type=int, default=200, help="optuna: candidates of each search")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(args.seed)
    sweep = _train_sweep if args.target == "train" else _optuna_sweep
    print(json.dumps(sweep(args, env, rng), indent=2))


if __name__ == "__main__":
    main()
