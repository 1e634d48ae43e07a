"""Streaming data pipeline figures (issue 10): decode speed, memory vs dataset size, data wait.

1. ``decode_aug_images_per_s_224``: JPEGs decoded + RandomResizedCrop/flip to 224 px per second
   in one process (= per DataLoader worker), and the same for the validation transform.
2. ``peak_rss_mb``: peak resident memory of a short ``nas train`` (process tree: the trainer and
   its DataLoader workers, summed from /proc) on 2,000 and on 20,000 generated JPEGs, side by
   side (goal: the same within 10%: nothing scales with the dataset but the path index).
3. ``data_wait_share``: the share of step time spent waiting for the next batch while training
   the elasticvit supernet at batch 32, 128 px, 2 workers (goal: under 10%).

Run:
    python benchmarks/data_pipeline.py            # the figures above (several minutes on CPU)
    python benchmarks/data_pipeline.py --small    # 200 / 2,000 images, fewer steps (a smoke run)

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nasforge.data import TrainTransform
from nasforge.data import ValTransform

REPO = Path(__file__).resolve().parents[1]


def make_folder(root: Path, n: int, classes: int = 10, size: tuple[int, int] = (64, 96),
                seed: int = 0) -> Path:
    """``n`` JPEGs in ``root/train/<class>`` (+ 10% as many in ``root/val``), sides drawn in
    ``size``; one small template per class, re-encoded with noise so files differ."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("val", max(classes, n // 10))):
        for i in range(count):
            c = i % classes
            d = root / split / f"c{c:03d}"
            d.mkdir(parents=True, exist_ok=True)
            w, h = (int(v) for v in rng.integers(size[0], size[1], 2))
            arr = (rng.random((h, w, 3)) * 60).astype(np.uint8)
            arr[:, :, c % 3] += np.uint8(120)
            Image.fromarray(arr).save(d / f"{i:06d}.jpg", quality=85)
    return root


def decode_speed(root: Path, n: int = 200) -> dict[str, float]:
    """Images/s of decode + augment at 224 px in this process (one worker's throughput)."""
    files = sorted((root / "train").rglob("*.jpg"))[:n]
    out = {}
    for name, t in (("train_224", TrainTransform(224)), ("val_224", ValTransform(224))):
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for f in files:
            with Image.open(f) as im:
                t(im, rng)
        out[name] = len(files) / (time.perf_counter() - t0)
    return out


def _tree_rss_kb(pid: int) -> int:
    """Summed VmRSS of ``pid`` and its descendants (from /proc)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                parent[int(d.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    total = 0
    for p in tree:
        try:
            m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{p}/status").read_text())
            total += int(m.group(1)) if m else 0
        except OSError:
            continue
    return total


def run_train(args: list[str]) -> tuple[float, str]:
    """Run ``nas train`` and return (peak tree RSS in MB, stdout)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nasforge.cli", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.1)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"nas train failed ({proc.returncode}): {out[-2000:]}")
    return peak / 1024, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="200 / 2,000 images, 3 steps")
    ap.add_argument("--steps", type=int, default=None)
    a = ap.parse_args()
    sizes = (200, 2000) if a.small else (2000, 20000)
    steps = a.steps or (3 if a.small else 10)
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        big = make_folder(Path(tmp) / "jpeg_big", 300, size=(300, 500))
        result["decode_aug_images_per_s_per_worker"] = decode_speed(big)
        common = ["--steps", str(steps), "--batch-size", "32", "--workers", "2",
                  "--accelerator", "cpu", "--no-progress", "--no-eval", "--sampler", "uniform"]
        rss = {}
        for n in sizes:
            folder = make_folder(Path(tmp) / f"n{n}", n)
            peak, _ = run_train(["--data", f"imagefolder:{folder}", "--out",
                                 str(Path(tmp) / f"out{n}"), "--input-size", "32", *common])
            rss[str(n)] = round(peak, 1)
        result["peak_rss_mb"] = rss
        result["peak_rss_ratio"] = round(rss[str(sizes[1])] / rss[str(sizes[0])], 3)
        _, out = run_train(["--data", f"imagefolder:{big}", "--out", str(Path(tmp) / "wait"),
                            "--input-size", "128", "--set", "train.resolution_scale=null",
                            *common])
        m = re.search(r"\(([\d.]+) images/s, (\d+)% waiting for data\)", out)
        result["wait_run"] = {"space": "elasticvit", "batch": 32, "px": 128, "workers": 2,
                              "steps": steps, "sampler": "uniform (1 subnet per step)"}
        result["train_images_per_s"] = float(m.group(1)) if m else None
        result["data_wait_share"] = int(m.group(2)) / 100 if m else None
        result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
