"""Issue 16, training: checkpoints on the user's cadence, ``kill -9`` + ``--resume`` gives the
uninterrupted run's weights bit for bit, and the log never holds a step twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nasforge.cli import app
from nasforge.cli._common import run_app

REPO = Path(__file__).resolve().parents[2]
# the smallest real run: 16 px images, every subnet at resolution / 16 px, batch 4
TINY = ["--data", "synthetic:32", "--sampler", "uniform", "--input-size", "16",
        "--resolution-scale", "0.0625", "--batch-size", "4", "--accelerator", "cpu",
        "--no-progress", "--no-eval", "--set", "train.warmup_steps=1"]


def _cmd(out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "--out", str(out), "--steps", str(steps), *TINY, *extra]


def _state(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(run / "last.ckpt")).items()
            if k.startswith(("model.", "optim."))}


def _same(a: Path, b: Path) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "weights differ after resume"
    assert (a / "train_log.csv").read_text() == (b / "train_log.csv").read_text()


def _log_rows(run: Path) -> int:
    log = run / "train_log.csv"
    return len(log.read_text().splitlines()) - 1 if log.exists() else 0


@pytest.mark.slow
def test_resume_after_a_kill_during_the_checkpoint_write(tmp_path: Path) -> None:
    full, run = tmp_path / "full", tmp_path / "run"
    assert run_app(app, _cmd(full, 3, "--ckpt-every", "1", "--set", "train.keep_last=3")) == 0
    run.mkdir()
    # the state of a run killed while writing its step-3 checkpoint: last.ckpt is the step-2
    # one, a half-written temp file lies beside it, and the log holds step 2's rows (flushed
    # before the write) with the last line cut short
    shutil.copyfile(full / "step-0000002.ckpt", run / "last.ckpt")
    (run / "last.ckpt.tmp").write_bytes(b"\x00" * 100)
    (run / "train_log.csv").write_text((full / "train_log.csv").read_text() + "2,,0.5")
    assert run_app(app, _cmd(run, 3, "--ckpt-every", "1", "--set", "train.keep_last=3",
                             "--resume")) == 0
    _same(full, run)


@pytest.mark.slow
def test_kill_9_at_random_steps_then_resume_is_bitwise_identical(tmp_path: Path) -> None:
    steps = 6
    full = tmp_path / "full"
    assert run_app(app, _cmd(full, steps, "--ckpt-every", "2")) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(11)
    for trial in range(2):
        run = tmp_path / f"run{trial}"
        kill_after = int(rng.integers(2, steps - 1))  # log rows seen before the kill
        proc = subprocess.Popen([sys.executable, "-m", "nasforge.cli",
                                 *_cmd(run, steps, "--ckpt-every", "2")],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 240
        while (time.monotonic() < deadline and proc.poll() is None
               and _log_rows(run) < kill_after):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        resume = (run / "last.ckpt").exists()
        assert run_app(app, _cmd(run, steps, "--ckpt-every", "2",
                                 *(["--resume"] if resume else []))) == 0
        _same(full, run)
